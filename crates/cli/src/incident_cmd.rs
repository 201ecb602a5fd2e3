//! Signals, incidents, recovery and program metrics, through a running server: `pactum signals`,
//! `pactum observe`, `pactum incident ...` and `pactum program`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client_cmd::{Client, ClientArgs};
use crate::output::print_line;

#[derive(Args, Debug)]
pub struct SignalsArgs {
    /// The agent.
    agent: String,
    /// Evaluate now and take the responses the pact (or its tier) maps tripped signals to.
    #[arg(long)]
    respond: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ObserveArgs {
    /// The agent the value is about.
    #[arg(long)]
    agent: String,
    /// The metric, as the pact's obligations name it (`csat`, `resolution_rate`, `deflection_rate`).
    #[arg(long)]
    metric: String,
    /// The measured value (a rate as a fraction: 0.82).
    #[arg(long, allow_negative_numbers = true)]
    value: f64,
    /// Samples behind the value.
    #[arg(long)]
    samples: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ProgramArgs {
    #[command(flatten)]
    client: ClientArgs,
}

/// Incident case files and evidence-gated recovery.
#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// Open an incident by hand.
    Open {
        /// The agent.
        #[arg(long)]
        agent: String,
        /// What is wrong.
        #[arg(long)]
        reason: String,
        /// low, medium, high or critical.
        #[arg(long, default_value = "medium")]
        severity: String,
        /// Who owns the case.
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List incidents.
    List {
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The case file: trigger, containment, blast radius, classification, completeness, timeline.
    Show {
        /// `INC-42` or `42`.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change the classification, severity or owner (the reason is required and recorded).
    Update {
        id: String,
        /// scope_creep, drift, injection, authority_confusion or metric_gaming.
        #[arg(long)]
        pattern: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move the case: contained, repaired or closed (recovering is reached through `resume`).
    Transition {
        id: String,
        /// The new state: contained, repaired or closed.
        to: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Record the operating-model change that answers the broken assumption.
    Change {
        id: String,
        /// pact_version, suite_test or threshold.
        #[arg(long)]
        kind: String,
        /// What changed (the new pact version, the test added, the threshold).
        #[arg(long)]
        detail: String,
        /// The assumption that turned out wrong.
        #[arg(long)]
        broken_assumption: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve the agent's return (each approver counts once).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Record the postmortem (required to close).
    Postmortem {
        id: String,
        /// What everyone saw go wrong.
        #[arg(long)]
        visible_failure: String,
        /// The structural failure behind it (not the same as the visible one).
        #[arg(long)]
        structural_failure: String,
        #[arg(long)]
        broken_assumption: String,
        #[arg(long)]
        operating_model_change: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resume the agent: refused, naming what is missing, until every re-entry criterion is met.
    Resume {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Export the case's records as an offline-verifiable bundle.
    Export {
        id: String,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn incident_path(id: &str) -> anyhow::Result<String> {
    let number = id
        .trim()
        .trim_start_matches("INC-")
        .trim_start_matches("inc-")
        .parse::<u64>()
        .with_context(|| format!("`{id}` is not an incident id (INC-42 or 42)"))?;
    Ok(format!("/v1/incidents/{number}"))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    print_line(&serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn signals(args: SignalsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let path = format!("/v1/agents/{}/signals", args.agent);
    let value = if args.respond {
        client.call_json("POST", &path, Some("{}"))?
    } else {
        client.call_json("GET", &path, None)?
    };
    if args.client.json {
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let readings = value["readings"].as_array().cloned().unwrap_or_default();
    for reading in &readings {
        let mut scope = String::new();
        if let Some(category) = reading["category"].as_str() {
            scope = format!(" [{category}]");
        }
        if let Some(obligation) = reading["obligation"].as_str() {
            scope = format!("{scope} [{obligation}]");
        }
        print_line(format!(
            "{:<9} {}{}  {}",
            reading["level"].as_str().unwrap_or("?"),
            reading["signal"].as_str().unwrap_or("?"),
            scope,
            reading["message"].as_str().unwrap_or("")
        ));
    }
    if readings.is_empty() {
        print_line("no signal has evidence yet");
    }
    for taken in value["responses"].as_array().into_iter().flatten() {
        print_line(format!(
            "response: {} on {} (record {})",
            taken["response"].as_str().unwrap_or("?"),
            taken["signal"].as_str().unwrap_or("?"),
            taken["record"]
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn observe(args: ObserveArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let mut body = json!({ "agent": args.agent, "metric": args.metric, "value": args.value });
    if let Some(samples) = args.samples {
        body["n_samples"] = json!(samples);
    }
    let value = client.call_json("POST", "/v1/observations", Some(&body.to_string()))?;
    if args.client.json {
        print_json(&value)?;
    } else {
        print_line(format!("recorded as record {}", value["record"]));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn program(args: ProgramArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.client);
    let value = client.call_json("GET", "/v1/program", None)?;
    print_json(&value)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(command: IncidentCommand) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::Open {
            agent,
            reason,
            severity,
            owner,
            client,
        } => {
            let mut body = json!({ "agent": agent, "reason": reason, "severity": severity });
            if let Some(owner) = owner {
                body["owner"] = json!(owner);
            }
            let value =
                Client::new(&client).call_json("POST", "/v1/incidents", Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::List { agent, client } => {
            let path = match agent {
                Some(agent) => format!(
                    "/v1/incidents?agent={}",
                    crate::client_cmd::query_value(&agent)
                ),
                None => "/v1/incidents".to_owned(),
            };
            let value = Client::new(&client).call_json("GET", &path, None)?;
            if client.json {
                print_json(&value)?;
                return Ok(ExitCode::SUCCESS);
            }
            for item in value["incidents"].as_array().into_iter().flatten() {
                print_line(format!(
                    "{:<8} {:<10} {:<8} {:<20} {}",
                    item["label"].as_str().unwrap_or("?"),
                    item["state"].as_str().unwrap_or("?"),
                    item["severity"].as_str().unwrap_or("?"),
                    item["pattern"].as_str().unwrap_or("unclassified"),
                    item["agent"].as_str().unwrap_or("?"),
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Show { id, client } => {
            let path = incident_path(&id)?;
            let value = Client::new(&client).call_json("GET", &path, None)?;
            if client.json {
                print_json(&value)?;
            } else {
                print_line(value["text"].as_str().unwrap_or_default().trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Update {
            id,
            pattern,
            severity,
            owner,
            reason,
            client,
        } => {
            let body = json!({ "pattern": pattern, "severity": severity, "owner": owner, "reason": reason });
            let value = Client::new(&client).call_json(
                "PATCH",
                &incident_path(&id)?,
                Some(&body.to_string()),
            )?;
            summary(&client, &value)
        }
        IncidentCommand::Transition {
            id,
            to,
            reason,
            client,
        } => {
            let body = json!({ "to": to, "reason": reason });
            let path = format!("{}/state", incident_path(&id)?);
            let value = Client::new(&client).call_json("POST", &path, Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::Change {
            id,
            kind,
            detail,
            broken_assumption,
            client,
        } => {
            let body =
                json!({ "change": kind, "detail": detail, "broken_assumption": broken_assumption });
            let path = format!("{}/changes", incident_path(&id)?);
            let value = Client::new(&client).call_json("POST", &path, Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::Approve { id, reason, client } => {
            let body = json!({ "reason": reason });
            let path = format!("{}/approvals", incident_path(&id)?);
            let value = Client::new(&client).call_json("POST", &path, Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::Postmortem {
            id,
            visible_failure,
            structural_failure,
            broken_assumption,
            operating_model_change,
            client,
        } => {
            let body = json!({
                "visible_failure": visible_failure,
                "structural_failure": structural_failure,
                "broken_assumption": broken_assumption,
                "operating_model_change": operating_model_change,
            });
            let path = format!("{}/postmortem", incident_path(&id)?);
            let value = Client::new(&client).call_json("POST", &path, Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::Resume { id, reason, client } => {
            let body = json!({ "reason": reason });
            let path = format!("{}/resume", incident_path(&id)?);
            let value = Client::new(&client).call_json("POST", &path, Some(&body.to_string()))?;
            summary(&client, &value)
        }
        IncidentCommand::Export { id, output, client } => {
            let path = format!("{}/bundle", incident_path(&id)?);
            let text = Client::new(&client).call("POST", &path, Some("{}"))?;
            std::fs::write(&output, text)
                .with_context(|| format!("writing `{}`", output.display()))?;
            print_line(format!(
                "wrote {}; check it offline with `pactum verify {} --key KEY`",
                output.display(),
                output.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn summary(client: &ClientArgs, value: &Value) -> anyhow::Result<ExitCode> {
    if client.json {
        print_json(value)?;
    } else if let Some(text) = value["summary"].as_str() {
        print_line(text);
    } else {
        print_json(value)?;
    }
    Ok(ExitCode::SUCCESS)
}
