//! `pactum gateway`: the MCP gateway, configured from a file and flags, against a Pactum server
//! (`--server URL --token T`) or a data directory opened in this process (`--data DIR --pact
//! FILE`). Stdout belongs to MCP over stdio: everything for people goes to stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use gateway::{
    Backend, FileConfig, FlaggedResults, GatewayConfig, GatewayLimits, Mode, Namespacing, Shared,
    Upstream,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::CONFIG_BYTES_MAX;

/// `pactum gateway ...` to run one; `pactum gateway report|tools|accept` about one.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<crate::gateway_admin_cmd::GatewayAdminCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// YAML or JSON config file (keys: agent, server, token, data, pact, mode, listen,
    /// upstreams, namespacing, flagged_results, limits.*); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The agent whose pact governs the calls.
    #[arg(long, value_name = "ID", env = "PACTUM_AGENT")]
    pub agent: Option<String>,
    /// A Pactum server: verdicts, approvals, halts and records go through it.
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub server: Option<String>,
    /// The gateway's token on that server: an agent token of `--agent`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PACTUM_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// One machine, no server: this data directory is opened here (not while a `pactum
    /// serve` has it open).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// With `--data`: the pact file to activate for the agent (uploaded when it is new).
    #[arg(long, value_name = "FILE", requires = "data")]
    pub pact: Option<PathBuf>,
    /// An upstream MCP server: `NAME=stdio:COMMAND ARGS...` or `NAME=http:URL` (repeatable).
    #[arg(long = "upstream", value_name = "SPEC")]
    pub upstreams: Vec<String>,
    /// `enforce` decides and refuses; `observe` decides, records and forwards everything.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Serve Streamable HTTP at `http://ADDR/mcp` instead of stdio (clients send an agent
    /// token as `Authorization: Bearer`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// With `--data`: also serve Pactum's HTTP API here, so that `pactum approve`, `pactum
    /// halt` and `pactum gateway report` can reach it.
    #[arg(long, value_name = "ADDR", requires = "data")]
    pub api_listen: Option<SocketAddr>,
    /// How long a call sent to review waits for a person [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub review_timeout: Option<String>,
    /// What to do with a tool result carrying a likely prompt injection [default: pass].
    #[arg(long, value_enum)]
    pub flagged_results: Option<FlaggedArg>,
    /// Prefix tool names with their upstream's name (`fs__read_file`) [default: auto: when
    /// there are several upstreams].
    #[arg(long, value_enum)]
    pub namespacing: Option<NamespacingArg>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ModeArg {
    Enforce,
    Observe,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FlaggedArg {
    Pass,
    Mark,
    Withhold,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum NamespacingArg {
    Auto,
    Always,
    Never,
}

/// Where decisions are asked.
enum Where {
    Server { url: String, token: String },
    Data { dir: PathBuf, pact: Option<PathBuf> },
}

/// The configuration with file, environment and flags merged.
struct Resolved {
    config: GatewayConfig,
    place: Where,
    listen: Option<SocketAddr>,
    api_listen: Option<SocketAddr>,
}

pub fn run(args: GatewayArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Some(command) = args.command {
        return Ok(crate::gateway_admin_cmd::run(command));
    }
    let resolved = resolve(args.run)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(resolved))?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
    if metadata.len() > CONFIG_BYTES_MAX {
        bail!(
            "`{}` is {} bytes; a config file is at most {CONFIG_BYTES_MAX}",
            path.display(),
            metadata.len()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let value = pact::parse_yaml(&text).map_err(|diagnostic| {
        anyhow::anyhow!("{}", diagnostic.render(&path.display().to_string()))
    })?;
    let config: FileConfig = serde_path_to_error::deserialize(value)
        .map_err(|err| anyhow::anyhow!("{}: `{}`: {}", path.display(), err.path(), err.inner()))?;
    Ok(config)
}

fn resolve(args: RunArgs) -> anyhow::Result<Resolved> {
    let file = match &args.config {
        Some(path) => read_file_config(path)?,
        None => FileConfig::default(),
    };
    let base = args
        .config
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    // Paths in the file are relative to the file.
    let in_file = |path: PathBuf| {
        if path.is_absolute() {
            path
        } else {
            base.join(path)
        }
    };
    let agent = args
        .agent
        .or(file.agent)
        .context("which agent? give --agent ID (or `agent:` in the config file)")?;
    let server = args.server.or(if args.data.is_some() {
        None
    } else {
        file.server
    });
    let data = args.data.or(file.data.map(in_file));
    let pact = args.pact.or(file.pact.map(in_file));
    let place = match (server, data) {
        (Some(_), Some(_)) => bail!("give either a server (--server) or a data directory (--data), not both"),
        (Some(url), None) => {
            let token = args.token.or(file.token).with_context(|| {
                format!("--server needs the gateway's token: an agent token of `{agent}` (--token or PACTUM_TOKEN)")
            })?;
            Where::Server { url, token }
        }
        (None, Some(dir)) => Where::Data { dir, pact },
        (None, None) => bail!(
            "where are decisions made? give --server URL --token T (a Pactum server), or --data DIR --pact FILE (this machine)"
        ),
    };
    let mut upstreams = file.upstreams;
    for spec in &args.upstreams {
        upstreams.push(Upstream::parse(spec)?);
    }
    let mut limits: GatewayLimits = file.limits.unwrap_or_default();
    if let Some(text) = &args.review_timeout {
        limits.review_timeout_ms = pact::parse_duration_ms(text)
            .map_err(|err| anyhow::anyhow!("--review-timeout `{text}`: {err}"))?;
    }
    let mode = match args.mode {
        Some(ModeArg::Enforce) => Mode::Enforce,
        Some(ModeArg::Observe) => Mode::Observe,
        None => file.mode.unwrap_or(Mode::Enforce),
    };
    let flagged_results = match args.flagged_results {
        Some(FlaggedArg::Pass) => FlaggedResults::Pass,
        Some(FlaggedArg::Mark) => FlaggedResults::Mark,
        Some(FlaggedArg::Withhold) => FlaggedResults::Withhold,
        None => file.flagged_results.unwrap_or_default(),
    };
    let namespacing = match args.namespacing {
        Some(NamespacingArg::Auto) => Namespacing::Auto,
        Some(NamespacingArg::Always) => Namespacing::Always,
        Some(NamespacingArg::Never) => Namespacing::Never,
        None => file.namespacing.unwrap_or_default(),
    };
    let listen = match (args.listen, file.listen) {
        (Some(addr), _) => Some(addr),
        (None, Some(text)) => Some(text.parse().with_context(|| {
            format!("`listen: {text}` is not an address such as 127.0.0.1:7701")
        })?),
        (None, None) => None,
    };
    let config = GatewayConfig {
        agent,
        mode,
        upstreams,
        namespacing,
        flagged_results,
        limits,
    };
    config.check()?;
    Ok(Resolved {
        config,
        place,
        listen,
        api_listen: args.api_listen,
    })
}

async fn serve(resolved: Resolved) -> anyhow::Result<()> {
    let Resolved {
        config,
        place,
        listen,
        api_listen,
    } = resolved;
    let timeout_ms = config.limits.decide_timeout_ms;
    let shutdown = CancellationToken::new();
    let (backend, token, api) = match place {
        Where::Server { url, token } => (
            Backend::remote(&url, timeout_ms).context("the Pactum server's client")?,
            token,
            None,
        ),
        Where::Data { dir, pact } => {
            let (backend, token, app) =
                open_embedded(&dir, pact.as_deref(), &config.agent, timeout_ms).await?;
            (backend, token, Some(app))
        }
    };
    let mode = config.mode;
    let agent = config.agent.clone();
    let shared = Shared::start(config, backend, token).await?;
    let offered = shared.offered_count().await;
    eprintln!(
        "pactum gateway: agent `{agent}`, mode {}, {} upstream(s), {offered} tool(s) offered",
        mode.as_str(),
        shared.upstreams.len()
    );
    let api_task = match (api, api_listen) {
        (Some(app), Some(addr)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} for the API"))?;
            let bound = listener.local_addr().context("reading the bound address")?;
            eprintln!("pactum gateway: Pactum API on http://{bound}");
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                let _ = server::serve(listener, app, async move { stop.cancelled().await }).await;
            }))
        }
        _ => None,
    };
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            server::shutdown_signal().await;
            shutdown.cancel();
        });
    }
    let result = match listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            let bound = listener.local_addr().context("reading the bound address")?;
            eprintln!(
                "pactum gateway: listening on http://{bound}{}",
                gateway::MCP_PATH
            );
            gateway::run_http(shared, listener, shutdown.clone()).await
        }
        None => {
            tokio::select! {
                result = gateway::run_stdio(shared.clone()) => result,
                () = shutdown.cancelled() => {
                    shared.close().await;
                    Ok(())
                }
            }
        }
    };
    shutdown.cancel();
    if let Some(task) = api_task {
        let _ = task.await;
    }
    result?;
    Ok(())
}

/// Registers `agent` unless it exists, and uploads and activates `pact` (its text, and how to
/// name it in messages) unless that version is already active; says what it changed on stderr.
pub(crate) async fn ensure_agent(
    backend: &Backend,
    admin: &str,
    agent: &str,
    pact: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let agent_path = gateway::backend::agent_path(agent);
    match backend
        .call("GET", &format!("/v1/agents/{agent_path}"), admin, None)
        .await
    {
        Ok(_) => {}
        Err(gateway::BackendError::Problem { status: 404, .. }) => {
            backend
                .call("POST", "/v1/agents", admin, Some(&json!({ "id": agent })))
                .await
                .with_context(|| format!("registering agent `{agent}`"))?;
            eprintln!("pactum gateway: registered agent `{agent}`");
        }
        Err(err) => return Err(err).with_context(|| format!("reading agent `{agent}`")),
    }
    let Some((text, label)) = pact else {
        return Ok(());
    };
    let pushed: Value = backend
        .call_body(
            "POST",
            &format!("/v1/agents/{agent_path}/pacts"),
            admin,
            Some((text.as_bytes().to_vec(), "application/yaml")),
        )
        .await
        .with_context(|| format!("uploading {label}"))?;
    if pushed["active"] != json!(true) {
        let version = pushed["version"].as_u64().unwrap_or_default();
        backend
            .call(
                "POST",
                &format!("/v1/agents/{agent_path}/pacts/{version}/activate"),
                admin,
                None,
            )
            .await
            .with_context(|| format!("activating version {version} of {label}"))?;
        eprintln!("pactum gateway: pact version {version} of `{agent}` is active");
    }
    Ok(())
}

/// Opens the data directory here: registers the agent and activates the pact file if needed,
/// and gives the gateway a token that lives as long as this process.
async fn open_embedded(
    dir: &Path,
    pact_file: Option<&Path>,
    agent: &str,
    timeout_ms: u64,
) -> anyhow::Result<(Backend, String, server::AppState)> {
    let effective = crate::config::resolve(
        &crate::config::ConfigArgs {
            data: Some(dir.to_path_buf()),
            ..Default::default()
        },
        None,
        None,
    )?;
    let opened = server::AppState::open(server::AppConfig {
        data_dir: dir.to_path_buf(),
        limits: effective.limits.clone(),
        simulated_clock: false,
        notify: effective.notify.clone(),
    })
    .with_context(|| format!("opening data directory `{}`", dir.display()))?;
    if opened.new_admin_token.is_some() {
        eprintln!(
            "pactum gateway: new data directory; its admin token is in {}",
            dir.join(server::ADMIN_TOKEN_FILE).display()
        );
    }
    let app = opened.app;
    let router = server::router(app.clone());
    let backend = Backend::new(gateway::Api::Local(router), timeout_ms);
    let admin = app.issue_process_token(server::auth::Role::Admin, None, "pactum gateway setup");
    let pact = match pact_file {
        Some(file) => Some((
            std::fs::read_to_string(file)
                .with_context(|| format!("reading `{}`", file.display()))?,
            format!("`{}`", file.display()),
        )),
        None => None,
    };
    let pact = pact
        .as_ref()
        .map(|(text, label)| (text.as_str(), label.as_str()));
    ensure_agent(&backend, &admin, agent, pact).await?;
    let token = app.issue_process_token(server::auth::Role::Agent, Some(agent), "pactum gateway");
    Ok((backend, token, app))
}
