//! `pactum`: the command line and server binary. Arguments -> calls into the domain crates -> text or JSON.

use clap::{Parser, Subcommand};

/// Pactum: a trust layer for AI agents. Pacts, a guard, and a verifiable evidence log.
#[derive(Parser)]
#[command(name = "pactum", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
