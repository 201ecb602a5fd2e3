//! Incidents over HTTP: open, read the case file, change it, move it, and resume the agent only
//! through the evidence-gated recovery check. Every change is a record; the case is folded from
//! the log on every read (`incident::fold`), so nothing about an incident lives outside the log.
//!
//! | route | roles |
//! |---|---|
//! | `POST /v1/incidents`, `PATCH /v1/incidents/{id}`, `POST /v1/incidents/{id}/state|changes|approvals|postmortem|resume` | admin, operator |
//! | `GET /v1/incidents`, `GET /v1/incidents/{id}`, `POST /v1/incidents/{id}/bundle`, `GET /v1/program` | admin, operator, auditor |

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use incident::records::{
    ChangeKind, Fired, Opened, OperatingModelChange, Postmortem, RecoveryApproval, StateChange,
    Trigger, Updated,
};
use incident::{Case, Criteria, Resume, Stage, State};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{make_record, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;

/// Roles that change incidents.
const WRITE_ROLES: &[Role] = &[Role::Admin, Role::Operator];
/// Roles that read them.
const READ_ROLES: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];

/// Runs blocking log reads off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(format!("a blocking task failed: {err}")))?
}

/// The agent's records and its incidents.
async fn cases_of(
    app: &AppState,
    agent: &str,
) -> Result<(Vec<(u64, Value)>, BTreeMap<u64, Case>), ApiError> {
    let app = app.clone();
    let agent = agent.to_owned();
    blocking(move || {
        let records = app.agent_records(&agent)?;
        let cases = incident::fold(&records);
        Ok((records, cases))
    })
    .await
}

/// The case `id` with its agent's records.
async fn case_of(app: &AppState, id: u64) -> Result<(Vec<(u64, Value)>, Case), ApiError> {
    let not_found = || {
        ApiError::not_found(
            "unknown-incident",
            format!("no incident {}", incident::label(id)),
        )
    };
    let bytes = match app.log().get(id) {
        Ok(bytes) => bytes,
        Err(store::StoreError::NotFound { .. }) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    let record: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    if record["kind"] != json!(incident::records::KIND_OPENED) {
        return Err(not_found());
    }
    let agent = record["agent"].as_str().unwrap_or_default().to_owned();
    let (records, mut cases) = cases_of(app, &agent).await?;
    let case = cases.remove(&id).ok_or_else(not_found)?;
    Ok((records, case))
}

/// Is `case` still in the hands of people (not recovering at full scope, not closed)?
pub fn is_unresolved(case: &Case) -> bool {
    matches!(case.state, State::Open | State::Contained | State::Repaired)
        || (case.state == State::Recovering && case.stage == Some(Stage::Restricted))
}

/// The label of `agent`'s unresolved incident opened by evidence (a signal), if any: such an
/// agent resumes only through the recovery gate.
pub async fn gated_incident(app: &AppState, agent: &str) -> Result<Option<String>, ApiError> {
    let (_, cases) = cases_of(app, agent).await?;
    Ok(cases
        .values()
        .filter(|case| is_unresolved(case) && !case.opened.signals.is_empty())
        .map(Case::label)
        .next())
}

/// The label of `agent`'s unresolved incident opened by evidence whose action category is
/// `category`, if any: restricting that category is what contains it, so the restriction is
/// lifted only through the recovery gate (staged re-entry lifts it at full scope).
pub async fn gated_category_incident(
    app: &AppState,
    agent: &str,
    category: &str,
) -> Result<Option<String>, ApiError> {
    let (_, cases) = cases_of(app, agent).await?;
    Ok(cases
        .values()
        .filter(|case| {
            is_unresolved(case)
                && !case.opened.signals.is_empty()
                && case.opened.category.as_deref() == Some(category)
        })
        .map(Case::label)
        .next())
}

/// A pact version's document, from the registry.
fn pact_doc(app: &AppState, agent: &str, version: u64) -> Option<pact::syntax::PactDoc> {
    let rows = app.registry().pacts().ok()?;
    let row = rows
        .into_iter()
        .find(|row| row.agent == agent && row.version == version)?;
    pact::check(&row.source).pact.map(|pact| pact.doc().clone())
}

/// The agent's active pact document.
fn active_doc(app: &AppState, agent: &str) -> Result<Option<pact::syntax::PactDoc>, ApiError> {
    let slot = app.agent(agent)?;
    let runtime = crate::app::lock_runtime(&slot);
    Ok(runtime
        .guard
        .as_ref()
        .map(|guard| guard.pact().doc().clone()))
}

fn record_error(err: incident::records::RecordError) -> ApiError {
    ApiError::unprocessable("invalid-incident-record", err.to_string())
}

async fn append(app: &AppState, kind: &str, agent: &str, members: Value) -> Result<u64, ApiError> {
    app.append_one(make_record(kind, agent, app.now_ms(), members)?)
        .await
}

fn one_line(case: &Case) -> Value {
    json!({
        "id": case.id,
        "label": case.label(),
        "agent": case.agent,
        "state": case.state.as_str(),
        "stage": case.stage.map(Stage::as_str),
        "severity": case.severity.as_str(),
        "pattern": case.pattern.map(incident::Pattern::as_str),
        "opened_ms": case.opened_ms,
        "time_to_containment_ms": case.time_to_containment_ms(),
        "reason": case.opened.reason,
    })
}

/// Opens an incident automatically when the agent has none unresolved: on a halt (`trigger` is
/// the halt record) or from the `signal` records of a critical signal (`fired`: signal record
/// index and response members). Returns its id, or the unresolved incident already open (which
/// the new evidence joins through its timeline). Evidence never joins an incident a person
/// opened (a drill halt, say): that one a person may lift with a plain resume, so the evidence
/// gets its own incident, which only the recovery gate closes.
pub async fn open_automatically(
    app: &AppState,
    agent: &str,
    trigger: Trigger,
    trigger_index: u64,
    fired: &[(u64, Value)],
) -> Result<u64, ApiError> {
    let (_, cases) = cases_of(app, agent).await?;
    let joinable =
        |case: &&Case| is_unresolved(case) && (fired.is_empty() || !case.opened.signals.is_empty());
    if let Some(case) = cases.values().rev().find(joinable) {
        return Ok(case.id);
    }
    let fired: Vec<(u64, Fired)> = fired
        .iter()
        .filter_map(|(index, members)| {
            serde_json::from_value::<Fired>(members.clone())
                .ok()
                .map(|fired| (*index, fired))
        })
        .collect();
    let slot = app.agent(agent)?;
    let owner = crate::app::lock_info(&slot).owner.clone();
    let mut opened = Opened::from_signals(trigger, trigger_index, &fired, owner.as_deref());
    if fired.is_empty() {
        // A person's halt: the halt's reason is the incident's.
        if let Ok(bytes) = app.log().get(trigger_index) {
            if let Ok(record) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(reason) = record["reason"].as_str() {
                    opened.reason = format!("halted: {reason}");
                }
            }
        }
    }
    let members = opened.members().map_err(record_error)?;
    let id = append(app, incident::records::KIND_OPENED, agent, members).await?;
    crate::notify::raise(
        app,
        json!({
            "event": "incident_opened",
            "agent": agent,
            "incident": incident::label(id),
            "severity": opened.severity.as_str(),
            "pattern": opened.pattern.map(incident::Pattern::as_str),
            "reason": opened.reason,
        }),
        id,
        Some(id),
    );
    Ok(id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenBody {
    agent: String,
    reason: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /v1/incidents`: a person opens one.
pub(crate) async fn open(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OpenBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    app.agent(&body.agent)?;
    check_text("reason", &body.reason, &app)?;
    let severity = body.severity.as_deref().unwrap_or("medium");
    if incident::Severity::parse(severity).is_none() {
        return Err(ApiError::unprocessable(
            "invalid-severity",
            format!("severity `{severity}` is not one of low, medium, high, critical"),
        ));
    }
    let mut opened = Opened::by_person(&caller.who(), &body.reason, severity);
    opened.owner = body.owner;
    let members = opened.members().map_err(record_error)?;
    let id = append(&app, incident::records::KIND_OPENED, &body.agent, members).await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "id": id, "label": incident::label(id), "summary": format!("opened {}", incident::label(id)) }),
    ))
}

fn check_text(field: &str, text: &str, app: &AppState) -> Result<(), ApiError> {
    let limit = app.limits().text_bytes_max;
    if text.trim().is_empty() || text.len() > limit {
        return Err(ApiError::unprocessable(
            "invalid-field",
            format!("`{field}` must be 1 to {limit} bytes"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    agent: Option<String>,
}

/// `GET /v1/incidents?agent=`.
pub(crate) async fn list(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let agents = match query.agent {
        Some(agent) => {
            app.agent(&agent)?;
            vec![agent]
        }
        None => app.agent_ids(),
    };
    let mut incidents = Vec::new();
    for agent in agents {
        let (_, cases) = cases_of(&app, &agent).await?;
        incidents.extend(cases.values().map(one_line));
    }
    incidents.sort_by_key(|item| item["id"].as_u64());
    Ok(json_response(
        StatusCode::OK,
        json!({ "incidents": incidents }),
    ))
}

/// `GET /v1/incidents/{id}`: the case file, and its rendering for a person in `text`.
pub(crate) async fn show(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let id = parse_id(&id)?;
    let (records, case) = case_of(&app, id).await?;
    let now = app.now_ms();
    let lookup = app.clone();
    let file = blocking(move || {
        Ok(incident::case_file(
            &case,
            &records,
            &|agent, version| pact_doc(&lookup, agent, version),
            now,
        ))
    })
    .await?;
    let text = incident::render(&file);
    Ok(json_response(
        StatusCode::OK,
        json!({ "case_file": file, "text": text }),
    ))
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    incident::parse_label(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid-incident-id",
            format!("`{text}` is not an incident id (INC-42 or 42)"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    reason: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    owner: Option<String>,
}

/// `PATCH /v1/incidents/{id}`: classification, severity or owner, with a reason.
pub(crate) async fn update(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    let (_, case) = case_of(&app, id).await?;
    check_text("reason", &body.reason, &app)?;
    let pattern = match body.pattern.as_deref() {
        Some(text) => Some(incident::Pattern::parse(text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid-pattern",
                format!("pattern `{text}` is not one of scope_creep, drift, injection, authority_confusion, metric_gaming"),
            )
        })?),
        None => None,
    };
    let severity = match body.severity.as_deref() {
        Some(text) => Some(incident::Severity::parse(text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid-severity",
                format!("severity `{text}` is not one of low, medium, high, critical"),
            )
        })?),
        None => None,
    };
    let updated = Updated {
        incident: id,
        by: caller.who(),
        reason: body.reason,
        pattern,
        severity,
        owner: body.owner,
    };
    let members = updated.members().map_err(record_error)?;
    let record = append(&app, incident::records::KIND_UPDATED, &case.agent, members).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "id": id, "record": record, "summary": format!("{} updated (record {record})", incident::label(id)) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateBody {
    to: String,
    reason: String,
}

fn parse_state(text: &str) -> Result<State, ApiError> {
    [
        State::Open,
        State::Contained,
        State::Repaired,
        State::Recovering,
        State::Closed,
    ]
    .into_iter()
    .find(|state| state.as_str() == text)
    .ok_or_else(|| {
        ApiError::unprocessable(
            "invalid-state",
            format!("state `{text}` is not one of contained, repaired, recovering, closed"),
        )
    })
}

/// `POST /v1/incidents/{id}/state`: contained, repaired or closed (recovering goes through resume).
pub(crate) async fn transition(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StateBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    let to = parse_state(&body.to)?;
    let (_, case) = case_of(&app, id).await?;
    let who = caller.who();
    incident::check_transition(&case, to, &who, &body.reason).map_err(|err| {
        ApiError::new(StatusCode::CONFLICT, "illegal-transition", err.to_string())
    })?;
    let change = StateChange {
        incident: id,
        from: case.state,
        to,
        by: who,
        reason: body.reason,
        stage: None,
        criteria: None,
    };
    let members = change.members().map_err(record_error)?;
    let record = append(&app, incident::records::KIND_STATE, &case.agent, members).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "id": id, "state": to.as_str(), "record": record,
                "summary": format!("{}: {} -> {} (record {record})", incident::label(id), case.state.as_str(), to.as_str()) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeBody {
    change: String,
    detail: String,
    broken_assumption: String,
}

/// `POST /v1/incidents/{id}/changes`: the operating-model change.
pub(crate) async fn operating_model_change(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    let (_, case) = case_of(&app, id).await?;
    let change: ChangeKind = serde_json::from_value(json!(body.change)).map_err(|_| {
        ApiError::unprocessable(
            "invalid-change",
            format!(
                "change `{}` is not one of pact_version, suite_test, threshold",
                body.change
            ),
        )
    })?;
    check_text("detail", &body.detail, &app)?;
    check_text("broken_assumption", &body.broken_assumption, &app)?;
    let members = OperatingModelChange {
        incident: id,
        change,
        detail: body.detail,
        broken_assumption: body.broken_assumption,
        by: caller.who(),
    }
    .members()
    .map_err(record_error)?;
    let record = append(
        &app,
        incident::records::KIND_OPERATING_MODEL_CHANGE,
        &case.agent,
        members,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "id": id, "record": record, "summary": format!("operating-model change recorded on {} (record {record})", incident::label(id)) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/incidents/{id}/approvals`: one person approves the agent's return.
pub(crate) async fn approve(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    let (_, case) = case_of(&app, id).await?;
    let members = RecoveryApproval {
        incident: id,
        by: caller.who(),
        reason: body.reason,
    }
    .members()
    .map_err(record_error)?;
    let record = append(
        &app,
        incident::records::KIND_RECOVERY_APPROVAL,
        &case.agent,
        members,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "id": id, "record": record, "summary": format!("{} approved by {} (record {record})", incident::label(id), caller.who()) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostmortemBody {
    visible_failure: String,
    structural_failure: String,
    broken_assumption: String,
    operating_model_change: String,
}

/// `POST /v1/incidents/{id}/postmortem`.
pub(crate) async fn postmortem(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PostmortemBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    let (_, case) = case_of(&app, id).await?;
    let postmortem = Postmortem {
        incident: id,
        by: caller.who(),
        visible_failure: body.visible_failure,
        structural_failure: body.structural_failure,
        broken_assumption: body.broken_assumption,
        operating_model_change: body.operating_model_change,
    };
    let members = postmortem.members().map_err(record_error)?;
    let record = append(
        &app,
        incident::records::KIND_POSTMORTEM,
        &case.agent,
        members,
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "id": id, "record": record, "summary": format!("postmortem recorded on {} (record {record})", incident::label(id)) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeBody {
    reason: String,
}

/// `POST /v1/incidents/{id}/resume`: the recovery gate. Refused (409 `recovery-refused`, with
/// `missing`) until every re-entry criterion holds; then the agent runs again, restricted to
/// less than its full scope first when the criteria are staged.
pub(crate) async fn resume(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResumeBody>,
) -> Result<Response, ApiError> {
    caller.require(WRITE_ROLES)?;
    let id = parse_id(&id)?;
    check_text("reason", &body.reason, &app)?;
    let (records, case) = case_of(&app, id).await?;
    let doc = active_doc(&app, &case.agent)?;
    let criteria = match &doc {
        Some(doc) => Criteria::from_pact(doc),
        None => Criteria::for_tier(pact::syntax::Tier::Medium),
    };
    let now = app.now_ms();
    let answer = incident::check_resume(&case, &records, &criteria, now);
    let stage = match answer {
        Resume::Refused { missing } => {
            let lines: Vec<String> = missing.iter().map(ToString::to_string).collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "recovery-refused",
                format!(
                    "{} cannot resume yet: {}",
                    incident::label(id),
                    lines.join("; ")
                ),
            )
            .with_extensions(json!({ "missing": missing })));
        }
        Resume::Allowed { stage } => stage,
    };
    let who = caller.who();
    let change = StateChange {
        incident: id,
        from: case.state,
        to: State::Recovering,
        by: who.clone(),
        reason: body.reason.clone(),
        stage: Some(stage),
        criteria: Some(criteria),
    };
    let members = change.members().map_err(record_error)?;
    let record = append(&app, incident::records::KIND_STATE, &case.agent, members).await?;
    let cause = json!({ "refs": [{ "rel": "incident", "index": id }], "incident": id });
    let halted = {
        let slot = app.agent(&case.agent)?;
        let runtime = crate::app::lock_runtime(&slot);
        runtime.state.halt().is_some()
    };
    let category = case.opened.category.clone();
    match (stage, &category) {
        (Stage::Restricted, Some(category)) => {
            crate::agents::apply_control(
                &app,
                &case.agent,
                "restrict",
                Some(category.clone()),
                who.clone(),
                format!("staged re-entry of {}", incident::label(id)),
                cause.clone(),
            )
            .await?;
        }
        (Stage::Full, Some(category)) => {
            crate::agents::apply_control(
                &app,
                &case.agent,
                "unrestrict",
                Some(category.clone()),
                who.clone(),
                format!("full re-entry of {}", incident::label(id)),
                cause.clone(),
            )
            .await?;
        }
        _ => {}
    }
    if halted {
        crate::agents::apply_control(
            &app,
            &case.agent,
            "resume",
            None,
            who,
            format!("{}: {}", incident::label(id), body.reason),
            cause,
        )
        .await?;
    }
    app.active_signals().clear(&case.agent);
    let label = incident::label(id);
    let summary = match (stage, &category) {
        (Stage::Restricted, Some(category)) => format!(
            "{label} recovering: the agent runs again with `{category}` restricted; resume again for full scope (record {record})"
        ),
        (Stage::Restricted, None) => format!(
            "{label} recovering: the agent runs again; the incident names no action category to hold back, so its scope is full (record {record})"
        ),
        (Stage::Full, _) => {
            format!("{label} recovering: the agent runs again at full scope (record {record})")
        }
    };
    Ok(json_response(
        StatusCode::OK,
        json!({ "id": id, "stage": stage.as_str(), "record": record,
                "summary": summary }),
    ))
}

/// `POST /v1/incidents/{id}/bundle`: the agent's records with proofs and the checkpoint, for
/// offline verification of the case.
pub(crate) async fn bundle(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let id = parse_id(&id)?;
    let (_, case) = case_of(&app, id).await?;
    let log_app = app.clone();
    let text = blocking(move || {
        let bundle = log_app
            .log()
            .export_bundle(ledger::bundle::Selection::Agent(case.agent))?;
        Ok(bundle.to_json())
    })
    .await?;
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `GET /v1/program`: the program's metrics over every agent.
pub(crate) async fn program(
    AxumState(app): AxumState<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(READ_ROLES)?;
    let metrics = program_metrics(&app).await?;
    Ok(json_response(StatusCode::OK, json!(metrics)))
}

/// Program metrics over the whole log.
pub async fn program_metrics(app: &AppState) -> Result<incident::ProgramMetrics, ApiError> {
    let app = app.clone();
    blocking(move || {
        let log = app.log();
        let size = log.size()?;
        let mut records = Vec::new();
        for index in 0..size {
            let bytes = log.get(index)?;
            if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                records.push((index, value));
            }
        }
        let ids = app.agent_ids();
        let n_agents = ids.len() as u64;
        let n_active = ids
            .iter()
            .filter(|id| {
                app.agent(id)
                    .map(|slot| crate::app::lock_runtime(&slot).guard.is_some())
                    .unwrap_or(false)
            })
            .count() as u64;
        Ok(incident::program_metrics(
            &records,
            &|agent, version| pact_doc(&app, agent, version),
            n_agents,
            n_active,
            app.now_ms(),
        ))
    })
    .await
}
