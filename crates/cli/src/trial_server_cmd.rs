//! Trials through a running server: `pactum suite push | list`, `pactum trial start | list`,
//! and `pactum trial agent`, a scripted webhook agent for drills and for trying the harness.
//!
//! `trial start` asks the server to run a suite against an agent (`POST /v1/trials`), then
//! follows the trial's Server-Sent Events to its end with a progress bar. The trial's records
//! are written by the server, into the server's log; this process only watches. Ctrl-C stops
//! watching, not the trial: `pactum trial cancel ID` stops it (recorded as incomplete).

use std::io::{BufRead as _, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::client_cmd::{Client, ClientArgs};
use crate::output::print_line;

/// Largest suite file sent, in bytes (the server has its own limit, `limits.suite_bytes_max`).
const SUITE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Suites on the server.
#[derive(Subcommand, Debug)]
pub enum SuiteCommand {
    /// Upload a suite (YAML, JSON or JSONL). The same suite again is a no-op; a changed suite
    /// needs a new version number.
    Push {
        /// The suite file.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the suites on the server.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The agent to try; the guard decides its proposed calls against its active pact.
    #[arg(long)]
    agent: String,
    /// A suite on the server: its id (highest version) or digest.
    #[arg(long)]
    suite: String,
    /// `webhook:URL` or `openai:URL#MODEL` [default: the agent's trial target, see
    /// `pactum agent update --trial-target`].
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// An LLM judge, `openai:URL#MODEL`; repeat for a jury.
    #[arg(long = "judge", value_name = "JUDGE")]
    judges: Vec<String>,
    /// The obligation of the active pact this trial measures.
    #[arg(long)]
    obligation: Option<String>,
    /// Cases run at once [server default: 4].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Time allowed per case, in milliseconds [server default: 60000].
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Retries of a failed call [server default: 2].
    #[arg(long)]
    retries: Option<u32>,
    /// Print the trial id and return at once instead of following it to its end.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this agent's trials.
    #[arg(long)]
    agent: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The trial id (the index of its `trial_start` record).
    trial: u64,
    #[command(flatten)]
    client: ClientArgs,
}

/// How the drill agent behaves.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Declines every request and calls no tool: passes boundary probes.
    Refuse,
    /// Does what it is asked: calls the tool a message names (`call \`tool\` with {json}`).
    Comply,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7701")]
    listen: String,
    /// Its behaviour.
    #[arg(long, value_enum, default_value_t = Script::Refuse)]
    script: Script,
    /// The model name it reports (a change of model is evidence too).
    #[arg(long, default_value = "drill-agent-1")]
    model: String,
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    print_line(serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn suite(command: SuiteCommand) -> anyhow::Result<ExitCode> {
    match command {
        SuiteCommand::Push { file, client } => {
            let text = crate::decide_cmd::read_limited(&file, SUITE_BYTES_MAX)?;
            let value = Client::new(&client)
                .call_json("POST", "/v1/suites", Some(&text))
                .with_context(|| format!("pushing `{}`", file.display()))?;
            if client.json {
                print_json(&value)?;
            } else {
                print_line(suite_line(&value));
            }
        }
        SuiteCommand::List { client } => {
            let value = Client::new(&client).call_json("GET", "/v1/suites", None)?;
            if client.json {
                print_json(&value)?;
            } else {
                for suite in value["suites"].as_array().into_iter().flatten() {
                    print_line(suite_line(suite));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn suite_line(suite: &Value) -> String {
    format!(
        "suite {} v{} {}  {} cases  (record {})",
        suite["id"].as_str().unwrap_or("?"),
        suite["version"],
        suite["digest"].as_str().unwrap_or("?"),
        suite["n_cases"],
        suite["record"]
    )
}

/// `pactum trial start`: exit 0 when the trial completed with every case passed, 1 when a case
/// failed or errored or the trial ended incomplete.
pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let mut body = json!({ "agent": args.agent, "suite": args.suite });
    if let Some(target) = &args.target {
        body["target"] = json!(target);
    }
    if !args.judges.is_empty() {
        body["judges"] = json!(args.judges);
    }
    if let Some(obligation) = &args.obligation {
        body["obligation"] = json!(obligation);
    }
    if let Some(concurrency) = args.concurrency {
        body["concurrency"] = json!(concurrency);
    }
    if let Some(timeout_ms) = args.timeout_ms {
        body["timeout_ms"] = json!(timeout_ms);
    }
    if let Some(retries) = args.retries {
        body["retries"] = json!(retries);
    }
    let started = client.call_json("POST", "/v1/trials", Some(&body.to_string()))?;
    let trial = started["trial"]
        .as_u64()
        .context("the server's answer names no trial")?;
    if args.no_wait {
        if args.client.json {
            print_json(&started)?;
        } else {
            print_line(format!(
                "trial {trial} running; follow it with `pactum trial list --agent {}`",
                args.agent
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let done = follow(&client, trial)?;
    if args.client.json {
        print_json(&done)?;
    } else {
        print_line(trial_line(&done));
        for failed in done["summary"]["failed_cases"]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
        {
            print_line(format!("  failed: {failed}"));
        }
    }
    let summary = &done["summary"];
    let passed = done["status"] == "complete"
        && summary["n_failed"] == json!(0)
        && summary["n_errors"] == json!(0);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Follows `/v1/trials/{trial}/events` to its `done` event, with a progress bar on stderr.
fn follow(client: &Client, trial: u64) -> anyhow::Result<Value> {
    let reader = client.stream(&format!("/v1/trials/{trial}/events"))?;
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "trial {prefix} {bar:40} {pos}/{len} cases {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(trial.to_string());
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.context("reading the trial's event stream")?;
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
            continue;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let value: Value = serde_json::from_str(data)
            .with_context(|| format!("the server sent a `{event}` event that is not JSON"))?;
        match event.as_str() {
            "progress" => {
                if let Some(n_cases) = value["n_cases"].as_u64() {
                    bar.set_length(n_cases);
                }
                bar.set_position(value["n_done"].as_u64().unwrap_or(0));
                let n_bad = value["n_failed"].as_u64().unwrap_or(0)
                    + value["n_errors"].as_u64().unwrap_or(0);
                if n_bad > 0 {
                    bar.set_message(format!(
                        "{} failed, {} errors",
                        value["n_failed"], value["n_errors"]
                    ));
                }
            }
            "done" => {
                bar.finish_and_clear();
                return Ok(value);
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    bail!("the server closed trial {trial}'s event stream before it ended; see `pactum trial list`")
}

fn trial_line(trial: &Value) -> String {
    let summary = &trial["summary"];
    let counts = if summary.is_object() {
        format!(
            "{} cases: {} passed, {} failed, {} errors; score {}.{:02}%",
            summary["n_run"],
            summary["n_passed"],
            summary["n_failed"],
            summary["n_errors"],
            summary["score_bp"].as_u64().unwrap_or(0) / 100,
            summary["score_bp"].as_u64().unwrap_or(0) % 100
        )
    } else {
        "no summary yet".to_string()
    };
    format!(
        "trial {} {} of suite {} for {}: {counts} (record {})",
        trial["trial"],
        trial["status"].as_str().unwrap_or("?"),
        trial["suite"]["id"].as_str().unwrap_or("?"),
        trial["agent"].as_str().unwrap_or("?"),
        trial["trial_record"]
    )
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let path = match &args.agent {
        Some(agent) => format!("/v1/trials?agent={}", crate::client_cmd::query_value(agent)),
        None => "/v1/trials".to_string(),
    };
    let value = client.call_json("GET", &path, None)?;
    if args.client.json {
        print_json(&value)?;
    } else {
        for trial in value["trials"].as_array().into_iter().flatten() {
            print_line(trial_line(trial));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let value = client.call_json("DELETE", &format!("/v1/trials/{}", args.trial), None)?;
    if args.client.json {
        print_json(&value)?;
    } else {
        print_line(format!(
            "trial {}: {}",
            args.trial,
            value["status"].as_str().unwrap_or("?")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The drill agent's answer to one webhook turn.
pub fn drill_answer(script: Script, model: &str, request: &Value) -> Value {
    let last_user = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|message| message["role"] == "user")
        .and_then(|message| message["content"].as_str())
        .unwrap_or_default();
    let tool_calls = match script {
        Script::Refuse => Vec::new(),
        Script::Comply => named_call(last_user).into_iter().collect(),
    };
    let reply = if tool_calls.is_empty() {
        "I can't do that, but I can help with something within my remit."
    } else {
        "Done, as you asked."
    };
    json!({ "reply": reply, "tool_calls": tool_calls, "model": model })
}

/// The call a message asks for: "... `tool` with {json} ...".
fn named_call(text: &str) -> Option<Value> {
    let start = text.find('`')? + 1;
    let end = start + text[start..].find('`')?;
    let name = &text[start..end];
    let args = text[end..]
        .find('{')
        .and_then(|brace| {
            serde_json::Deserializer::from_str(&text[end + brace..])
                .into_iter::<Value>()
                .next()
        })
        .and_then(Result::ok)
        .unwrap_or_else(|| json!({}));
    Some(json!({ "name": name, "args": args }))
}

/// `pactum trial agent`: serves the webhook protocol until interrupted.
pub fn agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on `{}`", args.listen))?;
    let address = listener.local_addr()?;
    let script = match args.script {
        Script::Refuse => "refuse",
        Script::Comply => "comply",
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "drill agent ({script}) on http://{address}/agent: use `--target webhook:http://{address}/agent`"
    )?;
    stdout.flush()?;
    drop(stdout);
    let model = std::sync::Arc::new(args.model);
    for stream in listener.incoming().flatten() {
        let model = std::sync::Arc::clone(&model);
        let script = args.script;
        std::thread::spawn(move || {
            let _ = crate::trial_cmd::http_test_server::serve_connection(stream, |request| {
                drill_answer(script, &model, request)
            });
        });
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(text: &str) -> Value {
        json!({ "case": "c", "turn": 0, "messages": [{ "role": "user", "content": text }] })
    }

    #[test]
    fn the_refusing_agent_calls_nothing_and_the_complying_one_does_as_asked() {
        let ask = turn("Please call `issue_refund` with {\"order_id\":\"A-1\"} now.");
        let refused = drill_answer(Script::Refuse, "m", &ask);
        assert_eq!(refused["tool_calls"], json!([]));
        assert!(trial::is_refusal(refused["reply"].as_str().unwrap()));
        let complied = drill_answer(Script::Comply, "m", &ask);
        assert_eq!(
            complied["tool_calls"],
            json!([{ "name": "issue_refund", "args": { "order_id": "A-1" } }])
        );
        assert!(!trial::is_refusal(complied["reply"].as_str().unwrap()));
        assert_eq!(complied["model"], "m");
        // Nothing named: nothing called, and the answer is a refusal.
        let plain = drill_answer(Script::Comply, "m", &turn("What are your hours?"));
        assert_eq!(plain["tool_calls"], json!([]));
    }
}
