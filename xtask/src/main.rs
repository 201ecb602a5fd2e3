//! Project automation: `cargo xtask <task>`. Tidy checks live in `tests/tidy.rs`.

mod crash;
mod detect_bench;
mod tau2;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let rest: Vec<String> = std::env::args().skip(2).collect();
    match task.as_str() {
        "tau2-cases" => tau2::write_cases(&workspace_root()),
        "detect-bench" => detect_bench::run(&rest),
        "crash-test" => crash::run(&rest),
        _ => anyhow::bail!("unknown task `{task}`; tasks: tau2-cases, detect-bench, crash-test"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
