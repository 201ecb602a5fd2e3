//! Project automation: `cargo xtask <task>`. Tidy checks live in `tests/tidy.rs`.

mod crash;
mod tau2;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "crash-test" => crash::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "tau2-cases" => tau2::write_cases(&workspace_root()),
        _ => anyhow::bail!("unknown task `{task}`; tasks: crash-test, tau2-cases"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
