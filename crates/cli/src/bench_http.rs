//! `pactum bench http`: a server on loopback with the default storage (SQLite in a temporary
//! directory, one fsync per group commit), driven over HTTP/1.1 keep-alive connections from
//! the same process (the load generator shares the machine's cores, as the target demands).
//! It reports decisions per second and latency percentiles over a fixed time, then halts the
//! agent under load and counts decisions that started after the halt returned and were still
//! allowed (`halt_violations`, must be 0), and checks that every acknowledged decision is in
//! the log. The per-token rate limit is off: this measures the decide path, not the limiter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use server::{AppConfig, AppState, Limits};

/// Measure `POST /v1/decide` over HTTP with durable evidence.
#[derive(Args, Debug)]
pub struct HttpBenchArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured time, in seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Worker threads of the runtime that runs server and load generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print JSON (`decisions_per_s`, `p50_ms`, `p99_ms`, `halt_violations`, ...).
    #[arg(long)]
    pub json: bool,
}

/// One connection's observations.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    n_measured: u64,
    n_acked: u64,
    n_errors: u64,
    /// `(started, finished, decision)` of calls made while the halt phase runs.
    halt_phase: Vec<(Instant, Instant, u8)>,
}

const DECISION_ALLOW: u8 = 0;
const DECISION_HALTED: u8 = 3;
const DECISION_OTHER: u8 = 9;

fn decision_of(body: &[u8]) -> u8 {
    let head = &body[..body.len().min(40)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|window| window == needle);
    if has(b"\"decision\":\"allow\"") {
        DECISION_ALLOW
    } else if has(b"\"decision\":\"halted\"") {
        DECISION_HALTED
    } else {
        DECISION_OTHER
    }
}

pub fn run(args: HttpBenchArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.secs == 0 || args.threads == 0 {
        bail!("--connections, --secs and --threads must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: HttpBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let limits = Limits {
        token_requests_per_s: 0,
        ..Limits::default()
    };
    let opened = AppState::open(AppConfig {
        data_dir: dir.path().to_path_buf(),
        limits,
        simulated_clock: false,
        notify: Default::default(),
    })?;
    let app = opened.app;
    let admin = opened
        .new_admin_token
        .context("a new data directory has an admin token")?;
    server::demo::install(&app).await?;
    let agent = server::demo::DEMO_AGENT;
    let (token, _) =
        app.registry()
            .create_token("bench", "agent", Some(agent), server::wire::now_ms())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, app.clone(), async {
        let _ = server_stopped.await;
    }));
    let size_before = app.log().size()?;

    let bodies: Arc<Vec<Bytes>> = Arc::new(
        [
            json!({ "agent": agent, "action": "answer_product_question", "args": { "question": "does it come in blue?" } }),
            json!({ "agent": agent, "action": "issue_refund", "args": { "order_id": "A-1", "amount_cents": 1200 } }),
            json!({ "agent": agent, "action": "initiate_return_request", "args": { "order_id": "A-2", "amount_cents": 1 } }),
            json!({ "agent": agent, "action": "make_policy_statement", "args": { "text": "returns within 30 days" } }),
        ]
        .iter()
        .map(|body| Bytes::from(body.to_string()))
        .collect(),
    );
    let measuring = Arc::new(AtomicBool::new(false));
    let halt_phase = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for connection_idx in 0..args.connections {
        let bodies = Arc::clone(&bodies);
        let (measuring, halt_phase, stopping) = (
            Arc::clone(&measuring),
            Arc::clone(&halt_phase),
            Arc::clone(&stopping),
        );
        let authorization = header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut seq = connection_idx;
            while !stopping.load(Ordering::Relaxed) {
                seq += 1;
                let body = bodies.get(seq % bodies.len()).cloned().unwrap_or_default();
                let request = Request::post("/v1/decide")
                    .header(header::HOST, "bench")
                    .header(header::AUTHORIZATION, authorization.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body))?;
                let in_halt_phase = halt_phase.load(Ordering::SeqCst);
                let started = Instant::now();
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let ok = response.status().is_success();
                let bytes = response.into_body().collect().await?.to_bytes();
                let finished = Instant::now();
                if !ok {
                    tally.n_errors += 1;
                    continue;
                }
                tally.n_acked += 1;
                if in_halt_phase {
                    tally
                        .halt_phase
                        .push((started, finished, decision_of(&bytes)));
                } else if measuring.load(Ordering::Relaxed) {
                    tally.n_measured += 1;
                    let latency_us = finished.duration_since(started).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(latency_us).unwrap_or(u32::MAX));
                }
            }
            anyhow::Ok(tally)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::SeqCst);
    let measure_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    measuring.store(false, Ordering::SeqCst);
    let measured_secs = measure_started.elapsed().as_secs_f64();

    // The kill switch under load: halt over HTTP, note when the answer arrived.
    halt_phase.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let halt_returned = halt_over_http(address, &admin, agent).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stopping.store(true, Ordering::SeqCst);

    let mut latencies_us = Vec::new();
    let (mut n_measured, mut n_acked, mut n_errors) = (0u64, 0u64, 0u64);
    let mut halt_violations = 0u64;
    let mut n_after_halt = 0u64;
    let mut first_halted_after: Option<Duration> = None;
    for worker in workers {
        let tally = worker.await.context("a load task panicked")??;
        latencies_us.extend(tally.latencies_us);
        n_measured += tally.n_measured;
        n_acked += tally.n_acked;
        n_errors += tally.n_errors;
        for (started, finished, decision) in tally.halt_phase {
            if started >= halt_returned {
                n_after_halt += 1;
                if decision == DECISION_ALLOW {
                    halt_violations += 1;
                }
                if decision == DECISION_HALTED {
                    let after = finished.duration_since(halt_returned);
                    first_halted_after =
                        Some(first_halted_after.map_or(after, |best| best.min(after)));
                }
            }
        }
    }
    let _ = stop_server.send(());
    serving.await.context("the server task panicked")??;
    let n_logged = app.log().size()? - size_before;
    latencies_us.sort_unstable();
    let percentile_ms = |fraction: f64| -> f64 {
        let rank = ((latencies_us.len() as f64 - 1.0) * fraction).round() as usize;
        f64::from(latencies_us.get(rank).copied().unwrap_or(0)) / 1000.0
    };
    let decisions_per_s = n_measured as f64 / measured_secs;
    // Decisions acknowledged plus the halt record: the log must hold at least these.
    let every_decision_logged = n_logged > n_acked;
    let report = json!({
        "decisions_per_s": decisions_per_s.round(),
        "p50_ms": percentile_ms(0.50),
        "p99_ms": percentile_ms(0.99),
        "p999_ms": percentile_ms(0.999),
        "halt_violations": halt_violations,
        "decisions_after_halt": n_after_halt,
        "first_halted_ms_after_halt_returned": first_halted_after.map(|after| after.as_secs_f64() * 1000.0),
        "connections": args.connections,
        "threads": args.threads,
        "measured_secs": measured_secs,
        "decisions_acked": n_acked,
        "records_logged": n_logged,
        "every_decision_logged": every_decision_logged,
        "errors": n_errors,
    });
    if args.json {
        crate::output::print_line(serde_json::to_string_pretty(&report)?);
    } else {
        crate::output::print_line(format!(
            "http decide: {:.0} decisions/s, p50 {:.2} ms, p99 {:.2} ms ({} connections, {} threads, {:.1} s)",
            decisions_per_s, percentile_ms(0.5), percentile_ms(0.99), args.connections, args.threads, measured_secs
        ));
        crate::output::print_line(format!(
            "halt under load: {halt_violations} violations in {n_after_halt} decisions started after it returned; first halted answer {:.3} ms after",
            first_halted_after.map_or(f64::NAN, |after| after.as_secs_f64() * 1000.0)
        ));
        crate::output::print_line(format!(
            "evidence: {n_acked} decisions acknowledged, {n_logged} records logged; errors {n_errors}"
        ));
    }
    if !every_decision_logged || halt_violations > 0 {
        bail!("the benchmark found lost evidence or decisions allowed after a halt");
    }
    Ok(())
}

async fn halt_over_http(
    address: std::net::SocketAddr,
    admin: &str,
    agent: &str,
) -> anyhow::Result<Instant> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::post(format!("/v1/agents/{agent}/halt"))
        .header(header::HOST, "bench")
        .header(header::AUTHORIZATION, format!("Bearer {admin}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            json!({ "reason": "bench halt" }).to_string(),
        )))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let _ = response.into_body().collect().await?;
    let returned = Instant::now();
    if !status.is_success() {
        bail!("the halt answered {status}");
    }
    Ok(returned)
}
