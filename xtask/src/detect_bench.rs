//! `cargo xtask detect-bench`: builds `pactum` in release mode and runs `pactum bench detect` on
//! the corpora in `testdata/`, passing any further arguments (`--json`, `--no-timing`) through.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// Runs the detector benchmark from the workspace root.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .context("xtask has no parent folder")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "cli",
            "--bin",
            "pactum",
            "--",
            "bench",
            "detect",
        ])
        .arg("--testdata")
        .arg(root.join("testdata"))
        .args(args)
        .status()
        .context("could not run `cargo run -p cli`")?;
    if !status.success() {
        bail!("`pactum bench detect` failed with {status}");
    }
    Ok(())
}
