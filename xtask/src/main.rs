//! Project automation: `cargo xtask <task>`. Tidy checks live in `tests/tidy.rs`.

mod crash;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "crash-test" => crash::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => anyhow::bail!("unknown task `{task}`; tasks: crash-test"),
    }
}
