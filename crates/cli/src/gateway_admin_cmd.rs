//! `pactum gateway report | tools | accept`: what an operator asks the server about an MCP
//! gateway's agent: what its observed (unenforced) calls would have met, the tool definitions
//! it pinned, and accepting a changed one. A client of `pactum serve` like `client_cmd`, with
//! `--server` and `--token` (or `PACTUM_SERVER`, `PACTUM_TOKEN`) and `--json`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::client_cmd::{query_value, Client, ClientArgs};
use crate::output::print_line;

/// Gateway administration subcommands.
#[derive(Subcommand, Debug)]
pub enum GatewayAdminCommand {
    /// What an observe-mode gateway's calls would have met: denials and reviews per tool and
    /// rule over a period (`GET /v1/agents/{id}/shadow`).
    Report(ReportArgs),
    /// The tool definitions pinned for an agent, with their status.
    Tools(ToolsArgs),
    /// Accept a changed (or flagged) tool definition: its pin becomes that digest.
    Accept(AcceptArgs),
}

/// `pactum gateway report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The agent.
    #[arg(long)]
    pub agent: String,
    /// The period, back from now (`24h`, `7d`, `90m`).
    #[arg(long, default_value = "24h")]
    pub since: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `pactum gateway tools`.
#[derive(Args, Debug)]
pub struct ToolsArgs {
    /// The agent.
    #[arg(long)]
    pub agent: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `pactum gateway accept`.
#[derive(Args, Debug)]
pub struct AcceptArgs {
    /// The agent.
    #[arg(long)]
    pub agent: String,
    /// The tool's name.
    pub tool: String,
    /// The definition's digest to accept (`sha256:...`, as `tools` or the gateway shows it).
    #[arg(long)]
    pub digest: String,
    /// Why it may be offered (recorded).
    #[arg(long)]
    pub reason: String,
    /// The upstream offering it, when several offer a tool of this name.
    #[arg(long)]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs one subcommand; errors are printed on one line and exit with 2.
pub fn run(command: GatewayAdminCommand) -> ExitCode {
    let result = match command {
        GatewayAdminCommand::Report(args) => report(&args),
        GatewayAdminCommand::Tools(args) => tools(&args),
        GatewayAdminCommand::Accept(args) => accept(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn agent_path(agent: &str) -> String {
    // Agent ids are segments of `[A-Za-z0-9._-]`: nothing to encode.
    format!("/v1/agents/{agent}")
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let path = format!(
        "{}/shadow?since={}",
        agent_path(&args.agent),
        query_value(&args.since)
    );
    let value = Client::new(&args.client).call_json("GET", &path, None)?;
    if args.client.json {
        print_line(&value);
        return Ok(ExitCode::SUCCESS);
    }
    for line in report_lines(&value) {
        print_line(line);
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text: totals, then a table of the groups that would have been denied, halted
/// or sent to review.
fn report_lines(value: &Value) -> Vec<String> {
    let totals = &value["totals"];
    let mut lines = vec![format!(
        "{}: {} observed calls from {} to {}: {} would have been denied, {} halted, {} sent to review, {} allowed",
        value["agent"].as_str().unwrap_or("?"),
        totals["n_observed"],
        value["since"].as_str().unwrap_or("?"),
        value["until"].as_str().unwrap_or("?"),
        totals["n_deny"],
        totals["n_halted"],
        totals["n_review"],
        totals["n_allow"],
    )];
    let rows: Vec<[String; 6]> = value["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|group| group["decision"] != "allow")
        .map(|group| {
            [
                group["decision"].as_str().unwrap_or("?").to_string(),
                group["action"].as_str().unwrap_or("?").to_string(),
                group["rule"].as_str().unwrap_or("").to_string(),
                group["n_verdicts"].to_string(),
                format!("{}..{}", group["first_record"], group["last_record"]),
                group["example_record"].to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        lines.push("nothing would have been denied or sent to review".to_string());
    } else {
        lines.extend(table(
            ["would", "tool", "rule", "calls", "records", "example"],
            &rows,
        ));
    }
    if value["bound"]["hit"] == true {
        lines.push(format!(
            "note: only the first {} verdicts of the period were read (through record {}); the newest are not counted",
            value["bound"]["verdicts_read_max"], value["bound"]["read_to_record"]
        ));
    }
    if value["n_groups_omitted"].as_u64().unwrap_or(0) > 0 {
        lines.push(format!(
            "note: {} further (tool, decision, rule) groups are not listed",
            value["n_groups_omitted"]
        ));
    }
    lines
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|name| name.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut lines = vec![render(header.to_vec())];
    for row in rows {
        lines.push(render(row.iter().map(String::as_str).collect()));
    }
    lines
}

fn tools(args: &ToolsArgs) -> anyhow::Result<ExitCode> {
    let path = format!("{}/tools", agent_path(&args.agent));
    let value = Client::new(&args.client).call_json("GET", &path, None)?;
    if args.client.json {
        print_line(&value);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = value["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| {
            [
                tool["upstream"].as_str().unwrap_or("?").to_string(),
                tool["name"].as_str().unwrap_or("?").to_string(),
                tool["status"].as_str().unwrap_or("?").to_string(),
                tool["digest"].as_str().unwrap_or("?").to_string(),
                tool["pending_digest"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        print_line(format!("{}: no tools pinned", args.agent));
        return Ok(ExitCode::SUCCESS);
    }
    for line in table(
        [
            "upstream",
            "tool",
            "status",
            "pinned digest",
            "waiting digest",
        ],
        &rows,
    ) {
        print_line(line);
    }
    Ok(ExitCode::SUCCESS)
}

fn accept(args: &AcceptArgs) -> anyhow::Result<ExitCode> {
    let path = format!(
        "{}/tools/{}/accept",
        agent_path(&args.agent),
        query_value(&args.tool)
    );
    let mut body = json!({ "digest": args.digest, "reason": args.reason });
    if let Some(upstream) = &args.upstream {
        body["upstream"] = json!(upstream);
    }
    let value = Client::new(&args.client).call_json("POST", &path, Some(&body.to_string()))?;
    if args.client.json {
        print_line(&value);
    } else {
        print_line(format!(
            "{} of {} is pinned at {} (record {})",
            value["name"].as_str().unwrap_or("?"),
            value["upstream"].as_str().unwrap_or("?"),
            value["digest"].as_str().unwrap_or("?"),
            value["record"]
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_what_would_have_been_stopped() {
        let value = json!({
            "agent": "acme/bot", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z",
            "totals": { "n_observed": 3, "n_deny": 2, "n_halted": 0, "n_review": 0, "n_allow": 1 },
            "groups": [
                { "action": "issue_refund", "decision": "deny", "rule": "no-refunds", "n_verdicts": 2,
                  "first_record": 5, "last_record": 9, "example_record": 5 },
                { "action": "lookup", "decision": "allow", "rule": "answers", "n_verdicts": 1,
                  "first_record": 7, "last_record": 7, "example_record": 7 },
            ],
            "n_groups_omitted": 0,
            "bound": { "verdicts_read_max": 100000, "hit": true, "read_to_record": 9 },
        });
        let lines = report_lines(&value);
        assert!(lines[0].contains("3 observed calls"), "{lines:?}");
        assert!(lines[1].starts_with("would  tool"), "{lines:?}");
        assert!(lines[2].contains("issue_refund") && lines[2].contains("no-refunds"));
        assert!(!lines.iter().any(|line| line.contains("lookup")));
        assert!(lines.last().unwrap().contains("only the first 100000"));
    }
}
