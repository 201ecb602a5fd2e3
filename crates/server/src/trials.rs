//! Trials from the server: suites uploaded like pacts (`/v1/suites`), trials started by hand
//! (`POST /v1/trials`) or by the scheduler, progress by Server-Sent Events, cancellation.
//!
//! A trial runs on a blocking thread through the `harness` crate against the agent's active
//! pact (the guard decides every proposed tool call). Its records go through
//! [`AppState::append`], so `/v1/events` and the metrics see them, and their `ts` come from
//! [`AppState::now_ms`] (the simulated clock in drills and tests). At most
//! `Limits::trials_running_max` run at once, and one per agent and suite. Which trials exist
//! and how they ended is kept in the registry's `trials` table (for listing and for the
//! scheduler); the evidence itself is only the log's `trial_start`, `trial_case` and `trial`
//! records. A cancelled trial, and every running trial at shutdown, is recorded
//! `complete: false, interrupted: true`.
//!
//! **Scheduler.** Every `Limits::schedule_check_ms` it looks at each agent with an active pact
//! and a trial target, and at each obligation whose `measured_by.suite` names an uploaded
//! suite; it starts a trial when no complete trial of that suite for that agent started within
//! the cadence of the pact's risk tier (`Limits::trial_cadence_*_ms`: critical 1 day, high 7
//! days, medium 30 days, low 90 days by default) and none is running. Such trials carry
//! `"scheduled": true` and the obligation on their `trial_start` record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, watch};

use crate::app::{lock_runtime, make_record, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::observe::sse_response;
use crate::problem::ApiError;
use crate::registry::{SuiteRow, TrialRow};
use crate::wire::format_time_ms;

/// Roles that may read suites and trials.
pub const READ_ROLES: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];
/// Roles that may start and cancel trials.
pub const RUN_ROLES: &[Role] = &[Role::Admin, Role::Operator];
/// The `agent` of records that are about no one agent (a `suite` upload).
pub const NO_AGENT: &str = "*";
/// Longest trial target, in bytes.
pub const TARGET_BYTES_MAX: usize = 2048;
/// Longest per-case time limit a caller may ask for, in milliseconds.
pub const TIMEOUT_MS_MAX: u64 = 600_000;
/// Most retries a caller may ask for.
pub const RETRIES_MAX: u32 = 10;
/// Most LLM judges per trial.
pub const JUDGES_MAX: usize = 16;
/// Most trials listed.
pub const LIST_MAX: usize = 1000;

/// Where a running trial stands.
#[derive(Debug, Clone)]
pub enum Snapshot {
    /// Its `trial_start` record is being appended.
    Starting,
    /// Cases are running.
    Running(harness::Progress),
    /// It ended: its registry row.
    Done(Box<TrialRow>),
}

/// One trial started by this process and not yet ended.
pub struct Active {
    agent: String,
    suite_id: String,
    cancel: AtomicBool,
    /// Index of its `trial_start` record, once appended.
    idx: OnceLock<u64>,
    state: watch::Sender<Snapshot>,
}

/// The trials this process runs.
#[derive(Default)]
pub struct Trials {
    active: Mutex<Vec<Arc<Active>>>,
    closed: AtomicBool,
}

fn lock(mutex: &Mutex<Vec<Arc<Active>>>) -> MutexGuard<'_, Vec<Arc<Active>>> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Trials {
    fn find(&self, idx: u64) -> Option<Arc<Active>> {
        lock(&self.active)
            .iter()
            .find(|active| active.idx.get() == Some(&idx))
            .cloned()
    }

    fn remove(&self, active: &Arc<Active>) {
        lock(&self.active).retain(|other| !Arc::ptr_eq(other, active));
    }

    /// Whether a trial of `suite_id` for `agent` is running.
    pub fn is_running(&self, agent: &str, suite_id: &str) -> bool {
        lock(&self.active)
            .iter()
            .any(|active| active.agent == agent && active.suite_id == suite_id)
    }

    /// Trials running now.
    pub fn n_running(&self) -> usize {
        lock(&self.active).len()
    }
}

/// What to run: `POST /v1/trials`'s body, and what the scheduler asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialRequest {
    /// The agent.
    pub agent: String,
    /// A suite id (its highest version) or digest.
    pub suite: String,
    /// `webhook:URL` or `openai:URL#MODEL`; default: the agent's `trial_target`.
    #[serde(default)]
    pub target: Option<String>,
    /// LLM judges, `openai:URL#MODEL` each.
    #[serde(default)]
    pub judges: Option<Vec<String>>,
    /// Cases run at once (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Per-case time limit, ms (default 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed call (default 2).
    #[serde(default)]
    pub retries: Option<u32>,
    /// The obligation of the active pact this trial measures.
    #[serde(default)]
    pub obligation: Option<String>,
}

/// Checks a trial target: `webhook:http(s)://...` or `openai:http(s)://...#MODEL`.
pub fn check_target(text: &str) -> Result<harness::Target, ApiError> {
    let invalid = |why: String| ApiError::unprocessable("invalid-target", why);
    if text.len() > TARGET_BYTES_MAX {
        return Err(invalid(format!(
            "a trial target is at most {TARGET_BYTES_MAX} bytes"
        )));
    }
    let target = harness::Target::parse(text).map_err(|err| invalid(format!("{err:#}")))?;
    let url = match &target {
        harness::Target::Webhook { url } | harness::Target::OpenAi { url, .. } => url,
        harness::Target::Replay { .. } => {
            return Err(invalid(
                "the server runs `webhook:URL` and `openai:URL#MODEL` targets; replay files are for `pactum trial run`".into(),
            ))
        }
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(format!(
            "target URL `{url}` must start with http:// or https://"
        )));
    }
    Ok(target)
}

/// The suite's format from its text: JSONL when the first line is a whole JSON object
/// without `cases` (a header); otherwise YAML or JSON.
fn is_jsonl(text: &str) -> bool {
    let Some(first) = text.lines().find(|line| !line.trim().is_empty()) else {
        return false;
    };
    matches!(
        serde_json::from_str::<Value>(first),
        Ok(Value::Object(header)) if !header.contains_key("cases")
    )
}

pub(crate) fn parse_suite_source(text: &str, format: &str) -> Result<trial::Suite, ApiError> {
    harness::parse_suite(text, format == "jsonl").map_err(|err| {
        ApiError::unprocessable("suite-invalid", format!("the suite does not check: {err}"))
    })
}

fn suite_json(row: &SuiteRow) -> Value {
    json!({
        "id": row.id,
        "version": row.version,
        "digest": row.digest,
        "format": row.format,
        "n_cases": row.n_cases,
        "uploaded": format_time_ms(row.uploaded_ms),
        "record": row.record_idx,
    })
}

/// `POST /v1/suites` (admin): a suite as YAML, JSON or JSONL text; stored by digest, with a
/// `suite` record. The same suite again answers 200; another suite with an existing id and
/// version answers 409.
pub(crate) async fn upload_suite(
    State(app): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    // The route has no default body limit: suites are read against their own.
    let bytes_max = app.limits().suite_bytes_max;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "suite-too-large",
            format!("the suite is over the limit of {bytes_max} bytes (suite_bytes_max)"),
        )
    };
    let bytes = axum::body::to_bytes(request.into_body(), bytes_max)
        .await
        .map_err(|_| too_large())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        ApiError::bad_request("not-utf8", "the suite must be UTF-8 YAML, JSON or JSONL")
    })?;
    let format = if is_jsonl(text) { "jsonl" } else { "yaml" };
    let source = text.to_string();
    let suite = tokio::task::spawn_blocking(move || parse_suite_source(&source, format))
        .await
        .map_err(ApiError::internal)??;
    let _admin = app.admin_lock().await;
    let existing = app.registry().suite(suite.digest())?;
    if let Some(existing) = existing {
        return Ok(json_response(StatusCode::OK, suite_json(&existing)));
    }
    let same_version = app
        .registry()
        .suites()?
        .into_iter()
        .find(|row| row.id == suite.id() && row.version == suite.version());
    if let Some(row) = same_version {
        return Err(ApiError::conflict(
            "suite-version-exists",
            format!(
                "version {} of suite `{}` exists with digest {}; versions are immutable, upload it with a new version number",
                row.version, row.id, row.digest
            ),
        ));
    }
    let now = app.now_ms();
    let n_cases = suite.cases().len() as u64;
    let record = make_record(
        "suite",
        NO_AGENT,
        now,
        json!({
            "suite": { "id": suite.id(), "version": suite.version(), "digest": suite.digest() },
            "n_cases": n_cases,
            "by": caller.who(),
        }),
    )?;
    let record_idx = app.append_one(record).await?;
    let row = SuiteRow {
        digest: suite.digest().to_string(),
        id: suite.id().to_string(),
        version: suite.version(),
        format: format.to_string(),
        source: text.to_string(),
        n_cases,
        uploaded_ms: now,
        record_idx,
    };
    app.registry().insert_suite(&row)?;
    Ok(json_response(StatusCode::CREATED, suite_json(&row)))
}

/// `GET /v1/suites` (admin, operator, auditor).
pub(crate) async fn list_suites(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let suites: Vec<Value> = app.registry().suites()?.iter().map(suite_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "suites": suites })))
}

/// `GET /v1/suites/{id-or-digest}` (admin, operator, auditor): the suite with its source.
pub(crate) async fn get_suite(
    State(app): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let row = find_suite(&app, &reference)?;
    let mut body = suite_json(&row);
    body["source"] = json!(row.source);
    Ok(json_response(StatusCode::OK, body))
}

fn find_suite(app: &AppState, reference: &str) -> Result<SuiteRow, ApiError> {
    app.registry().suite(reference)?.ok_or_else(|| {
        ApiError::not_found(
            "unknown-suite",
            format!("no suite `{reference}` is uploaded (POST /v1/suites)"),
        )
    })
}

/// What the server tells about a started trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Index of its `trial_start` record: the trial's id.
    pub trial: u64,
}

/// Appends through the server, from a blocking thread.
struct ServerSink {
    app: AppState,
    handle: tokio::runtime::Handle,
}

impl harness::Sink for ServerSink {
    fn append(&self, values: Vec<Value>) -> Result<Vec<u64>, String> {
        let records = values
            .iter()
            .map(ledger::record::Record::from_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("a trial record is invalid: {err}"))?;
        self.handle
            .block_on(self.app.append(records))
            .map_err(|err| {
                err.body()["detail"]
                    .as_str()
                    .unwrap_or("append failed")
                    .to_string()
            })
    }
}

fn trial_json(row: &TrialRow) -> Value {
    let summary = row
        .summary
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    json!({
        "trial": row.start_idx,
        "agent": row.agent,
        "suite": { "id": row.suite_id, "digest": row.suite_digest },
        "obligation": row.obligation,
        "scheduled": row.scheduled,
        "status": row.status,
        "started": format_time_ms(row.started_ms),
        "finished": row.finished_ms.map(format_time_ms),
        "trial_record": row.trial_idx,
        "summary": summary,
        "events": format!("/v1/trials/{}/events", row.start_idx),
    })
}

fn snapshot_json(row: &TrialRow, snapshot: &Snapshot) -> Value {
    match snapshot {
        Snapshot::Done(done) => trial_json(done),
        Snapshot::Starting => trial_json(row),
        Snapshot::Running(progress) => {
            let mut body = trial_json(row);
            body["progress"] = progress.to_json();
            body
        }
    }
}

impl AppState {
    /// Starts a trial on a blocking thread; returns once its `trial_start` record is durable.
    /// `scheduled` marks trials the scheduler (or a response) started; `by` is recorded.
    pub async fn start_trial(
        &self,
        request: TrialRequest,
        scheduled: bool,
        by: &str,
    ) -> Result<Started, ApiError> {
        let trials = self.trials();
        if trials.closed.load(Ordering::SeqCst) || !self.is_ready() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                "the server is shutting down and starts no trial",
            ));
        }
        let slot = self.agent(&request.agent)?;
        let pact = {
            let runtime = lock_runtime(&slot);
            runtime
                .guard
                .as_ref()
                .map(|guard| Arc::clone(guard.pact_arc()))
        }
        .ok_or_else(|| {
            ApiError::conflict(
                "no-active-pact",
                format!(
                    "agent `{}` has no active pact to run a trial against",
                    request.agent
                ),
            )
        })?;
        if let Some(obligation) = &request.obligation {
            if !pact.doc().obligations.iter().any(|o| o.id == *obligation) {
                return Err(ApiError::unprocessable(
                    "unknown-obligation",
                    format!("the active pact has no obligation `{obligation}`"),
                ));
            }
        }
        let row = find_suite(self, &request.suite)?;
        let target_text = match &request.target {
            Some(target) => target.clone(),
            None => self.registry().trial_target(&request.agent)?.ok_or_else(|| {
                ApiError::unprocessable(
                    "no-trial-target",
                    format!(
                        "agent `{}` has no trial_target (PATCH /v1/agents/{{id}}) and the request names none",
                        request.agent
                    ),
                )
            })?,
        };
        let target = check_target(&target_text)?;
        let judges = request.judges.clone().unwrap_or_default();
        if judges.len() > JUDGES_MAX
            || judges
                .iter()
                .any(|judge| judge.len() > TARGET_BYTES_MAX || !judge.starts_with("openai:"))
        {
            return Err(ApiError::unprocessable(
                "invalid-judges",
                format!("judges are at most {JUDGES_MAX} `openai:URL#MODEL` strings"),
            ));
        }
        let concurrency = request.concurrency.unwrap_or(harness::CONCURRENCY_DEFAULT);
        let timeout_ms = request.timeout_ms.unwrap_or(harness::TIMEOUT_MS_DEFAULT);
        let retries = request.retries.unwrap_or(harness::RETRIES_DEFAULT);
        if concurrency == 0 || concurrency > harness::CONCURRENCY_MAX {
            return Err(ApiError::unprocessable(
                "invalid-field",
                format!(
                    "concurrency must be between 1 and {}",
                    harness::CONCURRENCY_MAX
                ),
            ));
        }
        if timeout_ms == 0 || timeout_ms > TIMEOUT_MS_MAX {
            return Err(ApiError::unprocessable(
                "invalid-field",
                format!("timeout_ms must be between 1 and {TIMEOUT_MS_MAX}"),
            ));
        }
        if retries > RETRIES_MAX {
            return Err(ApiError::unprocessable(
                "invalid-field",
                format!("retries must be at most {RETRIES_MAX}"),
            ));
        }
        let source = row.source.clone();
        let format = row.format.clone();
        let suite = tokio::task::spawn_blocking(move || parse_suite_source(&source, &format))
            .await
            .map_err(ApiError::internal)??;
        let mut start_members = Map::new();
        start_members.insert("by".into(), json!(by));
        start_members.insert("scheduled".into(), json!(scheduled));
        if let Some(obligation) = &request.obligation {
            start_members.insert("obligation".into(), json!(obligation));
        }
        let spec = harness::Spec {
            agent: request.agent.clone(),
            suite: Arc::new(suite),
            pact,
            target,
            judges,
            concurrency,
            timeout_ms,
            retries,
            system_prompt: None,
            api_key: harness::api_key_from_env(),
            start_members,
        };
        let active = {
            let mut active_list = lock(&trials.active);
            if active_list
                .iter()
                .any(|active| active.agent == request.agent && active.suite_id == row.id)
            {
                return Err(ApiError::conflict(
                    "trial-running",
                    format!(
                        "a trial of suite `{}` for `{}` is already running",
                        row.id, request.agent
                    ),
                ));
            }
            let running_max = self.limits().trials_running_max;
            if active_list.len() >= running_max {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-trials",
                    format!("{running_max} trials are running (trials_running_max); try again when one ends"),
                ));
            }
            let active = Arc::new(Active {
                agent: request.agent.clone(),
                suite_id: row.id.clone(),
                cancel: AtomicBool::new(false),
                idx: OnceLock::new(),
                state: watch::channel(Snapshot::Starting).0,
            });
            active_list.push(Arc::clone(&active));
            active
        };
        let (started_tx, started_rx) = oneshot::channel::<Result<u64, ApiError>>();
        let app = self.clone();
        let handle = tokio::runtime::Handle::current();
        let obligation = request.obligation.clone();
        let suite_digest = row.digest.clone();
        tokio::task::spawn_blocking(move || {
            run_blocking(
                app,
                handle,
                spec,
                active,
                obligation,
                suite_digest,
                scheduled,
                started_tx,
            );
        });
        let trial = started_rx
            .await
            .map_err(|_| ApiError::internal("the trial thread ended before it started"))??;
        Ok(Started { trial })
    }

    /// Starts a trial now for the agent's obligations whose `measured_by.suite` names an
    /// uploaded suite (only `obligation` when given), whatever their cadence says; skips
    /// suites already running. Returns the started trials. The response engine's
    /// `re-evaluate` calls this.
    pub async fn schedule_obligations_now(
        &self,
        agent: &str,
        obligation: Option<&str>,
        by: &str,
    ) -> Result<Vec<u64>, ApiError> {
        let mut started = Vec::new();
        let mut first_error = None;
        for (obligation_id, suite_id) in self.measured_obligations(agent)? {
            if obligation.is_some_and(|wanted| wanted != obligation_id) {
                continue;
            }
            if self.trials().is_running(agent, &suite_id) {
                continue;
            }
            let request = TrialRequest {
                agent: agent.to_string(),
                suite: suite_id,
                obligation: Some(obligation_id),
                ..TrialRequest::default()
            };
            // One obligation's trial failing to start (the limit reached, say) does not keep
            // the others from starting, nor lose the ones already started.
            match self.start_trial(request, true, by).await {
                Ok(trial) => started.push(trial.trial),
                Err(err) => {
                    eprintln!(
                        "pactum serve: could not start a trial for `{agent}`: {}",
                        err.body()["detail"]
                    );
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) if started.is_empty() => Err(err),
            _ => Ok(started),
        }
    }

    /// One pass of the scheduler: starts every due trial (see the module doc); returns them.
    /// Trials that cannot start (limit reached, target missing) are tried on the next pass.
    pub async fn schedule_due_trials(&self) -> Vec<u64> {
        let mut started = Vec::new();
        let now = self.now_ms();
        for agent in self.agent_ids() {
            let Ok(Some(_)) = self.registry().trial_target(&agent) else {
                continue;
            };
            let Ok(obligations) = self.measured_obligations(&agent) else {
                continue;
            };
            let cadence_ms = self.cadence_ms(&agent);
            let mut seen: Vec<String> = Vec::new();
            for (obligation_id, suite_id) in obligations {
                if seen.contains(&suite_id) || self.trials().is_running(&agent, &suite_id) {
                    continue;
                }
                seen.push(suite_id.clone());
                let Ok(last) = self.registry().last_complete_trial_ms(&agent, &suite_id) else {
                    continue;
                };
                if last.is_some_and(|last| now.saturating_sub(last) < cadence_ms) {
                    continue;
                }
                let request = TrialRequest {
                    agent: agent.clone(),
                    suite: suite_id,
                    obligation: Some(obligation_id),
                    ..TrialRequest::default()
                };
                match self.start_trial(request, true, "scheduler").await {
                    Ok(trial) => started.push(trial.trial),
                    Err(err) => eprintln!(
                        "pactum serve: scheduler could not start a trial for `{agent}`: {}",
                        err.body()["detail"]
                    ),
                }
            }
        }
        started
    }

    /// `(obligation id, suite id)` of the active pact's obligations measured by an uploaded
    /// suite (named by id, digest or file); empty without an active pact.
    pub(crate) fn measured_obligations(
        &self,
        agent: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let slot = self.agent(agent)?;
        let pact = {
            let runtime = lock_runtime(&slot);
            runtime
                .guard
                .as_ref()
                .map(|guard| Arc::clone(guard.pact_arc()))
        };
        let Some(pact) = pact else {
            return Ok(Vec::new());
        };
        let mut measured = Vec::new();
        for obligation in &pact.doc().obligations {
            let Some(reference) = &obligation.measured_by.suite else {
                continue;
            };
            // By id or digest, else by the file the pact names (`suites/probes.yaml` is the
            // suite uploaded as `probes`), as signals and the recovery gate match it.
            // (The first lookup's registry guard must be dropped before the second.)
            let by_reference = self.registry().suite(reference)?;
            let row = match by_reference {
                Some(row) => Some(row),
                None => self
                    .registry()
                    .suites()?
                    .into_iter()
                    .filter(|row| pact::syntax::suite_matches(reference, &row.id))
                    .max_by_key(|row| row.version),
            };
            if let Some(row) = row {
                measured.push((obligation.id.clone(), row.id));
            }
        }
        Ok(measured)
    }

    /// The cadence of the agent's active pact's tier.
    fn cadence_ms(&self, agent: &str) -> u64 {
        let limits = self.limits();
        let tier = self.agent(agent).ok().and_then(|slot| {
            lock_runtime(&slot)
                .guard
                .as_ref()
                .map(|guard| guard.pact().tier())
        });
        match tier {
            Some(pact::syntax::Tier::Critical) => limits.trial_cadence_critical_ms,
            Some(pact::syntax::Tier::High) => limits.trial_cadence_high_ms,
            Some(pact::syntax::Tier::Low) => limits.trial_cadence_low_ms,
            _ => limits.trial_cadence_medium_ms,
        }
    }

    /// Cancels every running trial and waits (up to `wait`) until each is recorded as
    /// incomplete; no trial starts afterwards. Called at shutdown.
    pub async fn cancel_trials(&self, wait: Duration) {
        let trials = self.trials();
        trials.closed.store(true, Ordering::SeqCst);
        for active in lock(&trials.active).iter() {
            active.cancel.store(true, Ordering::SeqCst);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while trials.n_running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Runs one trial to its end on a blocking thread: registry row, records, snapshot updates.
#[allow(clippy::too_many_arguments)]
fn run_blocking(
    app: AppState,
    handle: tokio::runtime::Handle,
    spec: harness::Spec,
    active: Arc<Active>,
    obligation: Option<String>,
    suite_digest: String,
    scheduled: bool,
    started_tx: oneshot::Sender<Result<u64, ApiError>>,
) {
    let started_tx = Mutex::new(Some(started_tx));
    let row = Mutex::new(None::<TrialRow>);
    let sink = ServerSink {
        app: app.clone(),
        handle,
    };
    let clock = || app.now_ms();
    let progress = |progress: &harness::Progress| {
        if active.idx.get().is_none() {
            let _ = active.idx.set(progress.trial);
            let new_row = TrialRow {
                start_idx: progress.trial,
                agent: spec.agent.clone(),
                suite_id: spec.suite.id().to_string(),
                suite_digest: suite_digest.clone(),
                obligation: obligation.clone(),
                scheduled,
                started_ms: app.now_ms(),
                status: "running".into(),
                finished_ms: None,
                trial_idx: None,
                summary: None,
            };
            if let Err(err) = app.registry().insert_trial(&new_row) {
                eprintln!("pactum serve: registry: {err}");
            }
            *row.lock().unwrap_or_else(|p| p.into_inner()) = Some(new_row);
            if let Some(sender) = started_tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = sender.send(Ok(progress.trial));
            }
        }
        active
            .state
            .send_replace(Snapshot::Running(progress.clone()));
    };
    let hooks = harness::Hooks {
        clock: &clock,
        sink: &sink,
        progress: &progress,
        cancel: &active.cancel,
    };
    let result = harness::run(&spec, &hooks);
    let row = row.lock().unwrap_or_else(|p| p.into_inner()).take();
    let done = match (result, row) {
        (Ok(finished), Some(mut row)) => {
            row.status = if finished.record["complete"] == json!(true) {
                "complete".into()
            } else {
                "incomplete".into()
            };
            row.finished_ms = finished.record["ts"].as_u64();
            row.trial_idx = Some(finished.trial_idx);
            row.summary = Some(finished.record.to_string());
            Some(row)
        }
        (Err(err), Some(mut row)) => {
            row.status = "failed".into();
            row.finished_ms = Some(app.now_ms());
            row.summary = Some(json!({ "error": err.to_string() }).to_string());
            Some(row)
        }
        (result, None) => {
            let err = match result {
                Err(harness::HarnessError::Invalid(why)) => {
                    ApiError::unprocessable("trial-invalid", why)
                }
                Err(err) => ApiError::unavailable(err),
                Ok(_) => ApiError::internal("a trial ended without starting"),
            };
            if let Some(sender) = started_tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = sender.send(Err(err));
            }
            None
        }
    };
    if let Some(row) = done {
        if let Err(err) = app.registry().insert_trial(&row) {
            eprintln!("pactum serve: registry: {err}");
        }
        // Watchers see the end before the slot frees, so none misses it.
        active.state.send_replace(Snapshot::Done(Box::new(row)));
        app.trials().remove(&active);
    } else {
        app.trials().remove(&active);
    }
}

/// `POST /v1/trials` (admin, operator): 202 with the trial's id once `trial_start` is durable.
pub(crate) async fn start(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TrialRequest>,
) -> Result<Response, ApiError> {
    caller.require(RUN_ROLES)?;
    let started = app.start_trial(body, false, &caller.who()).await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        json!({
            "trial": started.trial,
            "status": "running",
            "events": format!("/v1/trials/{}/events", started.trial),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    agent: Option<String>,
}

/// `GET /v1/trials?agent=` (admin, operator, auditor): newest first.
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid-query",
            format!("expected `?agent=ID`: {}", rejection.body_text()),
        )
    })?;
    let rows = app.registry().trials(query.agent.as_deref(), LIST_MAX)?;
    let trials: Vec<Value> = rows
        .iter()
        .map(|row| match app.trials().find(row.start_idx) {
            Some(active) => snapshot_json(row, &active.state.borrow()),
            None => trial_json(row),
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "trials": trials })))
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::not_found(
            "unknown-trial",
            format!("`{text}` is not a trial id (the index of its trial_start record)"),
        )
    })
}

fn find_trial(app: &AppState, idx: u64) -> Result<TrialRow, ApiError> {
    app.registry()
        .trial(idx)?
        .ok_or_else(|| ApiError::not_found("unknown-trial", format!("no trial {idx}")))
}

/// `GET /v1/trials/{id}` (admin, operator, auditor): progress while running, the summary when
/// done.
pub(crate) async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let idx = parse_id(&id)?;
    let row = find_trial(&app, idx)?;
    let body = match app.trials().find(idx) {
        Some(active) => snapshot_json(&row, &active.state.borrow()),
        None => trial_json(&row),
    };
    Ok(json_response(StatusCode::OK, body))
}

/// `DELETE /v1/trials/{id}` (admin, operator): cancels a running trial; it is recorded as
/// incomplete. 409 when it already ended.
pub(crate) async fn cancel(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(RUN_ROLES)?;
    let idx = parse_id(&id)?;
    let row = find_trial(&app, idx)?;
    let Some(active) = app.trials().find(idx) else {
        return Err(ApiError::conflict(
            "trial-ended",
            format!("trial {idx} already ended ({})", row.status),
        ));
    };
    active.cancel.store(true, Ordering::SeqCst);
    Ok(json_response(
        StatusCode::ACCEPTED,
        json!({ "trial": idx, "status": "cancelling", "events": format!("/v1/trials/{idx}/events") }),
    ))
}

fn done_event(row: &TrialRow) -> Event {
    Event::default()
        .event("done")
        .data(trial_json(row).to_string())
}

/// `GET /v1/trials/{id}/events` (admin, operator, auditor): Server-Sent Events, `progress`
/// (`{trial, n_done, n_cases, n_passed, n_failed, n_errors, last_case}`, coalesced when the
/// watcher is slow), then one `done` with what `GET /v1/trials/{id}` answers at the end.
pub(crate) async fn events(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let idx = parse_id(&id)?;
    let row = find_trial(&app, idx)?;
    let Some(active) = app.trials().find(idx) else {
        let stream = futures_util::stream::iter([done_event(&row)]);
        return Ok(sse_response(stream));
    };
    let receiver = active.state.subscribe();
    drop(active);
    // State: the receiver, and whether the last snapshot was already sent.
    let stream = futures_util::stream::unfold(Some((receiver, false)), |state| async move {
        let (mut receiver, sent) = state?;
        let mut closed = false;
        if sent {
            closed = receiver.changed().await.is_err();
        }
        loop {
            let snapshot = receiver.borrow_and_update().clone();
            match snapshot {
                Snapshot::Done(row) => return Some((done_event(&row), None)),
                _ if closed => return None,
                Snapshot::Running(progress) => {
                    let event = Event::default()
                        .event("progress")
                        .data(progress.to_json().to_string());
                    return Some((event, Some((receiver, true))));
                }
                Snapshot::Starting => closed = receiver.changed().await.is_err(),
            }
        }
    });
    Ok(sse_response(stream))
}

/// Starts the scheduler: one pass every `Limits::schedule_check_ms` (0: never).
pub fn spawn_scheduler(app: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every_ms = app.limits().schedule_check_ms;
    if every_ms == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(every_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if !app.is_ready() {
                return;
            }
            app.schedule_due_trials().await;
        }
    }))
}
