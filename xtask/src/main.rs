//! Project automation: `cargo xtask <task>`. Tidy checks live in `tests/tidy.rs`.

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        _ => anyhow::bail!("unknown task `{task}`; tasks: (none yet)"),
    }
}
