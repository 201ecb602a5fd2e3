//! The evidence endpoints (`/v1/log/...`), the public oracle (`/v1/oracle/{agent}`) and the
//! health probes.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ledger::bundle::Selection;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::agents::status;
use crate::app::{lock_info, lock_runtime, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;

/// Roles that may read records and proofs.
pub const EVIDENCE_ROLES: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];
/// Roles that may export bundles.
pub const EXPORT_ROLES: &[Role] = &[Role::Admin, Role::Auditor];

fn checkpoint_json(app: &AppState) -> Result<Value, ApiError> {
    let checkpoint = app.log().latest_checkpoint()?;
    Ok(match checkpoint {
        Some(checkpoint) => json!({
            "size": checkpoint.size,
            "checkpoint": checkpoint.note,
            "verifier_key": app.log().verifier_key().to_text(),
        }),
        None => json!({
            "size": 0,
            "checkpoint": Value::Null,
            "verifier_key": app.log().verifier_key().to_text(),
        }),
    })
}

/// `GET /v1/log/checkpoint`: the latest signed checkpoint and the verifier key (any role).
pub(crate) async fn checkpoint(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(&Role::ALL)?;
    Ok(json_response(StatusCode::OK, checkpoint_json(&app)?))
}

fn parse_index(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request("invalid-index", format!("`{text}` is not a record index"))
    })
}

/// `GET /v1/log/records/{idx}`: one record as JSON, with its canonical text.
pub(crate) async fn record(
    State(app): State<AppState>,
    caller: Caller,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(EVIDENCE_ROLES)?;
    let index = parse_index(&index)?;
    let bytes = app.log().get(index)?;
    let text = String::from_utf8(bytes).map_err(ApiError::internal)?;
    let value: Value = serde_json::from_str(&text).map_err(ApiError::internal)?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "index": index, "record": value, "canonical": text }),
    ))
}

/// `GET /v1/log/records/{idx}/proof`: a C2SP `tlog-proof` (text) against the latest checkpoint.
pub(crate) async fn proof(
    State(app): State<AppState>,
    caller: Caller,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(EVIDENCE_ROLES)?;
    let index = parse_index(&index)?;
    let proof = app.log().tlog_proof(index)?;
    let mut response = (StatusCode::OK, proof.to_text()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// `GET /v1/log/consistency?old=&new=`: an RFC 6962 consistency proof, base64 hashes.
pub(crate) async fn consistency(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(EVIDENCE_ROLES)?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid-query",
            format!("expected `?old=N&new=M`: {}", rejection.body_text()),
        )
    })?;
    if query.old > query.new {
        return Err(ApiError::bad_request(
            "bad-range",
            "`old` must not be larger than `new`",
        ));
    }
    let hashes = app.log().consistency_proof(query.old, query.new)?;
    let proof: Vec<String> = hashes.iter().map(|hash| BASE64.encode(hash)).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "old": query.old, "new": query.new, "proof": proof }),
    ))
}

/// `POST /v1/log/bundle`: an offline-verifiable bundle. Body: `{"agent": ID}` or
/// `{"range": {"from": N, "to": M}}`.
pub(crate) async fn bundle(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Response, ApiError> {
    caller.require(EXPORT_ROLES)?;
    if let Selection::Agent(agent) = &selection {
        app.agent(agent)?;
    }
    let bundle = app.log().export_bundle(selection)?;
    let mut response = (StatusCode::OK, bundle.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn action_list(names: Vec<&str>) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One sentence per rule and obligation of a pact, for people.
pub fn pact_summary(doc: &pact::syntax::PactDoc) -> Value {
    let rules: Vec<Value> =
        doc.rules
            .iter()
            .map(|rule| {
                let (effect, actions) = match (&rule.permit, &rule.forbid) {
                    (Some(actions), _) => ("permits", action_list(actions.names())),
                    (None, Some(actions)) => ("forbids", action_list(actions.names())),
                    (None, None) => ("applies to", String::new()),
                };
                let mut sentence = format!("{}: {effect} {actions}", rule.id);
                if let Some(when) = &rule.when {
                    sentence.push_str(&format!(" when {when}"));
                }
                if let Some(unless) = &rule.unless {
                    sentence.push_str(&format!(" unless {unless}"));
                }
                if rule.require_approval {
                    sentence.push_str("; needs a person's approval");
                }
                if let Some(authority) = &rule.require_authority {
                    match &authority.role {
                        Some(role) => sentence
                            .push_str(&format!("; needs verified authority with role `{role}`")),
                        None => sentence.push_str("; needs verified authority"),
                    }
                }
                if let Some(review_when) = &rule.review_when {
                    sentence.push_str(&format!("; reviewed when {review_when}"));
                }
                if let Some(reason) = &rule.reason {
                    sentence.push_str(&format!(" ({reason})"));
                }
                json!({ "id": rule.id, "summary": sentence })
            })
            .collect();
    let obligations: Vec<Value> = doc
        .obligations
        .iter()
        .map(|obligation| {
            json!({
                "id": obligation.id,
                "summary": format!(
                    "{}: {} meets {} over {} (at least {} samples, measured within {})",
                    obligation.id,
                    obligation.metric,
                    serde_json::to_string(&obligation.threshold).unwrap_or_default(),
                    obligation.window,
                    obligation.min_samples,
                    obligation.freshness,
                ),
            })
        })
        .collect();
    json!({ "rules": rules, "obligations": obligations })
}

/// `GET /v1/oracle/{agent}`: public, no token. What a counterparty may check about an agent.
pub(crate) async fn oracle(
    State(app): State<AppState>,
    Path(agent): Path<String>,
    extensions: axum::http::Extensions,
) -> Result<Response, ApiError> {
    // The client address comes from the connection (`serve` records it); behind a proxy every
    // client shares the proxy's address and so its bucket.
    let client = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    app.check_oracle_rate(client)?;
    let agent = agent.trim_matches('/').to_string();
    let slot = app.agent(&agent)?;
    let info = lock_info(&slot).clone();
    let (pact, status_text, n_decisions, n_denials) = {
        let runtime = lock_runtime(&slot);
        let pact = match (&runtime.guard, &runtime.active) {
            (Some(guard), Some(active)) => {
                let mut pact = json!({
                    "id": guard.pact().id(),
                    "version": active.version,
                    "digest": guard.pact().digest(),
                    "record": runtime.pact_record_idx,
                    "activation_record": active.record_idx,
                });
                pact["summary"] = pact_summary(guard.pact().doc());
                pact
            }
            _ => Value::Null,
        };
        (
            pact,
            status(&runtime),
            runtime.n_decisions,
            runtime.n_denials,
        )
    };
    let score = app.oracle_score(&agent).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "agent": info.id,
            "owner": info.owner,
            "class": info.class,
            "tier": info.tier,
            "status": status_text,
            "pact": pact,
            "counts": { "decisions": n_decisions, "denials": n_denials },
            "score": *score,
            "log": checkpoint_json(&app)?,
        }),
    ))
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({ "status": "ok" }))
}

/// `GET /readyz`: the log answers and the server is not shutting down.
pub(crate) async fn readyz(State(app): State<AppState>) -> Result<Response, ApiError> {
    if !app.is_ready() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the server is shutting down",
        ));
    }
    let size = app.log().size()?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "status": "ready", "log_size": size }),
    ))
}
