//! `pactum bench gateway`: what a `tools/call` costs through `pactum gateway` over calling the
//! same upstream directly, with durable evidence (a verdict and an outcome record per call,
//! each acknowledged after its group commit's fsync).
//!
//! Every process is a child of this one, as in a deployment: the upstream (a built-in echo
//! server, `--serve-echo`, or any `--upstream SPEC`), `pactum gateway` and `pactum serve`. The
//! MCP client here is `rmcp`'s, the same SDK the gateway is built on. Series, each one client
//! per path, calls alternated one by one between the direct path and the gateway so that both
//! see the same machine at the same moment (added latency is a difference of percentiles from
//! one run, not of two runs):
//!
//! - stdio: the upstream over stdio, vs `pactum gateway --data DIR --pact FILE` over stdio with
//!   the same upstream (the data directory opened in the gateway's process);
//! - stdio through a server: the same, with `pactum gateway --server URL --token T` (every
//!   decision and outcome one more HTTP hop away, to `pactum serve`);
//! - http: the upstream over Streamable HTTP, vs `pactum gateway --server ... --listen ADDR`
//!   over Streamable HTTP, whose upstream is that same HTTP endpoint.
//!
//! Then calls per second through one HTTP gateway with `--concurrency` sessions for `--secs`
//! (and the same against the upstream directly, for the ratio), and memory per open session:
//! the gateway's VmRSS before and after `--sessions` idle HTTP sessions (initialize +
//! tools/list each). Each data directory's log is counted afterwards: it must hold two records
//! per call through a gateway.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use gateway::{Backend, Transport, Upstream};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};

/// The agent every gateway here acts for.
const BENCH_AGENT: &str = "bench/gateway";
/// The tool of the built-in echo upstream.
const ECHO_TOOL: &str = "echo";
/// Bound on each wait for a child to start or stop.
const START_SECS: u64 = 30;
/// Bound on each MCP call.
const CALL_SECS: u64 = 30;
/// The issue's targets for the added latency on this machine.
const TARGET_ADDED_MS_P50: f64 = 0.5;
const TARGET_ADDED_MS_P99: f64 = 2.0;
/// Sessions opened at once while measuring memory per session.
const SESSIONS_OPENED_AT_ONCE: usize = 8;

/// Measure `tools/call` through `pactum gateway` against calling the upstream directly.
#[derive(Args, Debug)]
pub struct GatewayBenchArgs {
    /// Timed calls per path and series (after the warm-up).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub calls: u64,
    /// Untimed calls per path and series first.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub warmup: u64,
    /// Concurrent HTTP sessions for calls per second.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=512))]
    pub concurrency: u64,
    /// Seconds each calls-per-second run lasts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub secs: u64,
    /// Idle HTTP sessions opened to measure the gateway's memory per session (0: skip).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=900))]
    pub sessions: u64,
    /// Bench against this upstream instead of the built-in echo: `stdio:COMMAND ARGS...` or
    /// `http:URL` (optionally `NAME=` first, as for `pactum gateway --upstream`).
    #[arg(long, value_name = "SPEC")]
    pub upstream: Option<String>,
    /// The tool to call.
    #[arg(long, default_value = ECHO_TOOL)]
    pub tool: String,
    /// Its arguments, a JSON object.
    #[arg(
        long,
        value_name = "JSON",
        default_value = r#"{"message":"hello from pactum bench gateway"}"#
    )]
    pub args: String,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
    /// Serve the built-in echo upstream (tool `echo {message}`) over stdio, or over Streamable
    /// HTTP at `http://ADDR/mcp` with `--listen`; the benchmark starts it as a child.
    #[arg(long, hide = true)]
    pub serve_echo: bool,
    /// With `--serve-echo`: the address to serve Streamable HTTP at.
    #[arg(long, hide = true, value_name = "ADDR", requires = "serve_echo")]
    pub listen: Option<SocketAddr>,
}

pub fn run(args: GatewayBenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    if args.serve_echo {
        return runtime.block_on(serve_echo(args.listen));
    }
    let tool_args: JsonObject = serde_json::from_str(&args.args)
        .with_context(|| format!("--args `{}` is not a JSON object", args.args))?;
    let upstream = match &args.upstream {
        Some(spec) => Some(Upstream::parse(spec)?),
        None => None,
    };
    // Ctrl-C or SIGTERM ends the benchmark: leaving `bench` drops every child handle, and
    // each is killed on drop.
    runtime.block_on(async {
        tokio::select! {
            result = bench(&args, upstream, tool_args) => result,
            () = server::shutdown_signal() => bail!("interrupted"),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The built-in echo upstream.

/// One tool, `echo {message: string}`, answering with the message.
#[derive(Clone)]
struct Echo;

fn echo_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "message": { "type": "string", "description": "The text to send back" } },
        "required": ["message"],
    });
    let schema = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(ECHO_TOOL, "Sends the message back", Arc::new(schema))
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("pactum-bench-echo", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![echo_tool()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != ECHO_TOOL {
            return Err(McpError::invalid_params(
                format!("no tool `{}`; this server has `echo`", request.name),
                None,
            ));
        }
        let message = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("message"))
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::invalid_params("`message` must be a string", None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(message.to_string())]).into())
    }
}

async fn serve_echo(listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let Some(addr) = listen else {
        let running = Echo
            .serve(rmcp::transport::stdio())
            .await
            .context("the echo server over stdio")?;
        running
            .waiting()
            .await
            .context("the echo server over stdio")?;
        return Ok(());
    };
    // The gateway's own Streamable HTTP settings (SSE answers, stateful sessions), so that
    // both sides of the comparison speak the same protocol.
    let stop = tokio_util::sync::CancellationToken::new();
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let router = axum::Router::new().route_service(gateway::MCP_PATH, service);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            server::shutdown_signal().await;
            stop.cancel();
        })
        .await
        .context("serving the echo server over HTTP")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Children.

/// A child process that is killed when its handle is dropped (on an error too).
struct Child {
    name: &'static str,
    process: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> anyhow::Result<Child> {
        let stderr = File::create(&log).with_context(|| format!("creating `{}`", log.display()))?;
        let process = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} (`{}`)", program.display()))?;
        Ok(Child { name, process, log })
    }

    fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Waits until `addr` accepts connections; an error with the child's log if it exits or
    /// takes too long.
    async fn wait_listening(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(START_SECS);
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, log_tail(&self.log));
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} within {START_SECS} s:\n{}",
                    self.name,
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within the bound: a gateway stops its own
    /// stdio upstreams on SIGTERM.
    async fn stop(mut self) {
        if let Some(pid) = self.pid().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let waited =
            tokio::time::timeout(Duration::from_secs(START_SECS), self.process.wait()).await;
        if waited.is_err() {
            let _ = self.process.kill().await;
        }
    }
}

/// The last lines of a child's stderr, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(20);
    lines.get(start..).unwrap_or_default().join("\n")
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// A word of an upstream spec, quoted when it holds white space.
fn spec_word(word: &str) -> String {
    if word.chars().any(char::is_whitespace) {
        format!("'{word}'")
    } else {
        word.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// MCP clients.

type Client = RunningService<RoleClient, ()>;

/// How a client reaches an MCP server.
#[derive(Clone, Debug)]
enum Target {
    Stdio {
        program: String,
        args: Vec<String>,
        log: PathBuf,
    },
    Http {
        url: String,
        token: Option<String>,
    },
}

impl Target {
    fn of_upstream(upstream: &Upstream, log: PathBuf) -> anyhow::Result<Target> {
        match &upstream.transport {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                if !env.is_empty() || cwd.is_some() {
                    bail!("an upstream with `env` or `cwd` is not supported here");
                }
                Ok(Target::Stdio {
                    program: command.clone(),
                    args: args.clone(),
                    log,
                })
            }
            Transport::Http { url, headers } => {
                if !headers.is_empty() {
                    bail!("an upstream with headers is not supported here");
                }
                Ok(Target::Http {
                    url: url.clone(),
                    token: None,
                })
            }
        }
    }

    fn transport_name(&self) -> &'static str {
        match self {
            Target::Stdio { .. } => "stdio",
            Target::Http { .. } => "http",
        }
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let connecting = async {
            match self {
                Target::Stdio { program, args, log } => {
                    let stderr = File::options()
                        .create(true)
                        .append(true)
                        .open(log)
                        .with_context(|| format!("opening `{}`", log.display()))?;
                    let mut command = tokio::process::Command::new(program);
                    command.args(args).kill_on_drop(true);
                    let (transport, _) = TokioChildProcess::builder(command)
                        .stderr(stderr)
                        .spawn()
                        .with_context(|| format!("starting `{program}`"))?;
                    ().serve(transport).await.with_context(|| {
                        format!(
                            "initializing an MCP session with `{program}`:\n{}",
                            log_tail(log)
                        )
                    })
                }
                Target::Http { url, token } => {
                    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    if let Some(token) = token {
                        config = config.auth_header(token.clone());
                    }
                    let transport = StreamableHttpClientTransport::from_config(config);
                    ().serve(transport)
                        .await
                        .with_context(|| format!("initializing an MCP session with {url}"))
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(START_SECS), connecting)
            .await
            .with_context(|| format!("no MCP session within {START_SECS} s ({self:?})"))?
    }
}

/// One call, checked: a tool error (a refusal by the gateway, say) ends the benchmark.
async fn call_once(client: &Client, params: &CallToolRequestParams) -> anyhow::Result<()> {
    let result = tokio::time::timeout(
        Duration::from_secs(CALL_SECS),
        client.peer().call_tool(params.clone()),
    )
    .await
    .with_context(|| format!("`{}` did not answer within {CALL_SECS} s", params.name))?
    .with_context(|| format!("calling `{}`", params.name))?;
    if result.is_error == Some(true) {
        let text = serde_json::to_value(&result)
            .ok()
            .and_then(|value| value["content"][0]["text"].as_str().map(str::to_string))
            .unwrap_or_default();
        bail!("`{}` answered with an error: {text}", params.name);
    }
    Ok(())
}

/// Fails unless `client` lists `tool`.
async fn require_tool(client: &Client, tool: &str, what: &str) -> anyhow::Result<()> {
    let tools = client
        .peer()
        .list_all_tools()
        .await
        .with_context(|| format!("tools/list of {what}"))?;
    if !tools.iter().any(|listed| listed.name == tool) {
        let names: Vec<&str> = tools.iter().map(|listed| listed.name.as_ref()).collect();
        bail!(
            "{what} does not offer `{tool}` (it lists: {})",
            names.join(", ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Latencies of one path, in nanoseconds, sorted.
struct Latencies(Vec<u64>);

impl Latencies {
    fn new(mut nanos: Vec<u64>) -> Latencies {
        nanos.sort_unstable();
        Latencies(nanos)
    }

    fn ms_at(&self, fraction: f64) -> f64 {
        let rank = ((self.0.len() as f64 - 1.0) * fraction).round() as usize;
        self.0.get(rank).copied().unwrap_or(0) as f64 / 1e6
    }
}

/// One series: the direct path against a gateway.
struct Series {
    label: &'static str,
    direct_transport: &'static str,
    direct: Latencies,
    gateway: Latencies,
}

impl Series {
    fn added_ms(&self, fraction: f64) -> f64 {
        self.gateway.ms_at(fraction) - self.direct.ms_at(fraction)
    }

    fn to_json(&self) -> Value {
        json!({
            "series": self.label,
            "direct_transport": self.direct_transport,
            "direct_ms_p50": round3(self.direct.ms_at(0.50)),
            "direct_ms_p99": round3(self.direct.ms_at(0.99)),
            "gateway_ms_p50": round3(self.gateway.ms_at(0.50)),
            "gateway_ms_p99": round3(self.gateway.ms_at(0.99)),
            "added_ms_p50": round3(self.added_ms(0.50)),
            "added_ms_p99": round3(self.added_ms(0.99)),
        })
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn bar(n_steps: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(n_steps),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_message(message);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:<32} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

async fn bench(
    args: &GatewayBenchArgs,
    upstream: Option<Upstream>,
    tool_args: JsonObject,
) -> anyhow::Result<()> {
    let load_start = load_average();
    let exe = std::env::current_exe().context("finding this program's path")?;
    let exe_text = exe.to_string_lossy().into_owned();
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let logs = work.path();
    let mut params = CallToolRequestParams::new(args.tool.clone());
    params.arguments = Some(tool_args);

    // The upstream, over stdio and (the built-in echo, or an `http:` spec) over HTTP.
    let mut echo_http = None;
    let (stdio_upstream, http_upstream, upstream_label) = match &upstream {
        Some(spec) => (
            spec.clone(),
            spec.clone(),
            args.upstream.clone().unwrap_or_default(),
        ),
        None => {
            let stdio = Upstream::parse(&format!(
                "echo=stdio:{} bench gateway --serve-echo",
                spec_word(&exe_text)
            ))?;
            let addr = free_addr()?;
            let mut child = Child::spawn(
                "the echo server",
                &exe,
                &[
                    "bench".into(),
                    "gateway".into(),
                    "--serve-echo".into(),
                    "--listen".into(),
                    addr.to_string(),
                ],
                logs.join("echo-http.log"),
            )?;
            child.wait_listening(addr).await?;
            echo_http = Some(child);
            let http = Upstream::parse(&format!("echo=http:http://{addr}{}", gateway::MCP_PATH))?;
            (stdio, http, "built-in echo".to_string())
        }
    };
    let upstream_spec = |upstream: &Upstream| -> String {
        match &upstream.transport {
            Transport::Stdio { command, args, .. } => {
                let mut words = vec![spec_word(command)];
                words.extend(args.iter().map(|arg| spec_word(arg)));
                format!("{}=stdio:{}", upstream.name, words.join(" "))
            }
            Transport::Http { url, .. } => format!("{}=http:{url}", upstream.name),
        }
    };

    // The pact: the upstream's own tools/list imported, one rule permitting the tool.
    let pact_file = logs.join("pact.yaml");
    let imported = tokio::process::Command::new(&exe)
        .args(["pact", "import-mcp", "--upstream"])
        .arg(upstream_spec(&stdio_upstream))
        .args(["--agent", BENCH_AGENT, "--pact-id", "bench-gateway", "-o"])
        .arg(&pact_file)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `pactum pact import-mcp`")?;
    if !imported.status.success() {
        bail!(
            "`pactum pact import-mcp` failed:\n{}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    let mut pact_text = std::fs::read_to_string(&pact_file)?;
    pact_text.push_str(&format!(
        "\nrules:\n  - id: bench\n    permit: {}\n",
        serde_json::to_string(&args.tool)?
    ));
    std::fs::write(&pact_file, &pact_text)?;
    let checked = tokio::process::Command::new(&exe)
        .args(["pact", "check"])
        .arg(&pact_file)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `pactum pact check`")?;
    if !checked.status.success() {
        bail!(
            "the generated pact does not check:\n{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }

    // `pactum serve`, the agent on it with the pact active, and an agent token.
    let serve_data = logs.join("serve-data");
    let serve_addr = free_addr()?;
    let mut serve = Child::spawn(
        "pactum serve",
        &exe,
        &[
            "serve".into(),
            "--data".into(),
            serve_data.display().to_string(),
            "--listen".into(),
            serve_addr.to_string(),
        ],
        logs.join("serve.log"),
    )?;
    serve.wait_listening(serve_addr).await?;
    let server_url = format!("http://{serve_addr}");
    let agent_token = register_agent(&server_url, &serve_data, &pact_text).await?;

    let gateway_data = logs.join("gateway-data");
    let gateway_stdio_data = Target::Stdio {
        program: exe_text.clone(),
        args: vec![
            "gateway".into(),
            "--agent".into(),
            BENCH_AGENT.into(),
            "--data".into(),
            gateway_data.display().to_string(),
            "--pact".into(),
            pact_file.display().to_string(),
            "--upstream".into(),
            upstream_spec(&stdio_upstream),
        ],
        log: logs.join("gateway-stdio-data.log"),
    };
    let gateway_stdio_server = Target::Stdio {
        program: exe_text.clone(),
        args: vec![
            "gateway".into(),
            "--agent".into(),
            BENCH_AGENT.into(),
            "--server".into(),
            server_url.clone(),
            "--token".into(),
            agent_token.clone(),
            "--upstream".into(),
            upstream_spec(&stdio_upstream),
        ],
        log: logs.join("gateway-stdio-server.log"),
    };
    let gateway_addr = free_addr()?;
    let mut gateway_http = Child::spawn(
        "pactum gateway --listen",
        &exe,
        &[
            "gateway".into(),
            "--agent".into(),
            BENCH_AGENT.into(),
            "--server".into(),
            server_url.clone(),
            "--token".into(),
            agent_token.clone(),
            "--listen".into(),
            gateway_addr.to_string(),
            "--upstream".into(),
            upstream_spec(&http_upstream),
        ],
        logs.join("gateway-http.log"),
    )?;
    gateway_http.wait_listening(gateway_addr).await?;
    let gateway_http_target = Target::Http {
        url: format!("http://{gateway_addr}{}", gateway::MCP_PATH),
        token: Some(agent_token.clone()),
    };
    let direct_stdio = Target::of_upstream(&stdio_upstream, logs.join("upstream-stdio.log"))?;
    let direct_http = Target::of_upstream(&http_upstream, logs.join("upstream-http.log"))?;

    let mut n_calls_gateway_data = 0u64;
    let mut n_calls_gateway_server = 0u64;
    let mut all_series = Vec::new();
    for (label, direct, through, on_server) in [
        (
            "stdio, gateway --data",
            &direct_stdio,
            &gateway_stdio_data,
            false,
        ),
        (
            "stdio, gateway --server",
            &direct_stdio,
            &gateway_stdio_server,
            true,
        ),
        (
            "http, gateway --server",
            &direct_http,
            &gateway_http_target,
            true,
        ),
    ] {
        let series = run_series(label, direct, through, &params, args).await?;
        let n_calls = args.warmup + args.calls;
        if on_server {
            n_calls_gateway_server += n_calls;
        } else {
            n_calls_gateway_data += n_calls;
        }
        all_series.push(series);
    }

    let through_gateway = run_throughput(
        &gateway_http_target,
        &params,
        args,
        "calls/s through the gateway",
    )
    .await?;
    n_calls_gateway_server += through_gateway.n_calls;
    let through_direct =
        run_throughput(&direct_http, &params, args, "calls/s to the upstream").await?;

    let memory = match gateway_http.pid() {
        Some(pid) if args.sessions > 0 => {
            Some(run_memory(pid, &gateway_http_target, &args.tool, args.sessions).await?)
        }
        _ => None,
    };

    // Stop everything, then count each log's records.
    gateway_http.stop().await;
    serve.stop().await;
    if let Some(child) = echo_http {
        child.stop().await;
    }
    let records_data = store::Log::open(&gateway_data)
        .and_then(|log| log.size())
        .with_context(|| format!("counting the records in `{}`", gateway_data.display()))?;
    let records_server = store::Log::open(&serve_data)
        .and_then(|log| log.size())
        .with_context(|| format!("counting the records in `{}`", serve_data.display()))?;
    let load_end = load_average();

    let figures = Figures {
        upstream_label,
        load_start,
        load_end,
        series: all_series,
        through_gateway,
        through_direct,
        memory,
        evidence: Evidence {
            n_calls_gateway_data,
            n_records_gateway_data: records_data,
            n_calls_server: n_calls_gateway_server,
            n_records_server: records_server,
        },
    };
    if args.json {
        crate::output::print_line(serde_json::to_string_pretty(&figures.to_json(args))?);
    } else {
        figures.print_table(args);
    }
    if !figures.evidence.every_call_logged() {
        bail!("a log holds fewer than two records (verdict, outcome) per call through a gateway");
    }
    Ok(())
}

/// Registers the bench agent on the server, activates the pact, and makes an agent token.
async fn register_agent(
    server_url: &str,
    serve_data: &Path,
    pact_text: &str,
) -> anyhow::Result<String> {
    let admin = std::fs::read_to_string(serve_data.join(server::ADMIN_TOKEN_FILE))
        .context("reading the server's admin token")?
        .trim()
        .to_string();
    let backend = Backend::remote(server_url, 10_000)?;
    crate::gateway_cmd::ensure_agent(&backend, &admin, BENCH_AGENT, Some((pact_text, "the pact")))
        .await?;
    let created = backend
        .call(
            "POST",
            "/v1/tokens",
            &admin,
            Some(&json!({ "role": "agent", "agent": BENCH_AGENT, "name": "bench" })),
        )
        .await
        .context("creating the agent token")?;
    created["token"]
        .as_str()
        .map(str::to_string)
        .context("the token answer has no `token`")
}

/// Direct and gateway calls alternated one by one, after the warm-up.
async fn run_series(
    label: &'static str,
    direct: &Target,
    through: &Target,
    params: &CallToolRequestParams,
    args: &GatewayBenchArgs,
) -> anyhow::Result<Series> {
    let direct_client = direct.connect().await?;
    let gateway_client = through
        .connect()
        .await
        .with_context(|| format!("the gateway of series `{label}`"))?;
    require_tool(&direct_client, &params.name, "the upstream").await?;
    require_tool(&gateway_client, &params.name, "the gateway").await?;
    let progress = bar(args.warmup + args.calls, label);
    for _ in 0..args.warmup {
        call_once(&direct_client, params).await?;
        call_once(&gateway_client, params)
            .await
            .with_context(|| format!("through the gateway ({label})"))?;
        progress.inc(1);
    }
    let n_calls = usize::try_from(args.calls)?;
    let (mut direct_nanos, mut gateway_nanos) =
        (Vec::with_capacity(n_calls), Vec::with_capacity(n_calls));
    for call_idx in 0..args.calls {
        // Which path goes first alternates too, so neither always runs right after the other.
        let order = if call_idx % 2 == 0 {
            [(&direct_client, 0), (&gateway_client, 1)]
        } else {
            [(&gateway_client, 1), (&direct_client, 0)]
        };
        for (client, path_idx) in order {
            let started = Instant::now();
            call_once(client, params)
                .await
                .with_context(|| format!("series `{label}`"))?;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if path_idx == 0 {
                direct_nanos.push(nanos);
            } else {
                gateway_nanos.push(nanos);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let _ = gateway_client.cancel().await;
    let _ = direct_client.cancel().await;
    Ok(Series {
        label,
        direct_transport: direct.transport_name(),
        direct: Latencies::new(direct_nanos),
        gateway: Latencies::new(gateway_nanos),
    })
}

/// Calls per second with several sessions at once.
struct Throughput {
    n_calls: u64,
    measured_secs: f64,
    latencies: Latencies,
}

impl Throughput {
    fn calls_per_s(&self) -> f64 {
        self.n_calls as f64 / self.measured_secs.max(f64::MIN_POSITIVE)
    }
}

async fn run_throughput(
    target: &Target,
    params: &CallToolRequestParams,
    args: &GatewayBenchArgs,
    message: &'static str,
) -> anyhow::Result<Throughput> {
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let client = target.connect().await?;
        call_once(&client, params).await?;
        clients.push(client);
    }
    let progress = bar(args.secs, message);
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let params = params.clone();
        workers.spawn(async move {
            let mut nanos = Vec::new();
            while Instant::now() < deadline {
                let call_started = Instant::now();
                call_once(&client, &params).await?;
                nanos.push(u64::try_from(call_started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            let _ = client.cancel().await;
            anyhow::Ok(nanos)
        });
    }
    let ticking = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.inc(1);
            }
        })
    };
    let mut all_nanos = Vec::new();
    while let Some(joined) = workers.join_next().await {
        all_nanos.extend(joined.context("a load task panicked")??);
    }
    let measured_secs = started.elapsed().as_secs_f64();
    ticking.abort();
    progress.finish_and_clear();
    Ok(Throughput {
        n_calls: all_nanos.len() as u64,
        measured_secs,
        latencies: Latencies::new(all_nanos),
    })
}

/// The gateway's memory before and after idle sessions.
struct Memory {
    n_sessions: u64,
    rss_kib_before: u64,
    rss_kib_after: u64,
}

impl Memory {
    fn kib_per_session(&self) -> f64 {
        (self.rss_kib_after as f64 - self.rss_kib_before as f64) / self.n_sessions as f64
    }
}

async fn run_memory(
    pid: u32,
    target: &Target,
    tool: &str,
    n_sessions: u64,
) -> anyhow::Result<Memory> {
    // The earlier phases' sessions are closed; give the gateway a moment to drop them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_kib_before = rss_kib(pid)?;
    let progress = bar(n_sessions, "idle sessions");
    let mut sessions = Vec::new();
    let mut n_left = n_sessions;
    while n_left > 0 {
        let n_now = n_left.min(SESSIONS_OPENED_AT_ONCE as u64);
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..n_now {
            let target = target.clone();
            let tool = tool.to_string();
            opening.spawn(async move {
                let client = target.connect().await?;
                require_tool(&client, &tool, "the gateway").await?;
                anyhow::Ok(client)
            });
        }
        while let Some(joined) = opening.join_next().await {
            sessions.push(joined.context("a session task panicked")??);
            progress.inc(1);
        }
        n_left -= n_now;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_kib_after = rss_kib(pid)?;
    progress.finish_and_clear();
    for session in sessions {
        let _ = session.cancel().await;
    }
    Ok(Memory {
        n_sessions,
        rss_kib_before,
        rss_kib_after,
    })
}

/// Records counted in each log against the calls made through its gateways.
struct Evidence {
    n_calls_gateway_data: u64,
    n_records_gateway_data: u64,
    n_calls_server: u64,
    n_records_server: u64,
}

impl Evidence {
    /// A verdict and an outcome per call (and a few records of setup).
    fn every_call_logged(&self) -> bool {
        self.n_records_gateway_data >= 2 * self.n_calls_gateway_data
            && self.n_records_server >= 2 * self.n_calls_server
    }
}

/// Everything measured, printed as a table or JSON.
struct Figures {
    upstream_label: String,
    load_start: String,
    load_end: String,
    series: Vec<Series>,
    through_gateway: Throughput,
    through_direct: Throughput,
    memory: Option<Memory>,
    evidence: Evidence,
}

impl Figures {
    fn target_met(&self) -> bool {
        self.series.iter().all(|series| {
            series.added_ms(0.50) <= TARGET_ADDED_MS_P50
                && series.added_ms(0.99) <= TARGET_ADDED_MS_P99
        })
    }

    fn throughput_ratio(&self) -> f64 {
        self.through_gateway.calls_per_s()
            / self.through_direct.calls_per_s().max(f64::MIN_POSITIVE)
    }

    fn to_json(&self, args: &GatewayBenchArgs) -> Value {
        let (gateway, direct) = (&self.through_gateway, &self.through_direct);
        json!({
            "upstream": self.upstream_label,
            "tool": args.tool,
            "calls": args.calls,
            "warmup_calls": args.warmup,
            "load_average_start": self.load_start,
            "load_average_end": self.load_end,
            "series": self.series.iter().map(Series::to_json).collect::<Vec<_>>(),
            "throughput": {
                "sessions": args.concurrency,
                "secs": args.secs,
                "gateway_calls_per_s": gateway.calls_per_s().round(),
                "gateway_ms_p50": round3(gateway.latencies.ms_at(0.50)),
                "gateway_ms_p99": round3(gateway.latencies.ms_at(0.99)),
                "direct_calls_per_s": direct.calls_per_s().round(),
                "direct_ms_p50": round3(direct.latencies.ms_at(0.50)),
                "direct_ms_p99": round3(direct.latencies.ms_at(0.99)),
                "ratio": round3(self.throughput_ratio()),
            },
            "memory": self.memory.as_ref().map(|memory| json!({
                "sessions": memory.n_sessions,
                "rss_kib_before": memory.rss_kib_before,
                "rss_kib_after": memory.rss_kib_after,
                "kib_per_session": round3(memory.kib_per_session()),
            })),
            "evidence": {
                "calls_gateway_data": self.evidence.n_calls_gateway_data,
                "records_gateway_data": self.evidence.n_records_gateway_data,
                "calls_server": self.evidence.n_calls_server,
                "records_server": self.evidence.n_records_server,
                "every_call_logged": self.evidence.every_call_logged(),
            },
            "target": {
                "added_ms_p50_max": TARGET_ADDED_MS_P50,
                "added_ms_p99_max": TARGET_ADDED_MS_P99,
                "met": self.target_met(),
            },
        })
    }

    fn print_table(&self, args: &GatewayBenchArgs) {
        let print = crate::output::print_line;
        print(format!(
            "gateway: tools/call `{}` on {}; {} timed calls per path after {} warm-up, direct and gateway alternated",
            args.tool, self.upstream_label, args.calls, args.warmup
        ));
        print(format!("load average at start: {}", self.load_start));
        print(format!(
            "{:<26} {:>6} {:>10} {:>10} {:>11} {:>11} {:>9} {:>9}",
            "series",
            "direct",
            "direct p50",
            "direct p99",
            "gateway p50",
            "gateway p99",
            "added p50",
            "added p99"
        ));
        for series in &self.series {
            print(format!(
                "{:<26} {:>6} {:>7.3} ms {:>7.3} ms {:>8.3} ms {:>8.3} ms {:>+6.3} ms {:>+6.3} ms",
                series.label,
                series.direct_transport,
                series.direct.ms_at(0.50),
                series.direct.ms_at(0.99),
                series.gateway.ms_at(0.50),
                series.gateway.ms_at(0.99),
                series.added_ms(0.50),
                series.added_ms(0.99),
            ));
        }
        print(format!(
            "target: added p50 <= {TARGET_ADDED_MS_P50} ms, added p99 <= {TARGET_ADDED_MS_P99} ms: {}",
            if self.target_met() { "met" } else { "missed" }
        ));
        let (gateway, direct) = (&self.through_gateway, &self.through_direct);
        print(format!(
            "calls/s, {} HTTP sessions, {} s: through one gateway {:.0} (p50 {:.3} ms, p99 {:.3} ms); upstream directly {:.0} (p50 {:.3} ms, p99 {:.3} ms); ratio {:.2}",
            args.concurrency,
            args.secs,
            gateway.calls_per_s(),
            gateway.latencies.ms_at(0.50),
            gateway.latencies.ms_at(0.99),
            direct.calls_per_s(),
            direct.latencies.ms_at(0.50),
            direct.latencies.ms_at(0.99),
            self.throughput_ratio(),
        ));
        if let Some(memory) = &self.memory {
            print(format!(
                "memory: gateway VmRSS {:.1} MiB, {:.1} MiB with {} idle HTTP sessions: {:.1} KiB per session",
                memory.rss_kib_before as f64 / 1024.0,
                memory.rss_kib_after as f64 / 1024.0,
                memory.n_sessions,
                memory.kib_per_session(),
            ));
        }
        let evidence = &self.evidence;
        print(format!(
            "evidence: gateway --data {} calls, {} records; pactum serve {} calls, {} records (a verdict and an outcome per call, each acknowledged after its fsync)",
            evidence.n_calls_gateway_data,
            evidence.n_records_gateway_data,
            evidence.n_calls_server,
            evidence.n_records_server
        ));
        print(format!("load average at end: {}", self.load_end));
    }
}
