//! `/v1/tokens` (admin): create, list and revoke API tokens. The secret is returned once, at
//! creation; only its SHA-256 is stored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::agents::LABEL_BYTES_MAX;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;
use crate::registry::TokenRow;
use crate::wire::format_time_ms;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    role: String,
    #[serde(default)]
    agent: Option<String>,
}

/// Checks a role and its agent binding: agent tokens need exactly one agent, others none.
pub fn check_token_spec(role: &str, agent: Option<&str>) -> Result<Role, String> {
    let role = Role::parse(role)
        .ok_or_else(|| format!("role `{role}` is not one of admin, operator, agent, auditor"))?;
    match (role, agent) {
        (Role::Agent, None) => Err("an agent token needs the `agent` it is bound to".to_string()),
        (Role::Agent, Some(_)) => Ok(role),
        (_, Some(_)) => Err(format!("a `{role}` token is not bound to an agent")),
        (_, None) => Ok(role),
    }
}

/// A token row as JSON (no secret, no hash).
pub fn token_json(row: &TokenRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "agent": row.agent,
        "created": format_time_ms(row.created_ms),
        "revoked": row.revoked_ms.map(format_time_ms),
    })
}

/// `POST /v1/tokens`.
pub(crate) async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    if body.name.is_empty() || body.name.len() > LABEL_BYTES_MAX {
        return Err(ApiError::unprocessable(
            "invalid-field",
            "`name` must be 1 to 256 bytes",
        ));
    }
    let role = check_token_spec(&body.role, body.agent.as_deref())
        .map_err(|detail| ApiError::unprocessable("invalid-role", detail))?;
    if let Some(agent) = &body.agent {
        app.agent(agent)?;
    }
    let (secret, row) = app.registry().create_token(
        &body.name,
        role.as_str(),
        body.agent.as_deref(),
        app.now_ms(),
    )?;
    let mut value = token_json(&row);
    value["token"] = json!(secret);
    Ok(json_response(StatusCode::CREATED, value))
}

/// `GET /v1/tokens/self`: who the caller's token is (any role): for a program given a token
/// to check its role and agent before it relies on it (the MCP gateway's HTTP listener).
pub(crate) async fn whoami(caller: Caller) -> Result<Response, ApiError> {
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": caller.token_id,
            "name": caller.name,
            "role": caller.role.as_str(),
            "agent": caller.agent,
        }),
    ))
}

/// `GET /v1/tokens`.
pub(crate) async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let tokens: Vec<Value> = app.registry().tokens()?.iter().map(token_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "tokens": tokens })))
}

/// `DELETE /v1/tokens/{id}`: revoke.
pub(crate) async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    if !app.registry().revoke_token(&id, app.now_ms())? {
        return Err(ApiError::not_found(
            "unknown-token",
            format!("no live token `{id}`"),
        ));
    }
    app.forget_cached_tokens();
    Ok(json_response(
        StatusCode::OK,
        json!({ "id": id, "revoked": true }),
    ))
}
