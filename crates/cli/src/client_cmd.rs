//! The CLI as a client of `pactum serve`: agents, pact push and activate, decide, approvals,
//! the kill switch, the oracle, the event stream and bundle export, with `--server` and
//! `--token` (or `PACTUM_SERVER`, `PACTUM_TOKEN`). Human output by default, `--json` for scripts.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::SERVER_DEFAULT;
use crate::output::print_line;

/// Largest response body read, in bytes (bundles are the largest).
const RESPONSE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Connect and read timeout of one call, in seconds (not of the event stream).
const CALL_TIMEOUT_SECS: u64 = 60;

/// Where the server is and who we are.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "PACTUM_SERVER", default_value = SERVER_DEFAULT)]
    pub server: String,
    /// API token (see `pactum token create`).
    #[arg(long, env = "PACTUM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Client subcommands, flattened into `pactum`'s own.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Agents on the server: register, list, show, update.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Approve a call waiting in review (by its verdict's record index).
    Approve(SettleArgs),
    /// Reject a call waiting in review.
    Reject(SettleArgs),
    /// List calls waiting in review.
    Approvals(ApprovalsArgs),
    /// Halt an agent: every decision that starts after this returns is `halted`.
    Halt(ControlArgs),
    /// Resume a halted agent.
    Resume(ControlArgs),
    /// Deny one action category of an agent.
    Restrict(CategoryArgs),
    /// Lift a category restriction.
    Unrestrict(CategoryArgs),
    /// The public oracle of an agent (no token needed).
    Oracle(OracleArgs),
    /// Follow the event stream (verdicts, halts, approvals, pact changes) until interrupted.
    Events(EventsArgs),
    /// Export an offline-verifiable bundle of an agent's records and the log's key.
    Bundle(BundleArgs),
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Register an agent.
    Register {
        /// Agent id, such as `acme/support-bot`.
        id: String,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        class: Option<String>,
        /// low, medium, high or critical.
        #[arg(long)]
        tier: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List agents.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one agent.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change an agent's class, tier or trial target.
    Update {
        id: String,
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        tier: Option<String>,
        /// Where the server sends this agent's trials: `webhook:URL` or `openai:URL#MODEL`
        /// (`""` clears it).
        #[arg(long, value_name = "TARGET")]
        trial_target: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args, Debug)]
pub struct SettleArgs {
    /// Record index of the `review` verdict.
    verdict: u64,
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ApprovalsArgs {
    #[arg(long)]
    agent: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct ControlArgs {
    agent: String,
    /// Why (recorded with who).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct CategoryArgs {
    agent: String,
    /// The action category.
    #[arg(long)]
    category: String,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct OracleArgs {
    agent: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[arg(long)]
    agent: Option<String>,
    /// Comma-separated kinds: verdict, halt, approval, pact, agent.
    #[arg(long)]
    kind: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    /// Export this agent's records.
    #[arg(long)]
    agent: String,
    /// Bundle file to write.
    #[arg(long, short = 'o', default_value = "bundle.json")]
    output: PathBuf,
    /// Also write the log's verifier key here (for `pactum verify --key`).
    #[arg(long)]
    key_out: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

/// `pactum pact push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The pact file (YAML or JSON); its `agent` names the agent.
    file: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

/// `pactum pact activate`.
#[derive(Args, Debug)]
pub struct ActivateArgs {
    /// Agent id.
    #[arg(long)]
    agent: String,
    /// Pact version.
    version: u64,
    #[command(flatten)]
    client: ClientArgs,
}

/// A client for one server.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(CALL_TIMEOUT_SECS))
            .build();
        Client {
            base: args.server.trim_end_matches('/').to_string(),
            token: args.token.clone(),
            agent,
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request
    }

    /// One call; a problem detail becomes an error naming its code and detail (and any
    /// pact diagnostics with their line and column).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<String> {
        let request = self
            .request(method, path)
            .timeout(Duration::from_secs(CALL_TIMEOUT_SECS));
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(body),
            None => request.call(),
        };
        match result {
            Ok(response) => read_text(response),
            Err(ureq::Error::Status(status, response)) => {
                let text = read_text(response).unwrap_or_default();
                Err(problem_error(status, &text))
            }
            Err(err) => Err(anyhow::anyhow!("cannot reach {}: {err}", self.base)),
        }
    }

    /// A long-lived `GET` (Server-Sent Events): no read timeout; a problem detail is an error.
    pub fn stream(&self, path: &str) -> anyhow::Result<BufReader<Box<dyn std::io::Read + Send>>> {
        match self.request("GET", path).call() {
            Ok(response) => Ok(BufReader::new(response.into_reader())),
            Err(ureq::Error::Status(status, response)) => Err(problem_error(
                status,
                &read_text(response).unwrap_or_default(),
            )),
            Err(err) => bail!("cannot reach {}: {err}", self.base),
        }
    }

    pub fn call_json(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
        let text = self.call(method, path, body)?;
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: the answer is not JSON"))
    }
}

fn read_text(response: ureq::Response) -> anyhow::Result<String> {
    let mut text = String::new();
    response
        .into_reader()
        .take(RESPONSE_BYTES_MAX)
        .read_to_string(&mut text)
        .context("reading the answer")?;
    Ok(text)
}

fn problem_error(status: u16, text: &str) -> anyhow::Error {
    let Ok(problem) = serde_json::from_str::<Value>(text) else {
        return anyhow::anyhow!("the server answered {status}: {text}");
    };
    let mut message = format!(
        "the server answered {status} {}: {}",
        problem["code"].as_str().unwrap_or("?"),
        problem["detail"].as_str().unwrap_or("")
    );
    if let Some(diagnostics) = problem["diagnostics"].as_array() {
        for diagnostic in diagnostics {
            message.push_str(&format!(
                "\n  {}:{}: {}[{}]: {}",
                diagnostic["line"],
                diagnostic["col"],
                diagnostic["severity"].as_str().unwrap_or(""),
                diagnostic["code"].as_str().unwrap_or(""),
                diagnostic["message"].as_str().unwrap_or("")
            ));
        }
    }
    anyhow::anyhow!(message)
}

/// A query-string value, percent-encoded except for unreserved characters and `/`.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Agent ids go into paths as they are (`acme/bot`); other characters are refused by the server.
fn agent_path(id: &str) -> String {
    format!("/v1/agents/{id}")
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    print_line(serde_json::to_string_pretty(value)?);
    Ok(())
}

fn agent_line(agent: &Value) -> String {
    let pact = match agent["active_pact"]["version"].as_u64() {
        Some(version) => format!("pact v{version}"),
        None => "no pact".to_string(),
    };
    format!(
        "{}  {}  tier {}  {}  decisions {} (denied {})",
        agent["id"].as_str().unwrap_or(""),
        agent["status"].as_str().unwrap_or(""),
        agent["tier"].as_str().unwrap_or(""),
        pact,
        agent["decisions"],
        agent["denials"]
    )
}

pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Agent(command) => run_agent(command),
        ClientCommand::Approve(args) => settle(args, "approve"),
        ClientCommand::Reject(args) => settle(args, "reject"),
        ClientCommand::Approvals(args) => {
            let client = Client::new(&args.client);
            let query = args
                .agent
                .map(|agent| format!("?agent={}", query_value(&agent)))
                .unwrap_or_default();
            let value = client.call_json("GET", &format!("/v1/approvals{query}"), None)?;
            if args.client.json {
                return print_json(&value);
            }
            for approval in value["approvals"].as_array().into_iter().flatten() {
                print_line(format!(
                    "{}  {}  {}  session {}  since {}",
                    approval["verdict"],
                    approval["agent"].as_str().unwrap_or(""),
                    approval["action"].as_str().unwrap_or(""),
                    approval["session"].as_str().unwrap_or(""),
                    approval["created"].as_str().unwrap_or("")
                ));
            }
            Ok(())
        }
        ClientCommand::Halt(args) => control(
            &args.client,
            &args.agent,
            "halt",
            json!({ "reason": args.reason }),
        ),
        ClientCommand::Resume(args) => control(
            &args.client,
            &args.agent,
            "resume",
            json!({ "reason": args.reason }),
        ),
        ClientCommand::Restrict(args) => control(
            &args.client,
            &args.agent,
            "restrict",
            json!({ "reason": args.reason, "category": args.category }),
        ),
        ClientCommand::Unrestrict(args) => control(
            &args.client,
            &args.agent,
            "unrestrict",
            json!({ "reason": args.reason, "category": args.category }),
        ),
        ClientCommand::Oracle(args) => {
            let client = Client::new(&args.client);
            let value = client.call_json("GET", &format!("/v1/oracle/{}", args.agent), None)?;
            if args.client.json {
                return print_json(&value);
            }
            print_line(format!(
                "{}: {}; decisions {}, denials {}",
                value["agent"].as_str().unwrap_or(""),
                value["status"].as_str().unwrap_or(""),
                value["counts"]["decisions"],
                value["counts"]["denials"]
            ));
            if let Some(digest) = value["pact"]["digest"].as_str() {
                print_line(format!(
                    "pact {} v{} {digest}",
                    value["pact"]["id"].as_str().unwrap_or(""),
                    value["pact"]["version"]
                ));
                for rule in value["pact"]["summary"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    print_line(format!("  rule {}", rule["summary"].as_str().unwrap_or("")));
                }
                for obligation in value["pact"]["summary"]["obligations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    print_line(format!(
                        "  obligation {}",
                        obligation["summary"].as_str().unwrap_or("")
                    ));
                }
            }
            print_line(score_line(&value["score"]));
            print_line(format!("log size {}", value["log"]["size"]));
            Ok(())
        }
        ClientCommand::Events(args) => events(args),
        ClientCommand::Bundle(args) => {
            let client = Client::new(&args.client);
            let bundle = client.call(
                "POST",
                "/v1/log/bundle",
                Some(&json!({ "agent": args.agent }).to_string()),
            )?;
            std::fs::write(&args.output, &bundle)
                .with_context(|| format!("writing `{}`", args.output.display()))?;
            if let Some(key_out) = &args.key_out {
                let checkpoint = client.call_json("GET", "/v1/log/checkpoint", None)?;
                let key = checkpoint["verifier_key"]
                    .as_str()
                    .context("no verifier key in the answer")?;
                std::fs::write(key_out, format!("{key}\n"))
                    .with_context(|| format!("writing `{}`", key_out.display()))?;
            }
            eprintln!("wrote {}", args.output.display());
            Ok(())
        }
    }
}

fn run_agent(command: AgentCommand) -> anyhow::Result<()> {
    let (client_args, value) = match command {
        AgentCommand::Register {
            id,
            owner,
            class,
            tier,
            client,
        } => {
            let body = json!({ "id": id, "owner": owner, "class": class, "tier": tier });
            let value =
                Client::new(&client).call_json("POST", "/v1/agents", Some(&body.to_string()))?;
            (client, value)
        }
        AgentCommand::List { client } => {
            let value = Client::new(&client).call_json("GET", "/v1/agents", None)?;
            if !client.json {
                for agent in value["agents"].as_array().into_iter().flatten() {
                    print_line(agent_line(agent));
                }
                return Ok(());
            }
            (client, value)
        }
        AgentCommand::Show { id, client } => {
            let value = Client::new(&client).call_json("GET", &agent_path(&id), None)?;
            (client, value)
        }
        AgentCommand::Update {
            id,
            class,
            tier,
            trial_target,
            client,
        } => {
            let body = json!({ "class": class, "tier": tier, "trial_target": trial_target });
            let value = Client::new(&client).call_json(
                "PATCH",
                &agent_path(&id),
                Some(&body.to_string()),
            )?;
            (client, value)
        }
    };
    if client_args.json {
        print_json(&value)
    } else {
        print_line(agent_line(&value));
        Ok(())
    }
}

/// The oracle's score in one line: points, interval, confidence, freshness, velocity.
fn score_line(score: &Value) -> String {
    let Some(points) = score["points"].as_u64() else {
        return "score: no evidence yet".to_string();
    };
    let interval = match score["interval_points"].as_array().map(Vec::as_slice) {
        Some([low, high]) => format!(" ({low}-{high})"),
        _ => String::new(),
    };
    let fresh = match score["freshness"]["newest_evidence_age_ms"].as_u64() {
        Some(ms) => format!("newest evidence {}s old", ms / 1000),
        None => "no dated evidence".to_string(),
    };
    let stale = score["freshness"]["stale_dimensions"]
        .as_array()
        .map_or(0, Vec::len);
    let velocity = match score["velocity"]["points_per_week"].as_i64() {
        Some(per_week) => format!("{per_week:+} points/week"),
        None => score["velocity"]["missing"]
            .as_str()
            .unwrap_or("no velocity")
            .to_string(),
    };
    format!(
        "score {points}/1000{interval}, confidence {}; {fresh}, {stale} stale dimensions; {velocity}",
        score["confidence"].as_str().unwrap_or("?")
    )
}

fn settle(args: SettleArgs, action: &str) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let body = json!({ "reason": args.reason }).to_string();
    let value = client.call_json(
        "POST",
        &format!("/v1/approvals/{}/{action}", args.verdict),
        Some(&body),
    )?;
    if args.client.json {
        return print_json(&value);
    }
    print_line(format!(
        "{} {} by {} (record {})",
        args.verdict,
        value["status"].as_str().unwrap_or(""),
        value["decided_by"].as_str().unwrap_or(""),
        value["record"]
    ));
    Ok(())
}

fn control(client_args: &ClientArgs, agent: &str, kind: &str, body: Value) -> anyhow::Result<()> {
    let client = Client::new(client_args);
    let value = client.call_json(
        "POST",
        &format!("{}/{kind}", agent_path(agent)),
        Some(&body.to_string()),
    )?;
    if client_args.json {
        return print_json(&value);
    }
    print_line(format!(
        "{agent}: {} (record {})",
        value["status"].as_str().unwrap_or(""),
        value["record"]
    ));
    Ok(())
}

fn events(args: EventsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let mut query = Vec::new();
    if let Some(agent) = &args.agent {
        query.push(format!("agent={}", query_value(agent)));
    }
    if let Some(kind) = &args.kind {
        query.push(format!("kind={kind}"));
    }
    let path = if query.is_empty() {
        "/v1/events".to_string()
    } else {
        format!("/v1/events?{}", query.join("&"))
    };
    let reader = client.stream(&path)?;
    let mut kind = String::new();
    let mut n_events = 0;
    for line in reader.lines() {
        let line = line.context("reading the event stream")?;
        if let Some(name) = line.strip_prefix("event: ") {
            kind = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if args.client.json {
                print_line(
                    json!({ "event": kind, "data": serde_json::from_str::<Value>(data).unwrap_or(Value::Null) }),
                );
            } else {
                let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                let record = &value["record"];
                let what = record["verdict"]["decision"]
                    .as_str()
                    .or_else(|| record["decision"].as_str())
                    .or_else(|| record["reason"].as_str())
                    .unwrap_or("");
                print_line(format!(
                    "{kind}  #{}  {}  {}  {what}",
                    value["index"],
                    record["agent"].as_str().unwrap_or(""),
                    record["kind"].as_str().unwrap_or("")
                ));
            }
            n_events += 1;
            if args.count.is_some_and(|count| n_events >= count) {
                break;
            }
        }
    }
    Ok(())
}

pub fn push(args: PushArgs) -> anyhow::Result<()> {
    let text = crate::decide_cmd::read_limited(&args.file, pact::PACT_BYTES_MAX as u64)?;
    let agent = pact::parse_doc(&text)
        .ok()
        .map(|doc| doc.agent)
        .or_else(|| {
            pact::parse_yaml(&text)
                .ok()
                .and_then(|value| value["agent"].as_str().map(str::to_string))
        })
        .context("the pact names no `agent`")?;
    let client = Client::new(&args.client);
    let value = client
        .call_json(
            "POST",
            &format!("{}/pacts", agent_path(&agent)),
            Some(&text),
        )
        .with_context(|| format!("pushing `{}`", args.file.display()))?;
    if args.client.json {
        return print_json(&value);
    }
    print_line(format!(
        "{agent} pact v{} {} (record {}){}",
        value["version"],
        value["digest"].as_str().unwrap_or(""),
        value["record"],
        if value["active"] == json!(true) {
            ", active"
        } else {
            "; activate with `pactum pact activate`"
        }
    ));
    Ok(())
}

pub fn activate(args: ActivateArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client);
    let value = client.call_json(
        "POST",
        &format!(
            "{}/pacts/{}/activate",
            agent_path(&args.agent),
            args.version
        ),
        None,
    )?;
    if args.client.json {
        return print_json(&value);
    }
    print_line(format!(
        "{} pact v{} active (record {})",
        args.agent, args.version, value["record"]
    ));
    Ok(())
}

/// `pactum decide --server`: the verdict JSON as the server answered it (with its `record`).
pub fn decide_remote(client_args: &ClientArgs, request_text: &str) -> anyhow::Result<()> {
    let value = Client::new(client_args).call_json("POST", "/v1/decide", Some(request_text))?;
    print_json(&value)
}
