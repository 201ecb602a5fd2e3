//! `pactum score show | explain`: the trust score from the evidence log.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ScoreCommand {}

pub fn run(command: ScoreCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
