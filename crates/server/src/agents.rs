//! `/v1/agents`: register, list, show and update agents; upload, list, fetch and activate pact
//! versions; halt, resume, restrict and unrestrict. Agent ids contain `/` (`acme/support-bot`),
//! so everything under `/v1/agents/` is one wildcard route parsed here from the end.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use guard::Halt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{guard_from_source, lock_info, lock_runtime, make_record, AppState, Runtime};
use crate::auth::{Caller, Role};
use crate::json::{json_response, parse_json, read_body, ApiJson};
use crate::problem::ApiError;
use crate::registry::{ActiveRow, AgentRow, PactRow};
use crate::wire::format_time_ms;

/// Longest agent id, in bytes.
pub const AGENT_ID_BYTES_MAX: usize = 256;
/// Most `/`-separated segments in an agent id.
pub const AGENT_ID_SEGMENTS_MAX: usize = 4;
/// Longest owner, class or category, in bytes.
pub const LABEL_BYTES_MAX: usize = 256;
/// The tiers an agent may have.
pub const TIERS: [&str; 4] = ["low", "medium", "high", "critical"];
/// Path words that cannot be agent id segments (they name sub-resources).
const RESERVED_SEGMENTS: [&str; 8] = [
    "pacts",
    "activate",
    "halt",
    "resume",
    "restrict",
    "unrestrict",
    "tools",
    "shadow",
];

/// Roles that may read agents and pacts (agent tokens: only their own).
pub const READ_ROLES: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor, Role::Agent];
/// Roles that may halt, resume, restrict and unrestrict.
pub const CONTROL_ROLES: &[Role] = &[Role::Admin, Role::Operator];

/// Checks an agent id: 1 to 4 segments of `[A-Za-z0-9._-]`, at most 256 bytes.
pub fn validate_agent_id(id: &str) -> Result<(), ApiError> {
    let invalid =
        |why: &str| ApiError::unprocessable("invalid-agent-id", format!("agent id `{id}` {why}"));
    if id.is_empty() || id.len() > AGENT_ID_BYTES_MAX {
        return Err(invalid("must be 1 to 256 bytes"));
    }
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() > AGENT_ID_SEGMENTS_MAX {
        return Err(invalid("has more than 4 `/`-separated segments"));
    }
    for segment in segments {
        if segment.is_empty()
            || !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || segment == "."
            || segment == ".."
        {
            return Err(invalid(
                "must be segments of letters, digits, `.`, `_` and `-` separated by `/`",
            ));
        }
        if RESERVED_SEGMENTS.contains(&segment) {
            return Err(invalid(&format!("uses the reserved path word `{segment}`")));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    id: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    tier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    /// `webhook:URL` or `openai:URL#MODEL`: where the server sends this agent's trials; the
    /// empty string clears it.
    #[serde(default)]
    trial_target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    reason: String,
    #[serde(default)]
    category: Option<String>,
}

fn check_label(name: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(text) if text.is_empty() || text.len() > LABEL_BYTES_MAX => {
            Err(ApiError::unprocessable(
                "invalid-field",
                format!("`{name}` must be 1 to {LABEL_BYTES_MAX} bytes"),
            ))
        }
        _ => Ok(()),
    }
}

fn check_tier(tier: &str) -> Result<(), ApiError> {
    if TIERS.contains(&tier) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid-tier",
            format!("tier `{tier}` is not one of low, medium, high, critical"),
        ))
    }
}

/// The status shown for an agent: `halted`, `restricted`, `active`, or `inactive` (no pact).
pub fn status(runtime: &Runtime) -> &'static str {
    if runtime.state.halt().is_some() {
        "halted"
    } else if runtime.state.restricted().next().is_some() {
        "restricted"
    } else if runtime.guard.is_some() {
        "active"
    } else {
        "inactive"
    }
}

fn agent_json(info: &AgentRow, runtime: &Runtime) -> Value {
    let active_pact = match (&runtime.guard, &runtime.active) {
        (Some(guard), Some(active)) => json!({
            "version": active.version,
            "digest": guard.pact().digest(),
            "record": runtime.pact_record_idx,
            "activation_record": active.record_idx,
        }),
        _ => Value::Null,
    };
    let halt = runtime.state.halt().map(
        |halt| json!({ "by": halt.by, "reason": halt.reason, "at": format_time_ms(halt.at_ms) }),
    );
    json!({
        "id": info.id,
        "owner": info.owner,
        "class": info.class,
        "tier": info.tier,
        "registered": format_time_ms(info.created_ms),
        "status": status(runtime),
        "active_pact": active_pact,
        "halt": halt,
        "restricted": runtime.state.restricted().collect::<Vec<_>>(),
        "decisions": runtime.n_decisions,
        "denials": runtime.n_denials,
    })
}

/// `POST /v1/agents`: register an agent (admin).
pub(crate) async fn register(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    validate_agent_id(&body.id)?;
    check_label("owner", &body.owner)?;
    check_label("class", &body.class)?;
    let tier = body.tier.unwrap_or_else(|| "medium".to_string());
    check_tier(&tier)?;
    let _admin = app.admin_lock().await;
    if app.agent(&body.id).is_ok() {
        return Err(ApiError::conflict(
            "agent-exists",
            format!("agent `{}` is already registered", body.id),
        ));
    }
    let now = app.now_ms();
    let row = AgentRow {
        id: body.id,
        owner: body.owner,
        class: body.class,
        tier,
        created_ms: now,
    };
    let record = make_record(
        "agent_registered",
        &row.id,
        now,
        json!({ "owner": row.owner, "class": row.class, "tier": row.tier, "by": caller.who() }),
    )?;
    let record_idx = app.append_one(record).await?;
    if !app.registry().insert_agent(&row)? {
        return Err(ApiError::conflict(
            "agent-exists",
            format!("agent `{}` is already registered", row.id),
        ));
    }
    let slot = app.add_agent(row);
    let mut body = {
        let info = lock_info(&slot);
        let runtime = lock_runtime(&slot);
        agent_json(&info, &runtime)
    };
    body["record"] = json!(record_idx);
    Ok(json_response(StatusCode::CREATED, body))
}

/// `GET /v1/agents`: every agent (admin, operator, auditor).
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator, Role::Auditor])?;
    let mut agents = Vec::new();
    for id in app.agent_ids() {
        let slot = app.agent(&id)?;
        let info = lock_info(&slot).clone();
        let runtime = lock_runtime(&slot);
        agents.push(agent_json(&info, &runtime));
    }
    Ok(json_response(StatusCode::OK, json!({ "agents": agents })))
}

enum Sub<'a> {
    Agent,
    Pacts,
    Pact(&'a str),
    Activate(&'a str),
    Control(&'static str),
    Signals,
    Tools,
    AcceptTool(&'a str),
    Shadow,
}

fn split_agent_path(path: &str) -> (&str, Sub<'_>) {
    let path = path.trim_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let n_segments = segments.len();
    let tail = |n: usize| segments.get(n_segments.wrapping_sub(n)).copied();
    let head = |n: usize| {
        let end = path.len()
            - segments[n_segments - n..]
                .iter()
                .map(|s| s.len() + 1)
                .sum::<usize>();
        &path[..end]
    };
    if n_segments >= 2 {
        for control in ["halt", "resume", "restrict", "unrestrict"] {
            if tail(1) == Some(control) {
                return (head(1), Sub::Control(control));
            }
        }
        if tail(1) == Some("pacts") {
            return (head(1), Sub::Pacts);
        }
        if tail(1) == Some("signals") {
            return (head(1), Sub::Signals);
        }
        if tail(1) == Some("tools") {
            return (head(1), Sub::Tools);
        }
        if tail(1) == Some("shadow") {
            return (head(1), Sub::Shadow);
        }
    }
    if n_segments >= 4 && tail(1) == Some("accept") && tail(3) == Some("tools") {
        return (head(3), Sub::AcceptTool(tail(2).unwrap_or_default()));
    }
    if n_segments >= 4 && tail(1) == Some("activate") && tail(3) == Some("pacts") {
        return (head(3), Sub::Activate(tail(2).unwrap_or_default()));
    }
    if n_segments >= 3 && tail(2) == Some("pacts") {
        return (head(2), Sub::Pact(tail(1).unwrap_or_default()));
    }
    (path, Sub::Agent)
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not allowed on this resource"),
    )
}

/// Everything under `/v1/agents/{id}`.
pub(crate) async fn agent_path(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    Path(path): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (id, sub) = split_agent_path(&path);
    let id = id.to_string();
    match (sub, method.clone()) {
        (Sub::Agent, Method::GET) => show(&app, &caller, &id),
        (Sub::Agent, Method::PATCH) => {
            let body: UpdateBody = parse_json(&read_body(request, &app).await?)?;
            update(&app, &caller, &id, body).await
        }
        (Sub::Pacts, Method::GET) => list_pacts(&app, &caller, &id),
        (Sub::Pacts, Method::POST) => {
            caller.require(&[Role::Admin])?;
            let bytes = read_body(request, &app).await?;
            upload_pact(&app, &caller, &id, &bytes).await
        }
        (Sub::Pact(reference), Method::GET) => get_pact(&app, &caller, &id, reference),
        (Sub::Activate(version), Method::POST) => activate(&app, &caller, &id, version).await,
        (Sub::Control(kind), Method::POST) => {
            caller.require(CONTROL_ROLES)?;
            let body: ControlBody = parse_json(&read_body(request, &app).await?)?;
            control(&app, &caller, &id, kind, body).await
        }
        (Sub::Signals, Method::GET) => {
            caller.require_for_agent(READ_ROLES, &id)?;
            let body = crate::watch::handle(&app, &id, false).await?;
            Ok(json_response(StatusCode::OK, body))
        }
        (Sub::Signals, Method::POST) => {
            caller.require(CONTROL_ROLES)?;
            let body = crate::watch::handle(&app, &id, true).await?;
            Ok(json_response(StatusCode::OK, body))
        }
        (Sub::Tools, Method::GET) => crate::tools::list(&app, &caller, &id),
        (Sub::Tools, Method::POST) => crate::tools::pin(&app, &caller, &id, request).await,
        (Sub::AcceptTool(name), Method::POST) => {
            caller.require(CONTROL_ROLES)?;
            let body = parse_json(&read_body(request, &app).await?)?;
            crate::tools::accept(&app, &caller, &id, name, body).await
        }
        (Sub::Shadow, Method::GET) => {
            let query = request.uri().query().map(str::to_string);
            crate::shadow::shadow(&app, &caller, &id, query.as_deref()).await
        }
        _ => Err(method_not_allowed(&method)),
    }
}

fn show(app: &AppState, caller: &Caller, id: &str) -> Result<Response, ApiError> {
    caller.require_for_agent(READ_ROLES, id)?;
    let slot = app.agent(id)?;
    let info = lock_info(&slot).clone();
    let trial_target = app.registry().trial_target(id)?;
    let runtime = lock_runtime(&slot);
    let mut body = agent_json(&info, &runtime);
    body["trial_target"] = json!(trial_target);
    Ok(json_response(StatusCode::OK, body))
}

async fn update(
    app: &AppState,
    caller: &Caller,
    id: &str,
    body: UpdateBody,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let slot = app.agent(id)?;
    check_label("class", &body.class)?;
    if let Some(tier) = &body.tier {
        check_tier(tier)?;
    }
    if let Some(target) = body
        .trial_target
        .as_deref()
        .filter(|target| !target.is_empty())
    {
        crate::trials::check_target(target)?;
    }
    let _admin = app.admin_lock().await;
    let mut row = lock_info(&slot).clone();
    if body.class.is_some() {
        row.class = body.class;
    }
    if let Some(tier) = body.tier {
        row.tier = tier;
    }
    let trial_target = match body.trial_target {
        Some(target) if target.is_empty() => None,
        Some(target) => Some(target),
        None => app.registry().trial_target(id)?,
    };
    let now = app.now_ms();
    let record = make_record(
        "agent_updated",
        id,
        now,
        json!({ "class": row.class, "tier": row.tier, "trial_target": trial_target, "by": caller.who() }),
    )?;
    let record_idx = app.append_one(record).await?;
    app.registry().update_agent(&row)?;
    app.registry()
        .set_trial_target(id, trial_target.as_deref())?;
    *lock_info(&slot) = row.clone();
    let mut body = agent_json(&row, &lock_runtime(&slot));
    body["trial_target"] = json!(trial_target);
    body["record"] = json!(record_idx);
    Ok(json_response(StatusCode::OK, body))
}

fn pact_summary_json(row: &PactRow, active_version: Option<u64>) -> Value {
    json!({
        "agent": row.agent,
        "version": row.version,
        "digest": row.digest,
        "uploaded": format_time_ms(row.uploaded_ms),
        "record": row.record_idx,
        "active": active_version == Some(row.version),
    })
}

fn active_version(app: &AppState, id: &str) -> Result<Option<u64>, ApiError> {
    let slot = app.agent(id)?;
    let runtime = lock_runtime(&slot);
    Ok(runtime.active.as_ref().map(|active| active.version))
}

fn agent_pacts(app: &AppState, id: &str) -> Result<Vec<PactRow>, ApiError> {
    Ok(app
        .registry()
        .pacts()?
        .into_iter()
        .filter(|row| row.agent == id)
        .collect())
}

fn list_pacts(app: &AppState, caller: &Caller, id: &str) -> Result<Response, ApiError> {
    caller.require_for_agent(READ_ROLES, id)?;
    let active = active_version(app, id)?;
    let versions: Vec<Value> = agent_pacts(app, id)?
        .iter()
        .map(|row| pact_summary_json(row, active))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "agent": id, "versions": versions }),
    ))
}

fn find_pact(app: &AppState, id: &str, reference: &str) -> Result<PactRow, ApiError> {
    let rows = agent_pacts(app, id)?;
    let found = if reference.starts_with("sha256:") {
        rows.into_iter().find(|row| row.digest == reference)
    } else {
        let version: u64 = reference.parse().map_err(|_| {
            ApiError::unprocessable(
                "invalid-pact-ref",
                format!("`{reference}` is neither a version number nor a `sha256:` digest"),
            )
        })?;
        rows.into_iter().find(|row| row.version == version)
    };
    found.ok_or_else(|| {
        ApiError::not_found(
            "unknown-pact-version",
            format!("agent `{id}` has no pact `{reference}`"),
        )
    })
}

fn get_pact(
    app: &AppState,
    caller: &Caller,
    id: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    caller.require_for_agent(READ_ROLES, id)?;
    let active = active_version(app, id)?;
    let row = find_pact(app, id, reference)?;
    let mut body = pact_summary_json(&row, active);
    body["source"] = json!(row.source);
    Ok(json_response(StatusCode::OK, body))
}

async fn upload_pact(
    app: &AppState,
    caller: &Caller,
    id: &str,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    app.agent(id)?;
    if bytes.len() > pact::PACT_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "pact-too-large",
            format!(
                "the pact is {} bytes; the limit is {} bytes",
                bytes.len(),
                pact::PACT_BYTES_MAX
            ),
        ));
    }
    let source = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("not-utf8", "the pact must be UTF-8 YAML or JSON"))?;
    let checked = pact::check(source);
    let Some(checked_pact) = checked.pact else {
        let n_errors = checked
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == pact::Severity::Error)
            .count();
        let first = checked
            .diagnostics
            .iter()
            .find(|diagnostic| diagnostic.severity == pact::Severity::Error)
            .map(|diagnostic| diagnostic.render("pact"))
            .unwrap_or_default();
        return Err(ApiError::unprocessable(
            "pact-invalid",
            format!("the pact has {n_errors} error(s); first: {first}"),
        )
        .with_extensions(json!({ "diagnostics": checked.diagnostics })));
    };
    if checked_pact.agent() != id {
        return Err(ApiError::unprocessable(
            "pact-agent-mismatch",
            format!(
                "the pact is for agent `{}`, not `{id}`",
                checked_pact.agent()
            ),
        ));
    }
    let version = checked_pact.version();
    let digest = checked_pact.digest().to_string();
    let _admin = app.admin_lock().await;
    if let Some(existing) = agent_pacts(app, id)?
        .into_iter()
        .find(|row| row.version == version)
    {
        if existing.digest == digest {
            let active = active_version(app, id)?;
            return Ok(json_response(
                StatusCode::OK,
                pact_summary_json(&existing, active),
            ));
        }
        return Err(ApiError::conflict(
            "pact-version-exists",
            format!("version {version} of `{id}` exists with digest {}; versions are immutable, upload it with a new version number", existing.digest),
        ));
    }
    let now = app.now_ms();
    let record = make_record(
        "pact",
        id,
        now,
        json!({ "pact": { "id": checked_pact.id(), "version": version, "digest": digest }, "by": caller.who() }),
    )?;
    let record_idx = app.append_one(record).await?;
    let row = PactRow {
        agent: id.to_string(),
        version,
        digest,
        source: source.to_string(),
        uploaded_ms: now,
        record_idx,
    };
    app.registry().insert_pact(&row)?;
    let warnings: Vec<&pact::Diagnostic> = checked.diagnostics.iter().collect();
    let mut body = pact_summary_json(&row, active_version(app, id)?);
    body["diagnostics"] = json!(warnings);
    Ok(json_response(StatusCode::CREATED, body))
}

async fn activate(
    app: &AppState,
    caller: &Caller,
    id: &str,
    version: &str,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let slot = app.agent(id)?;
    let row = find_pact(app, id, version)?;
    let guard = guard_from_source(&row.source).map_err(ApiError::internal)?;
    let _admin = app.admin_lock().await;
    let now = app.now_ms();
    let record = make_record(
        "pact_activated",
        id,
        now,
        json!({
            "pact": { "version": row.version, "digest": row.digest },
            "by": caller.who(),
            "refs": [{ "rel": "pact", "index": row.record_idx }],
        }),
    )?;
    let record_idx = app.append_one(record).await?;
    let active = ActiveRow {
        version: row.version,
        record_idx,
    };
    app.registry().set_active(id, &active)?;
    {
        let mut runtime = lock_runtime(&slot);
        runtime.guard = Some(Arc::new(guard));
        runtime.active = Some(active);
        runtime.pact_record_idx = row.record_idx;
        runtime.state.reset_pact_state();
    }
    let mut body = pact_summary_json(&row, Some(row.version));
    body["record"] = json!(record_idx);
    body["pact_record"] = json!(row.record_idx);
    Ok(json_response(StatusCode::OK, body))
}

async fn control(
    app: &AppState,
    caller: &Caller,
    id: &str,
    kind: &'static str,
    body: ControlBody,
) -> Result<Response, ApiError> {
    let limit = app.limits().text_bytes_max;
    if body.reason.trim().is_empty() || body.reason.len() > limit {
        return Err(ApiError::unprocessable(
            "invalid-reason",
            format!("`reason` must be 1 to {limit} bytes: say why"),
        ));
    }
    let needs_category = matches!(kind, "restrict" | "unrestrict");
    let category = match (&body.category, needs_category) {
        (Some(category), true) => {
            check_label("category", &body.category)?;
            Some(category.clone())
        }
        (None, true) => {
            return Err(ApiError::unprocessable(
                "missing-category",
                format!("`{kind}` needs the action `category`"),
            ))
        }
        (Some(_), false) => {
            return Err(ApiError::unprocessable(
                "invalid-field",
                format!("`{kind}` takes no `category`"),
            ))
        }
        (None, false) => None,
    };
    if kind == "resume" {
        refuse_resume_past_an_incident(app, id).await?;
    }
    if let ("unrestrict", Some(category)) = (kind, &category) {
        refuse_unrestrict_past_an_incident(app, id, category).await?;
    }
    let (status_after, record_idx) = apply_control(
        app,
        id,
        kind,
        category,
        caller.who(),
        body.reason,
        Value::Null,
    )
    .await?;
    if kind == "halt" {
        // A halt opens an incident (or joins the one already open).
        crate::incidents::open_automatically(
            app,
            id,
            incident::records::Trigger::Halt,
            record_idx,
            &[],
        )
        .await?;
    }
    Ok(json_response(
        StatusCode::OK,
        json!({ "agent": id, "status": status_after, "record": record_idx }),
    ))
}

/// A person may resume an agent they halted themselves; an agent halted because evidence tripped
/// a signal comes back only through its incident's recovery gate.
async fn refuse_resume_past_an_incident(app: &AppState, id: &str) -> Result<(), ApiError> {
    let gated = crate::incidents::gated_incident(app, id).await?;
    match gated {
        Some(label) => Err(ApiError::conflict(
            "incident-open",
            format!("{label} is unresolved and was opened by a signal: resume through `pactum incident resume {label}` once its re-entry criteria are met"),
        )),
        None => Ok(()),
    }
}

/// Lifting the restriction that contains an incident opened by evidence is a resume by another
/// name: it goes through the incident's recovery gate too, or a scope-creep incident (contained
/// by restricting its category, not by a halt) could be undone by hand with no fresh evidence.
async fn refuse_unrestrict_past_an_incident(
    app: &AppState,
    id: &str,
    category: &str,
) -> Result<(), ApiError> {
    let gated = crate::incidents::gated_category_incident(app, id, category).await?;
    match gated {
        Some(label) => Err(ApiError::conflict(
            "incident-open",
            format!("{label} is unresolved, was opened by a signal and is contained by restricting `{category}`: lift it through `pactum incident resume {label}` once its re-entry criteria are met"),
        )),
        None => Ok(()),
    }
}

/// Halts, resumes, restricts or lifts a restriction on an agent, then records it (`kind` is
/// the record kind). The change is in force before the record is written: a decision that
/// starts after this returns sees it. `extra` adds members to the record (a response's
/// `signal` and `refs`, say). Returns the agent's status after the change and the record index.
pub(crate) async fn apply_control(
    app: &AppState,
    id: &str,
    kind: &'static str,
    category: Option<String>,
    who: String,
    reason: String,
    extra: Value,
) -> Result<(&'static str, u64), ApiError> {
    let slot = app.agent(id)?;
    let now = app.now_ms();
    let status_after = {
        let mut runtime = lock_runtime(&slot);
        match (kind, &category) {
            ("halt", _) => runtime.state.set_halt(Halt {
                by: who.clone(),
                reason: reason.clone(),
                at_ms: now,
            }),
            ("resume", _) => runtime.state.resume(),
            ("restrict", Some(category)) => runtime.state.restrict(category),
            ("unrestrict", Some(category)) => runtime.state.unrestrict(category),
            _ => return Err(ApiError::internal(format!("unexpected control `{kind}`"))),
        }
        app.persist_controls(id, &runtime.state)?;
        status(&runtime)
    };
    let mut members = json!({ "by": who, "reason": reason });
    if let Some(category) = &category {
        members["category"] = json!(category);
    }
    if let (Some(members), Value::Object(extra)) = (members.as_object_mut(), extra) {
        members.extend(extra);
    }
    let record_idx = app.append_one(make_record(kind, id, now, members)?).await?;
    Ok((status_after, record_idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_paths_split_from_the_end() {
        let cases = [
            ("acme/support-bot", "acme/support-bot", "agent"),
            ("acme/support-bot/halt", "acme/support-bot", "halt"),
            ("bot/pacts", "bot", "pacts"),
            ("acme/bot/pacts/3", "acme/bot", "pact 3"),
            ("acme/bot/pacts/3/activate", "acme/bot", "activate 3"),
            ("acme/bot/tools", "acme/bot", "tools"),
            (
                "acme/bot/tools/read_file/accept",
                "acme/bot",
                "accept read_file",
            ),
            ("acme/bot/shadow", "acme/bot", "shadow"),
        ];
        for (path, want_id, want_sub) in cases {
            let (id, sub) = split_agent_path(path);
            let sub = match sub {
                Sub::Agent => "agent".to_string(),
                Sub::Pacts => "pacts".to_string(),
                Sub::Pact(reference) => format!("pact {reference}"),
                Sub::Activate(version) => format!("activate {version}"),
                Sub::Control(kind) => kind.to_string(),
                Sub::Signals => "signals".to_string(),
                Sub::Tools => "tools".to_string(),
                Sub::AcceptTool(name) => format!("accept {name}"),
                Sub::Shadow => "shadow".to_string(),
            };
            assert_eq!((id, sub.as_str()), (want_id, want_sub), "{path}");
        }
    }

    #[test]
    fn agent_ids_are_checked() {
        assert!(validate_agent_id("acme/support-bot").is_ok());
        for bad in ["", "a//b", "a/pacts", "a b", "../x", "a/b/c/d/e"] {
            assert!(validate_agent_id(bad).is_err(), "{bad:?}");
        }
    }
}
