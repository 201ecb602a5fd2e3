//! `POST /v1/decide`, `POST /v1/decide/batch` and `POST /v1/outcomes`. A verdict is appended to
//! the evidence log (group commit) before it is answered, and the answer names its record index.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use guard::{ContentSource, Decision};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::{lock_runtime, make_record, AgentSlot, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;
use crate::registry::ApprovalRow;
use crate::wire::{verdict_json, RequestWire};

/// Roles that may ask for decisions and report outcomes (agent tokens: for their own agent).
pub const DECIDE_ROLES: &[Role] = &[Role::Admin, Role::Agent];
/// The outcome statuses an agent runtime may report.
pub const OUTCOME_STATUSES: [&str; 4] = ["succeeded", "failed", "cancelled", "timed_out"];

/// Whether a verdict is acted on. `observe` decides and records exactly as `enforce` does,
/// but the caller forwards the call whatever the verdict (a gateway trying a pact out): the
/// record says `"enforced": false`, no approval waits for a `review`, no immediate signal is
/// answered, the denial counts and signals leave it out, and the call feeds the counters as a
/// forwarded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The verdict is acted on (the default).
    Enforce,
    /// The verdict is recorded, not acted on.
    Observe,
}

impl Mode {
    /// Parses the wire's `mode`.
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "enforce" => Some(Mode::Enforce),
            "observe" => Some(Mode::Observe),
            _ => None,
        }
    }

    /// Whether verdicts in this mode are acted on.
    pub fn is_enforced(self) -> bool {
        self == Mode::Enforce
    }
}

/// One request, checked and ready for the guard.
struct Prepared {
    agent: String,
    slot: Arc<AgentSlot>,
    request: guard::Request,
    /// What the record keeps of the request: args in full, secrets and content as digests.
    request_member: Value,
    mode: Mode,
}

/// Takes the members `POST /v1/decide` adds to the shared request form (`mode`, `raw_args`)
/// out of `value`, so the rest parses as a [`RequestWire`] (which the CLI's offline `decide`
/// shares).
fn take_decide_members(value: &Value) -> Result<(Value, Mode, Option<Value>), ApiError> {
    let mut value = value.clone();
    let Some(object) = value.as_object_mut() else {
        return Ok((value, Mode::Enforce, None));
    };
    let mode = match object.remove("mode") {
        None => Mode::Enforce,
        Some(Value::String(text)) => Mode::parse(&text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid-mode",
                format!("mode `{text}` is neither enforce nor observe"),
            )
        })?,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid-mode",
                "`mode` must be the string enforce or observe",
            ))
        }
    };
    let raw_args = match object.remove("raw_args") {
        None | Some(Value::Null) => None,
        Some(raw @ Value::Object(_)) => Some(raw),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid-field",
                "`raw_args` must be an object: the arguments as the agent sent them",
            ))
        }
    };
    Ok((value, mode, raw_args))
}

fn sha256_hex(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

fn source_name(source: ContentSource) -> &'static str {
    match source {
        ContentSource::User => "user",
        ContentSource::Tool => "tool",
        ContentSource::Document => "document",
        ContentSource::Output => "output",
    }
}

fn prepare(app: &AppState, caller: &Caller, value: &Value) -> Result<Prepared, ApiError> {
    let (value, mode, raw_args) = take_decide_members(value)?;
    let wire = RequestWire::from_value(&value)
        .map_err(|err| ApiError::unprocessable("invalid-request", err.to_string()))?;
    let agent = match (&wire.agent, &caller.agent) {
        (Some(agent), _) | (None, Some(agent)) => agent.clone(),
        (None, None) => {
            return Err(ApiError::unprocessable(
                "missing-agent",
                "the request must name its `agent`",
            ))
        }
    };
    caller.require_for_agent(DECIDE_ROLES, &agent)?;
    let slot = app.agent(&agent)?;
    let mut request = wire
        .into_request()
        .map_err(|err| ApiError::unprocessable("invalid-request", err.to_string()))?;
    request.agent = Some(agent.clone());
    let content: Vec<Value> = request
        .content
        .iter()
        .map(|item| {
            json!({ "source": source_name(item.source), "sha256": sha256_hex(&item.text), "bytes": item.text.len() })
        })
        .collect();
    let mut request_member = json!({
        "action": request.action,
        "args": Value::Object(request.args.clone()),
        "session": request.session,
        "principal": {
            "id": request.principal.id,
            "token_sha256": request.principal.token.as_deref().map(sha256_hex),
        },
        "content": content,
    });
    // Recorded, never decided: what the agent sent before the gateway resolved it.
    if let Some(raw_args) = raw_args {
        request_member["raw_args"] = raw_args;
    }
    let canonical = ledger::jcs::canonicalize(&request_member).map_err(|err| {
        ApiError::unprocessable(
            "unrecordable",
            format!("the request cannot be recorded: {err}"),
        )
    })?;
    let limit = app.limits().args_bytes_max;
    if canonical.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request-too-large",
            format!(
                "the request's recorded form is {} bytes; the limit is {limit} bytes (args_bytes_max)",
                canonical.len()
            ),
        ));
    }
    Ok(Prepared {
        agent,
        slot,
        request,
        request_member,
        mode,
    })
}

/// A decided request, not yet recorded.
struct Decided {
    verdict: Value,
    /// Taken out when the record is appended.
    record: Option<ledger::Record>,
    approval: Option<ApprovalRow>,
    mode: Mode,
}

/// Decides under the agent's lock; returns the verdict's wire form and its record.
fn decide_prepared(app: &AppState, prepared: Prepared, now: u64) -> Result<Decided, ApiError> {
    let (verdict, pact_record_idx) = {
        let mut runtime = lock_runtime(&prepared.slot);
        let Some(guard) = runtime.guard.clone() else {
            return Err(ApiError::conflict(
                "no-active-pact",
                format!(
                    "agent `{}` has no active pact; upload and activate one",
                    prepared.agent
                ),
            ));
        };
        let verdict = guard::decide(&guard, &prepared.request, &mut runtime.state, now);
        runtime.n_decisions += 1;
        let enforced = prepared.mode.is_enforced();
        if enforced && matches!(verdict.decision, Decision::Deny | Decision::Halted) {
            runtime.n_denials += 1;
        }
        if !enforced && verdict.decision != Decision::Allow {
            // The guard counted an allowed call already; an observed call is forwarded
            // whatever its verdict, so it feeds the counters too.
            guard::record_forwarded(&guard, &prepared.request, &mut runtime.state, now);
        }
        (verdict, runtime.pact_record_idx)
    };
    let enforced = prepared.mode.is_enforced();
    if enforced {
        app.metrics().count_decision(verdict.decision);
    }
    let approval = (enforced && verdict.decision == Decision::Review).then(|| ApprovalRow {
        verdict_idx: 0,
        agent: prepared.agent.clone(),
        action: verdict.action.clone(),
        session: verdict.session.clone(),
        created_ms: now,
        status: "pending".to_string(),
        decided_by: None,
        reason: None,
        decided_ms: None,
        record_idx: None,
    });
    let mut verdict_value = verdict_json(&verdict);
    let mut request_member = prepared.request_member;
    if let Some(normalized) = verdict.normalized_args {
        request_member["args_normalized"] = Value::Object(normalized);
    }
    let mut members = json!({
        "request": request_member,
        "verdict": verdict_value,
        "refs": [{ "rel": "pact", "index": pact_record_idx }],
    });
    // Enforced verdicts are recorded as they always were; only observed ones say so.
    if !enforced {
        members["enforced"] = json!(false);
    }
    let record = match make_record("verdict", &prepared.agent, now, members.clone()) {
        Ok(record) => record,
        // The request was sized before deciding; normalised paths can make the record too
        // large for the log, and then their digest stands in for them.
        Err(_) if !members["request"]["args_normalized"].is_null() => {
            let normalized = members["request"]["args_normalized"].take();
            let canonical = ledger::jcs::canonicalize(&normalized).map_err(ApiError::internal)?;
            members["request"]["args_normalized_sha256"] = json!(format!(
                "sha256:{}",
                hex::encode(Sha256::digest(&canonical))
            ));
            if let Some(request) = members["request"].as_object_mut() {
                request.remove("args_normalized");
            }
            make_record("verdict", &prepared.agent, now, members).map_err(ApiError::internal)?
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    verdict_value["enforced"] = json!(enforced);
    Ok(Decided {
        verdict: verdict_value,
        record: Some(record),
        approval,
        mode: prepared.mode,
    })
}

/// After the verdict is durable: a `review` becomes a pending approval.
fn after_recorded(app: &AppState, decided: &mut Decided, record_idx: u64) -> Result<(), ApiError> {
    decided.verdict["record"] = json!(record_idx);
    if let Some(approval) = &mut decided.approval {
        approval.verdict_idx = record_idx;
        app.registry().insert_approval(approval)?;
    }
    Ok(())
}

/// `POST /v1/decide`.
pub(crate) async fn decide(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(value): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let prepared = prepare(&app, &caller, &value)?;
    let agent = prepared.agent.clone();
    let decided_ms = app.now_ms();
    let mut decided = decide_prepared(&app, prepared, decided_ms)?;
    let record = decided
        .record
        .take()
        .ok_or_else(|| ApiError::internal("a decision without its record"))?;
    let record_idx = app.append_one(record).await?;
    after_recorded(&app, &mut decided, record_idx)?;
    if decided.mode.is_enforced() {
        crate::watch::after_verdict(&app, &agent, record_idx, decided_ms, &decided.verdict).await?;
    }
    observe_latency(&app, started);
    Ok(json_response(StatusCode::OK, decided.verdict))
}

fn observe_latency(app: &AppState, started: Instant) {
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    app.metrics().decide_latency_us.observe(elapsed_us);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    requests: Vec<Value>,
}

/// `POST /v1/decide/batch`: every request is checked first (any problem refuses the whole
/// batch, naming its `index`, with nothing decided), then decided in order and recorded in one
/// append.
pub(crate) async fn decide_batch(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    caller.require(DECIDE_ROLES)?;
    let limit = app.limits().batch_requests_max;
    if body.requests.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-too-large",
            format!(
                "the batch has {} requests; the limit is {limit} (batch_requests_max)",
                body.requests.len()
            ),
        ));
    }
    if body.requests.is_empty() {
        return Err(ApiError::unprocessable(
            "empty-batch",
            "the batch has no requests",
        ));
    }
    let mut prepared = Vec::with_capacity(body.requests.len());
    for (idx, value) in body.requests.iter().enumerate() {
        let at_index = |mut err: ApiError| {
            err.detail = format!("requests[{idx}]: {}", err.detail);
            let mut extensions = err.extensions.take().unwrap_or_else(|| json!({}));
            extensions["index"] = json!(idx);
            err.with_extensions(extensions)
        };
        let item = prepare(&app, &caller, value).map_err(at_index)?;
        // Refuse the whole batch before anything is decided: a request decided (counters moved)
        // but never recorded would be evidence lost.
        if lock_runtime(&item.slot).guard.is_none() {
            return Err(at_index(ApiError::conflict(
                "no-active-pact",
                format!(
                    "agent `{}` has no active pact; upload and activate one",
                    item.agent
                ),
            )));
        }
        prepared.push(item);
    }
    let started = Instant::now();
    let now = app.now_ms();
    let mut decided = Vec::with_capacity(prepared.len());
    let agents: Vec<String> = prepared.iter().map(|item| item.agent.clone()).collect();
    for item in prepared {
        decided.push(decide_prepared(&app, item, now)?);
    }
    let records = decided
        .iter_mut()
        .filter_map(|item| item.record.take())
        .collect();
    let indexes = app.append(records).await?;
    let mut verdicts = Vec::with_capacity(decided.len());
    for ((mut item, record_idx), agent) in decided.into_iter().zip(indexes).zip(agents) {
        after_recorded(&app, &mut item, record_idx)?;
        if item.mode.is_enforced() {
            crate::watch::after_verdict(&app, &agent, record_idx, now, &item.verdict).await?;
        }
        verdicts.push(item.verdict);
    }
    observe_latency(&app, started);
    Ok(json_response(
        StatusCode::OK,
        json!({ "verdicts": verdicts }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcomeBody {
    /// Index of the verdict record.
    verdict: u64,
    status: String,
    #[serde(default)]
    detail: Option<String>,
    /// What the call returned: scanned as tool content against the verdict's session.
    #[serde(default)]
    result: Option<crate::scan::ReturnedWire>,
}

/// `POST /v1/outcomes`: what happened after a decided call; references its verdict record.
/// One outcome per verdict: a second is refused with 409 `outcome-exists`. A `result` is
/// scanned (see [`crate::scan`]) and the record keeps its size, digest and findings.
pub(crate) async fn outcome(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<Response, ApiError> {
    caller.require(DECIDE_ROLES)?;
    if !OUTCOME_STATUSES.contains(&body.status.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid-status",
            format!(
                "status `{}` is not one of succeeded, failed, cancelled, timed_out",
                body.status
            ),
        ));
    }
    let limit = app.limits().text_bytes_max;
    if body
        .detail
        .as_ref()
        .is_some_and(|detail| detail.len() > limit)
    {
        return Err(ApiError::unprocessable(
            "invalid-field",
            format!("`detail` is over {limit} bytes"),
        ));
    }
    if let Some(result) = &body.result {
        result.check("result.")?;
    }
    let bytes = app.log().get(body.verdict).map_err(|err| match err {
        store::StoreError::NotFound { .. } => ApiError::not_found(
            "unknown-verdict",
            format!("no record at index {}", body.verdict),
        ),
        other => ApiError::from(other),
    })?;
    let verdict_record =
        ledger::Record::from_canonical_bytes(&bytes).map_err(ApiError::internal)?;
    if verdict_record.kind() != "verdict" {
        return Err(ApiError::unprocessable(
            "not-a-verdict",
            format!(
                "record {} is a `{}`, not a verdict",
                body.verdict,
                verdict_record.kind()
            ),
        ));
    }
    let agent = verdict_record.agent().to_string();
    caller.require_for_agent(DECIDE_ROLES, &agent)?;
    let verdict_value: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let mode = if verdict_value["enforced"] == json!(false) {
        Mode::Observe
    } else {
        Mode::Enforce
    };
    // Claimed before anything is recorded, so two reports of one call cannot both pass. The
    // recording runs as its own task: a caller that goes away cannot leave a durable outcome
    // with its claim released.
    let claim = crate::outcomes::Claim::take(&app, body.verdict)?;
    let task_app = app.clone();
    let recorded = tokio::spawn(async move {
        let (record_idx, answer) =
            record_outcome(&task_app, &agent, &verdict_value, body, mode).await?;
        claim.confirm(record_idx);
        Ok::<Value, ApiError>(answer)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(json_response(StatusCode::CREATED, recorded))
}

/// Scans the result (if any), appends the `outcome` and answers a canary. Returns the record
/// index and the answer.
async fn record_outcome(
    app: &AppState,
    agent: &str,
    verdict_record: &Value,
    body: OutcomeBody,
    mode: Mode,
) -> Result<(u64, Value), ApiError> {
    let verdict_idx = body.verdict;
    let session = verdict_record["request"]["session"]
        .as_str()
        .or_else(|| verdict_record["verdict"]["session"].as_str())
        .unwrap_or("default")
        .to_string();
    let action = verdict_record["verdict"]["action"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut members = json!({
        "status": body.status,
        "detail": body.detail,
        "refs": [{ "rel": "verdict", "index": verdict_idx }],
    });
    let mut scanned = None;
    if let Some(mut result) = body.result {
        let slot = app.agent(agent)?;
        let text_bytes = result.text.len();
        let text = std::mem::take(&mut result.text);
        let found = crate::scan::scan_text(app, &slot, agent, Some(&session), text).await?;
        members["result"] = found.record_members(&result, text_bytes);
        scanned = Some(found);
    }
    let now = app.now_ms();
    let record = make_record("outcome", agent, now, members)?;
    let record_idx = app.append_one(record).await?;
    let mut answer = json!({
        "agent": agent,
        "verdict": verdict_idx,
        "status": body.status,
        "record": record_idx,
        "findings": [],
        "n_findings": 0,
        "injection": false,
        "canary": false,
    });
    if let Some(scanned) = &scanned {
        answer["findings"] = json!(scanned.findings);
        answer["n_findings"] = json!(scanned.n_findings);
        answer["injection"] = json!(scanned.injection);
        answer["canary"] = json!(scanned.canary);
        // The outcome is durable: a failure answering the canary must not release the claim.
        if let Err(err) =
            crate::scan::answer_canary(app, agent, record_idx, now, &action, scanned, mode).await
        {
            eprintln!("pactum serve: answering the canary in outcome {record_idx}: {err}");
        }
    }
    Ok((record_idx, answer))
}

/// Longest metric name.
pub const METRIC_NAME_BYTES_MAX: usize = 64;

/// The body of `POST /v1/observations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObservationBody {
    agent: String,
    /// The metric's name as the pact's obligations use it (`csat`, `resolution_rate`, ...).
    metric: String,
    /// The measured value.
    value: f64,
    /// Samples behind the value (a rate over 40 conversations: 40).
    #[serde(default)]
    n_samples: Option<u64>,
}

/// `POST /v1/observations`: a measured value of a named metric (a proxy such as CSAT, a truth
/// such as resolution rate, a deflection rate), recorded as an `observation` with the value in
/// thousandths (`value_milli`); the proxy-against-truth signals read them.
pub(crate) async fn observation(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ObservationBody>,
) -> Result<Response, ApiError> {
    caller.require_for_agent(&[Role::Admin, Role::Operator, Role::Agent], &body.agent)?;
    app.agent(&body.agent)?;
    let name_ok = !body.metric.is_empty()
        && body.metric.len() <= METRIC_NAME_BYTES_MAX
        && body
            .metric
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if !name_ok {
        return Err(ApiError::unprocessable(
            "invalid-metric",
            format!("metric names are 1 to {METRIC_NAME_BYTES_MAX} characters of a-z, 0-9 and _"),
        ));
    }
    let milli = body.value * 1000.0;
    if !milli.is_finite() || milli.abs() > 1e15 {
        return Err(ApiError::unprocessable(
            "invalid-value",
            "the value must be a finite number of magnitude below 1e12",
        ));
    }
    // In range by the check above.
    #[allow(clippy::cast_possible_truncation)]
    let value_milli = milli.round() as i64;
    let mut members =
        json!({ "metric": body.metric, "value_milli": value_milli, "by": caller.who() });
    if let Some(n_samples) = body.n_samples {
        members["n_samples"] = json!(n_samples);
    }
    let now = app.now_ms();
    let record_idx = app
        .append_one(make_record("observation", &body.agent, now, members)?)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "agent": body.agent, "metric": body.metric, "value_milli": value_milli, "record": record_idx }),
    ))
}
