//! What the server tells watchers: the event stream (`GET /v1/events`, Server-Sent Events fed
//! from every durable record) and Prometheus metrics (`GET /metrics`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use guard::Decision;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;

/// Events buffered per subscriber; a subscriber further behind gets a `lagged` event.
pub const EVENTS_BUFFERED_MAX: usize = 4096;
/// Upper bounds of the decision latency histogram, in microseconds.
pub const LATENCY_BUCKETS_US: [u64; 10] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];
/// Upper bounds of the records-per-append histogram.
pub const APPEND_BUCKETS_RECORDS: [u64; 6] = [1, 4, 16, 64, 256, 4096];
/// Upper bounds of the notification latency histogram, in milliseconds.
pub const NOTIFY_BUCKETS_MS: [u64; 8] = [10, 50, 100, 250, 1_000, 5_000, 30_000, 120_000];
/// Event kinds a subscriber may filter on.
pub const EVENT_KINDS: [&str; 7] = [
    "verdict", "halt", "approval", "pact", "agent", "trial", "tool",
];

/// One durable record, as an event.
#[derive(Debug, Clone)]
pub struct RecordEvent {
    /// `verdict`, `halt`, `approval`, `pact`, `agent` or `trial`.
    pub kind: &'static str,
    /// The record's agent.
    pub agent: String,
    /// `{"index": N, "record": {...}}` as JSON text.
    pub data: String,
}

/// The event kind of a record kind: halts, resumes and restrictions are all `halt` events;
/// uploads and activations are `pact` events.
pub fn event_kind(record_kind: &str) -> Option<&'static str> {
    match record_kind {
        "verdict" | "outcome" => Some("verdict"),
        "halt" | "resume" | "restrict" | "unrestrict" => Some("halt"),
        "approval" => Some("approval"),
        "pact" | "pact_activated" => Some("pact"),
        "agent_registered" | "agent_updated" => Some("agent"),
        "trial_start" | "trial" | "suite" => Some("trial"),
        "tool_pinned" | "tool_flagged" | "tool_changed" | "tool_accepted" => Some("tool"),
        _ => None,
    }
}

/// A fixed-bucket histogram of atomics (Prometheus `le` buckets).
pub struct Histogram {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Adds one observation.
    pub fn observe(&self, value: u64) {
        if let Some(slot) = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .and_then(|idx| self.counts.get(idx))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, scale: f64) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / scale
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum.load(Ordering::Relaxed) as f64 / scale
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Counters and histograms of the server.
pub struct Metrics {
    decisions: [AtomicU64; 4],
    /// Time from a decide request's parsed body to its durable verdict, microseconds.
    pub decide_latency_us: Histogram,
    /// Records per append call.
    pub append_records: Histogram,
    /// Records per group-commit batch of the log writer (one transaction and fsync each).
    pub log_batch_records: Arc<Histogram>,
    /// Requests refused by the per-token rate limit.
    pub rate_limited: AtomicU64,
    /// Webhook deliveries: delivered, failed.
    notifications: [AtomicU64; 2],
    /// Communication latency: event raised -> receiver acknowledged, milliseconds.
    pub notify_latency_ms: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            decisions: Default::default(),
            decide_latency_us: Histogram::new(&LATENCY_BUCKETS_US),
            append_records: Histogram::new(&APPEND_BUCKETS_RECORDS),
            log_batch_records: Arc::new(Histogram::new(&APPEND_BUCKETS_RECORDS)),
            rate_limited: AtomicU64::new(0),
            notifications: Default::default(),
            notify_latency_ms: Histogram::new(&NOTIFY_BUCKETS_MS),
        }
    }
}

fn decision_idx(decision: Decision) -> usize {
    match decision {
        Decision::Allow => 0,
        Decision::Review => 1,
        Decision::Deny => 2,
        Decision::Halted => 3,
    }
}

impl Metrics {
    /// Counts one decision.
    pub fn count_decision(&self, decision: Decision) {
        if let Some(counter) = self.decisions.get(decision_idx(decision)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one webhook delivery (`delivered` or `failed`) and, when delivered, its latency.
    pub fn observe_notification(&self, status: &str, latency_ms: u64) {
        let idx = usize::from(status != "delivered");
        if let Some(counter) = self.notifications.get(idx) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if idx == 0 {
            self.notify_latency_ms.observe(latency_ms);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, log_size: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP pactum_decisions_total Guard decisions by outcome.\n# TYPE pactum_decisions_total counter\n");
        for decision in [
            Decision::Allow,
            Decision::Review,
            Decision::Deny,
            Decision::Halted,
        ] {
            let count = self
                .decisions
                .get(decision_idx(decision))
                .map_or(0, |counter| counter.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "pactum_decisions_total{{decision=\"{}\"}} {count}",
                decision.as_str()
            );
        }
        out.push_str("# HELP pactum_decide_duration_seconds Decide latency, request parsed to verdict durable.\n# TYPE pactum_decide_duration_seconds histogram\n");
        self.decide_latency_us
            .render(&mut out, "pactum_decide_duration_seconds", 1e6);
        out.push_str("# HELP pactum_append_records Records per append call (a batch decide is one call).\n# TYPE pactum_append_records histogram\n");
        self.append_records
            .render(&mut out, "pactum_append_records", 1.0);
        out.push_str("# HELP pactum_log_batch_records Records per group-commit batch (one transaction and one fsync each).\n# TYPE pactum_log_batch_records histogram\n");
        self.log_batch_records
            .render(&mut out, "pactum_log_batch_records", 1.0);
        out.push_str("# HELP pactum_log_records Records in the evidence log (latest checkpoint).\n# TYPE pactum_log_records gauge\n");
        let _ = writeln!(out, "pactum_log_records {log_size}");
        out.push_str("# HELP pactum_rate_limited_total Requests refused by the per-token rate limit.\n# TYPE pactum_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "pactum_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        out.push_str("# HELP pactum_notifications_total Webhook deliveries by status.\n# TYPE pactum_notifications_total counter\n");
        for (idx, status) in ["delivered", "failed"].iter().enumerate() {
            let count = self
                .notifications
                .get(idx)
                .map_or(0, |counter| counter.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "pactum_notifications_total{{status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP pactum_notification_latency_seconds Communication latency: event raised to webhook acknowledged.\n# TYPE pactum_notification_latency_seconds histogram\n");
        self.notify_latency_ms
            .render(&mut out, "pactum_notification_latency_seconds", 1e3);
        out
    }
}

/// `GET /metrics` (admin, operator, auditor).
pub(crate) async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator, Role::Auditor])?;
    let mut text = app.metrics().render(app.log().size()?);
    let program = app.program_metrics_cached().await?;
    render_program(&program, &mut text);
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The program metrics (issue 7: time to containment, evidence completeness, repeat failures,
/// recovery validation, pact coverage, evaluation freshness, exception resolution,
/// communication latency) as gauges `pactum_program_<name>`; absent values are left out.
fn render_program(program: &Value, out: &mut String) {
    let Some(fields) = program.as_object() else {
        return;
    };
    for (name, value) in fields {
        let number = match value {
            Value::Number(number) => number.to_string(),
            _ => continue,
        };
        let _ = writeln!(out, "# TYPE pactum_program_{name} gauge");
        let _ = writeln!(out, "pactum_program_{name} {number}");
    }
}

/// The body of `POST /v1/clock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockBody {
    /// Milliseconds to move the clock forward.
    advance_ms: u64,
}

/// Most the clock moves in one call: ten years.
const CLOCK_ADVANCE_MS_MAX: u64 = 10 * 366 * 24 * 60 * 60 * 1000;

/// `GET /v1/clock` (every role): the server's time and whether it is simulated.
pub(crate) async fn clock(State(app): State<AppState>, _caller: Caller) -> Response {
    json_response(
        StatusCode::OK,
        json!({ "now_ms": app.now_ms(), "simulated": app.clock_is_simulated() }),
    )
}

/// `POST /v1/clock` (admin, and only with `--simulated-clock`): moves the clock forward, so a
/// drill or a test can live through weeks of signals in seconds. The clock never goes back.
pub(crate) async fn advance_clock(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ClockBody>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    if body.advance_ms > CLOCK_ADVANCE_MS_MAX {
        return Err(ApiError::unprocessable(
            "invalid-clock",
            format!("advance_ms may be at most {CLOCK_ADVANCE_MS_MAX} (ten years)"),
        ));
    }
    let now = app.advance_clock(body.advance_ms).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "clock-not-simulated",
            "the server's clock is real; start it with --simulated-clock to move it",
        )
    })?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "now_ms": now, "simulated": true }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    agent: Option<String>,
    /// Comma-separated kinds.
    #[serde(default)]
    kind: Option<String>,
}

/// `GET /v1/events?agent=&kind=verdict,halt`: Server-Sent Events, one per durable record.
/// Agent tokens see only their own agent.
pub(crate) async fn events(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid-query",
            format!("expected `?agent=ID&kind=K,K`: {}", rejection.body_text()),
        )
    })?;
    let agent = match (&caller.agent, query.agent) {
        (Some(own), None) => Some(own.clone()),
        (_, agent) => agent,
    };
    match &agent {
        Some(agent) => caller.require_for_agent(&Role::ALL, agent)?,
        None => caller.require(&[Role::Admin, Role::Operator, Role::Auditor])?,
    }
    if let Some(agent) = &agent {
        app.agent(agent)?;
    }
    let kinds: Option<Vec<&'static str>> = match &query.kind {
        None => None,
        Some(text) => {
            let mut kinds = Vec::new();
            for name in text
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
            {
                let kind = EVENT_KINDS.iter().find(|kind| **kind == name).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid-event-kind",
                        format!("event kind `{name}` is not one of verdict, halt, approval, pact, agent, trial, tool"),
                    )
                })?;
                kinds.push(*kind);
            }
            Some(kinds)
        }
    };
    let receiver = app.subscribe();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| {
        let agent = agent.clone();
        let kinds = kinds.clone();
        async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if agent.as_ref().is_some_and(|agent| *agent != event.agent) {
                            continue;
                        }
                        if kinds
                            .as_ref()
                            .is_some_and(|kinds| !kinds.contains(&event.kind))
                        {
                            continue;
                        }
                        let sse = Event::default().event(event.kind).data(event.data.as_str());
                        return Some((Ok::<Event, Infallible>(sse), receiver));
                    }
                    Err(broadcast::error::RecvError::Lagged(n_missed)) => {
                        let sse = Event::default()
                            .event("lagged")
                            .data(json!({ "missed": n_missed }).to_string());
                        return Some((Ok(sse), receiver));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(sse_response(futures_util::StreamExt::map(
        stream,
        |event: Result<Event, Infallible>| match event {
            Ok(event) => event,
            Err(never) => match never {},
        },
    )))
}

/// A Server-Sent Events response over `stream`, with a keep-alive comment every 15 s.
pub fn sse_response(stream: impl futures_util::Stream<Item = Event> + Send + 'static) -> Response {
    Sse::new(futures_util::StreamExt::map(
        stream,
        Ok::<Event, Infallible>,
    ))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    .into_response()
}

/// Builds the event for a durable record (only called when someone listens).
pub fn record_event(index: u64, record: &ledger::Record) -> Option<RecordEvent> {
    let kind = event_kind(record.kind())?;
    let value: Value = serde_json::from_slice(record.bytes()).ok()?;
    Some(RecordEvent {
        kind,
        agent: record.agent().to_string(),
        data: json!({ "index": index, "record": value }).to_string(),
    })
}
