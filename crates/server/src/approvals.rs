//! `/v1/approvals`: calls the guard sent to `review`, waiting for a person. An operator approves
//! or rejects each one; the decision is an `approval` record referencing the verdict, with the
//! approver named.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{make_record, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, parse_json, read_body};
use crate::problem::ApiError;
use crate::registry::ApprovalRow;
use crate::wire::format_time_ms;

/// Most approvals one listing returns.
pub const APPROVALS_LISTED_MAX: usize = 1000;
/// Roles that may approve or reject.
pub const APPROVER_ROLES: &[Role] = &[Role::Admin, Role::Operator];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    agent: Option<String>,
    /// `pending` (default), `approved`, `rejected` or `all`.
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettleBody {
    #[serde(default)]
    reason: Option<String>,
}

fn approval_json(row: &ApprovalRow) -> Value {
    json!({
        "verdict": row.verdict_idx,
        "agent": row.agent,
        "action": row.action,
        "session": row.session,
        "created": format_time_ms(row.created_ms),
        "status": row.status,
        "decided_by": row.decided_by,
        "reason": row.reason,
        "decided": row.decided_ms.map(format_time_ms),
        "record": row.record_idx,
    })
}

/// `GET /v1/approvals?agent=&status=`.
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::bad_request("invalid-query", rejection.body_text()))?;
    let agent = query.agent.or_else(|| caller.agent.clone());
    match &agent {
        Some(agent) => caller.require_for_agent(&Role::ALL, agent)?,
        None => caller.require(&[Role::Admin, Role::Operator, Role::Auditor])?,
    }
    let status = match query.status.as_deref() {
        None | Some("pending") => Some("pending"),
        Some("all") => None,
        Some(status @ ("approved" | "rejected")) => Some(status),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("status `{other}` is not one of pending, approved, rejected, all"),
            ))
        }
    };
    let rows = app
        .registry()
        .approvals(agent.as_deref(), status, APPROVALS_LISTED_MAX)?;
    let approvals: Vec<Value> = rows.iter().map(approval_json).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "approvals": approvals }),
    ))
}

/// `GET /v1/approvals/{verdict}`: one approval's state (`pending`, `approved` or `rejected`;
/// approvals do not expire), for whoever may list the agent's approvals: a gateway holding a
/// reviewed call polls it with the agent's token.
pub(crate) async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(verdict): Path<String>,
) -> Result<Response, ApiError> {
    let verdict_idx: u64 = verdict.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid-index",
            format!("`{verdict}` is not a record index"),
        )
    })?;
    let row = app.registry().approval(verdict_idx)?;
    let Some(row) = row else {
        caller.require(&Role::ALL)?;
        return Err(ApiError::not_found(
            "unknown-approval",
            format!("record {verdict_idx} is not a call waiting for review"),
        ));
    };
    caller.require_for_agent(&Role::ALL, &row.agent)?;
    Ok(json_response(StatusCode::OK, approval_json(&row)))
}

/// `POST /v1/approvals/{verdict}/approve` and `/reject`.
pub(crate) async fn settle(
    State(app): State<AppState>,
    caller: Caller,
    Path((verdict, action)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require(APPROVER_ROLES)?;
    let status = match action.as_str() {
        "approve" => "approved",
        "reject" => "rejected",
        other => {
            return Err(ApiError::not_found(
                "no-such-route",
                format!("`{other}` is neither approve nor reject"),
            ))
        }
    };
    let verdict_idx: u64 = verdict.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid-index",
            format!("`{verdict}` is not a record index"),
        )
    })?;
    let bytes = read_body(request, &app).await?;
    let body: SettleBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        SettleBody::default()
    } else {
        parse_json(&bytes)?
    };
    let reason = body.reason;
    let limit = app.limits().text_bytes_max;
    if reason.as_ref().is_some_and(|reason| reason.len() > limit) {
        return Err(ApiError::unprocessable(
            "invalid-reason",
            format!("`reason` is over {limit} bytes"),
        ));
    }
    let _admin = app.admin_lock().await;
    let pending = app.registry().approval(verdict_idx)?.ok_or_else(|| {
        ApiError::not_found(
            "unknown-approval",
            format!("record {verdict_idx} is not a call waiting for review"),
        )
    })?;
    if pending.status != "pending" {
        return Err(ApiError::conflict(
            "already-settled",
            format!(
                "record {verdict_idx} was already {} by {}",
                pending.status,
                pending.decided_by.unwrap_or_default()
            ),
        ));
    }
    let now = app.now_ms();
    let who = caller.who();
    let record = make_record(
        "approval",
        &pending.agent,
        now,
        json!({
            "decision": status,
            "by": who,
            "reason": reason,
            "refs": [{ "rel": "verdict", "index": verdict_idx }],
        }),
    )?;
    let record_idx = app.append_one(record).await?;
    let settled = ApprovalRow {
        status: status.to_string(),
        decided_by: Some(who),
        reason,
        decided_ms: Some(now),
        record_idx: Some(record_idx),
        ..pending
    };
    app.registry().settle_approval(&settled)?;
    Ok(json_response(StatusCode::OK, approval_json(&settled)))
}
