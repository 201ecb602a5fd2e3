//! `pactum`: the command line and server binary. Arguments -> calls into the domain crates -> text or JSON.

mod bench_http;
mod client_cmd;
mod config;
mod decide_cmd;
mod detect_cmd;
mod gateway_admin_cmd;
mod gateway_bench;
mod gateway_cmd;
mod incident_cmd;
mod ledger_cmd;
mod output;
mod pact_cmd;
mod score_cmd;
mod serve_cmd;
mod signals_bench;
mod trial_cmd;
mod trial_sample_cmd;
mod trial_server_cmd;
mod wire;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the server's request path allocates small JSON
/// values at a high rate, and glibc malloc showed as ~12% of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Pactum: a trust layer for AI agents. Pacts, a guard, and a verifiable evidence log.
#[derive(Parser)]
#[command(name = "pactum", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one request against a pact file, offline, and print the verdict as JSON.
    Decide(decide_cmd::DecideArgs),
    /// Work with pact files: check, format, test, import; print the pact JSON Schema.
    Pact(pact_cmd::PactArgs),
    /// Scan text for prompt injection, authority claims, hidden text and canaries.
    Detect(detect_cmd::DetectArgs),
    /// Make canary tokens.
    Canary(detect_cmd::CanaryArgs),
    /// The evidence log: append, get, proof, checkpoint, key, verify, export.
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Verify an exported bundle offline against the log's verifier key.
    Verify(ledger_cmd::VerifyArgs),
    /// Run the trust service: the HTTP API over the evidence log.
    Serve(serve_cmd::ServeArgs),
    /// The MCP gateway: the agent's MCP server, with every tool call decided by its pact
    /// before it reaches the upstream MCP servers; `report`, `tools`, `accept` about one.
    Gateway(Box<gateway_cmd::GatewayArgs>),
    /// Show the effective configuration (file < PACTUM_* environment < flags).
    #[command(subcommand)]
    Config(serve_cmd::ConfigCommand),
    /// API tokens: create, list, revoke (offline in the data directory, or `--server URL`).
    #[command(subcommand)]
    Token(serve_cmd::TokenCommand),
    /// Trials: generate suites from a pact, sample and mix dynamic cases, run them here or on a
    /// server, a drill agent.
    #[command(subcommand)]
    Trial(trial_cmd::TrialCommand),
    /// Suites on a running server: push, list.
    #[command(subcommand)]
    Suite(trial_server_cmd::SuiteCommand),
    /// The trust score: show it, explain it from the records behind it.
    #[command(subcommand)]
    Score(score_cmd::ScoreCommand),
    /// Signals of an agent (through a server): each with its level, value and evidence.
    Signals(incident_cmd::SignalsArgs),
    /// Report a measured metric value (a proxy such as CSAT, a truth such as resolution rate).
    Observe(incident_cmd::ObserveArgs),
    /// Incident case files and evidence-gated recovery (through a server).
    #[command(subcommand)]
    Incident(incident_cmd::IncidentCommand),
    /// Program metrics: time to containment, evidence completeness, recovery validation, ...
    Program(incident_cmd::ProgramArgs),
    /// Measure Pactum's hot paths.
    #[command(subcommand)]
    Bench(BenchCommand),
    #[command(flatten)]
    Client(client_cmd::ClientCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Guard decisions on one thread: a 100-rule pact with 1,000 canaries.
    Guard(decide_cmd::GuardBenchArgs),
    /// Detector quality per public corpus (recall, false-positive rate) and speed.
    Detect(detect_cmd::BenchArgs),
    /// Evidence log: durable appends, inclusion proofs, full verify, memory.
    Ledger(ledger_cmd::BenchArgs),
    /// `POST /v1/decide` over HTTP with durable evidence, and a halt under load.
    Http(bench_http::HttpBenchArgs),
    /// Trial harness: 1,000 cases against a local agent that answers at once, five judges each.
    Trial(trial_cmd::BenchArgs),
    /// Signals, score and incidents over one agent with a million records in a real log.
    Signals(signals_bench::BenchArgs),
    /// MCP `tools/call` through `pactum gateway` against calling the upstream directly: added
    /// p50 and p99 over stdio and Streamable HTTP, calls per second, memory per session.
    Gateway(gateway_bench::GatewayBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One readable line (with its causes), not a backtrace: this is for people.
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Decide(args) => decide_cmd::run_decide(args).map(|()| ExitCode::SUCCESS),
        Command::Pact(args) => Ok(pact_cmd::run(args)),
        Command::Detect(args) => detect_cmd::run_detect(args).map(|()| ExitCode::SUCCESS),
        Command::Canary(args) => detect_cmd::run_canary(args).map(|()| ExitCode::SUCCESS),
        Command::Ledger(command) => ledger_cmd::run(command),
        Command::Verify(args) => ledger_cmd::verify_bundle(args),
        Command::Serve(args) => serve_cmd::run_serve(args).map(|()| ExitCode::SUCCESS),
        Command::Gateway(args) => gateway_cmd::run(*args),
        Command::Client(command) => client_cmd::run(command).map(|()| ExitCode::SUCCESS),
        Command::Config(command) => serve_cmd::run_config(command).map(|()| ExitCode::SUCCESS),
        Command::Token(command) => serve_cmd::run_token(command).map(|()| ExitCode::SUCCESS),
        Command::Bench(BenchCommand::Guard(args)) => {
            decide_cmd::run_guard_bench(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Http(args)) => {
            bench_http::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Signals(args)) => {
            signals_bench::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Detect(args)) => {
            detect_cmd::run_bench(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Trial(command) => trial_cmd::run(command),
        Command::Score(command) => score_cmd::run(command),
        Command::Suite(command) => trial_server_cmd::suite(command),
        Command::Signals(args) => incident_cmd::signals(args),
        Command::Observe(args) => incident_cmd::observe(args),
        Command::Incident(command) => incident_cmd::run(command),
        Command::Program(args) => incident_cmd::program(args),
        Command::Bench(BenchCommand::Trial(args)) => {
            trial_cmd::bench(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Ledger(args)) => {
            ledger_cmd::bench(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Gateway(args)) => {
            gateway_bench::run(args).map(|()| ExitCode::SUCCESS)
        }
    }
}
