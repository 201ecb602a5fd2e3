//! Tool pinning: `POST|GET /v1/agents/{id}/tools` and `POST /v1/agents/{id}/tools/{name}/accept`.
//!
//! A gateway reports the MCP tools its upstreams offer; each is pinned per (agent, upstream,
//! name) by the digest of its canonical `{name, description, inputSchema}` (RFC 8785, then
//! SHA-256), the first time it is seen. A definition that differs from its pin is `changed`
//! and the pin keeps the old digest until an operator accepts the new one, so a tool cannot
//! rewrite its own description (a "rug pull") behind the agent's back. A description that
//! reads as an injection is `flagged`. Every change of a pin is a record first (`tool_pinned`,
//! `tool_flagged`, `tool_changed`, `tool_accepted`); the registry row changes only once it is
//! durable.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::agents::{CONTROL_ROLES, READ_ROLES};
use crate::app::{make_record, AppState};
use crate::auth::{Caller, Role};
use crate::json::{json_response, parse_json};
use crate::problem::ApiError;
use crate::registry::{ToolPinRow, ToolVersionRow};
use crate::wire::format_time_ms;

/// Most tools in one `POST /v1/agents/{id}/tools`.
pub const TOOLS_MAX: usize = 1000;
/// Largest definition of one tool (its canonical JSON), in bytes.
pub const DEFINITION_BYTES_MAX: usize = 64 * 1024;
/// Largest body of `POST /v1/agents/{id}/tools`, in bytes.
pub const TOOLS_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Longest tool or upstream name, in bytes.
pub const TOOL_NAME_BYTES_MAX: usize = 128;
/// Roles that may report an agent's tools (agent tokens: their own agent's).
pub const PIN_ROLES: &[Role] = &[Role::Admin, Role::Agent];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    tools: Vec<ToolWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolWire {
    name: String,
    upstream: String,
    /// The MCP Tool as the upstream listed it.
    definition: Value,
}

/// The body of an accept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptBody {
    #[serde(default)]
    upstream: Option<String>,
    digest: String,
    reason: String,
}

/// Tool and upstream names: 1 to 128 bytes of letters, digits, `_`, `-` and `.` (MCP's
/// recommended tool-name characters), so a name is one path segment.
fn check_name(what: &str, name: &str, at: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= TOOL_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid-tool",
            format!("{at}: {what} `{name}` must be 1 to {TOOL_NAME_BYTES_MAX} bytes of letters, digits, `_`, `-` and `.`"),
        ))
    }
}

/// `sha256:<hex>` of the canonical `{name, description, inputSchema}` of a definition, and
/// that canonical text's size. Members the definition lacks are left out.
pub fn tool_digest(name: &str, definition: &Value) -> Result<(String, usize), ApiError> {
    let mut pinned = Map::new();
    pinned.insert("name".to_string(), json!(name));
    for member in ["description", "inputSchema"] {
        if let Some(value) = definition.get(member) {
            pinned.insert(member.to_string(), value.clone());
        }
    }
    let canonical = ledger::jcs::canonicalize(&Value::Object(pinned)).map_err(|err| {
        ApiError::unprocessable(
            "invalid-tool",
            format!("tool `{name}`: the definition has no canonical form: {err}"),
        )
    })?;
    Ok((
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical))),
        canonical.len(),
    ))
}

/// One checked tool of a pin request.
struct Checked {
    name: String,
    upstream: String,
    definition: Value,
    definition_text: String,
    digest: String,
}

fn check_tools(body: PinBody) -> Result<Vec<Checked>, ApiError> {
    if body.tools.len() > TOOLS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-tools",
            format!(
                "{} tools; the limit is {TOOLS_MAX} per request",
                body.tools.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(body.tools.len());
    for (idx, tool) in body.tools.into_iter().enumerate() {
        let at = format!("tools[{idx}]");
        check_name("tool name", &tool.name, &at)?;
        check_name("upstream", &tool.upstream, &at)?;
        if !tool.definition.is_object() {
            return Err(ApiError::unprocessable(
                "invalid-tool",
                format!("{at}: `definition` must be the MCP Tool object"),
            ));
        }
        if let Some(description) = tool.definition.get("description") {
            if !description.is_string() && !description.is_null() {
                return Err(ApiError::unprocessable(
                    "invalid-tool",
                    format!("{at}: `definition.description` must be a string"),
                ));
            }
        }
        let definition_text = tool.definition.to_string();
        if definition_text.len() > DEFINITION_BYTES_MAX {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "definition-too-large",
                format!(
                    "{at}: the definition of `{}` is {} bytes; the limit is {DEFINITION_BYTES_MAX}",
                    tool.name,
                    definition_text.len()
                ),
            ));
        }
        if !seen.insert((tool.upstream.clone(), tool.name.clone())) {
            return Err(ApiError::unprocessable(
                "duplicate-tool",
                format!(
                    "{at}: tool `{}` of upstream `{}` is listed twice",
                    tool.name, tool.upstream
                ),
            ));
        }
        let (digest, _) = tool_digest(&tool.name, &tool.definition)?;
        checked.push(Checked {
            name: tool.name,
            upstream: tool.upstream,
            definition: tool.definition,
            definition_text,
            digest,
        });
    }
    Ok(checked)
}

/// What one reported tool does to its pin once its record (if any) is durable.
enum Change {
    /// Nothing to write.
    None,
    /// A new pin (`pinned` or `flagged`).
    New(ToolPinRow),
    /// A new definition waits to be accepted.
    Changed(ToolPinRow),
}

/// `POST /v1/agents/{id}/tools`.
pub(crate) async fn pin(
    app: &AppState,
    caller: &Caller,
    agent: &str,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require_for_agent(PIN_ROLES, agent)?;
    let slot = app.agent(agent)?;
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), TOOLS_BODY_BYTES_MAX)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!("the tools body is over {TOOLS_BODY_BYTES_MAX} bytes, or unreadable"),
            )
        })?;
    let tools = check_tools(parse_json(&bytes)?)?;
    crate::scan::active_guard(&slot, agent)?;
    let who = caller.who();
    // Serialises pin changes with each other (two gateways starting together).
    let _admin = app.admin_lock().await;
    let now = app.now_ms();
    let mut answers = Vec::with_capacity(tools.len());
    let mut records = Vec::new();
    let mut changes = Vec::new();
    for tool in &tools {
        let description = tool.definition["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let scanned = crate::scan::scan_text(app, &slot, agent, None, description).await?;
        let suspicious = scanned.injection || scanned.canary;
        let existing = app.registry().tool_pin(agent, &tool.upstream, &tool.name)?;
        let version = ToolVersionRow {
            digest: tool.digest.clone(),
            definition: tool.definition_text.clone(),
            findings: Value::from(scanned.findings.clone()).to_string(),
            first_seen_ms: now,
            record_idx: 0,
        };
        let mut answer = json!({
            "name": tool.name,
            "upstream": tool.upstream,
            "digest": tool.digest,
            "findings": scanned.findings,
        });
        let (status, pinned_digest, change, record) = match existing {
            None => {
                let (kind, status) = if suspicious {
                    ("tool_flagged", "flagged")
                } else {
                    ("tool_pinned", "pinned")
                };
                let mut members = json!({
                    "name": tool.name, "upstream": tool.upstream, "digest": tool.digest, "by": who,
                });
                if suspicious {
                    members["findings"] = json!(scanned.findings);
                }
                let pin = ToolPinRow {
                    agent: agent.to_string(),
                    upstream: tool.upstream.clone(),
                    name: tool.name.clone(),
                    digest: tool.digest.clone(),
                    definition: tool.definition_text.clone(),
                    status: status.to_string(),
                    pending_digest: None,
                    first_seen_ms: now,
                    record_idx: 0,
                };
                let record = make_record(kind, agent, now, members)?;
                (status, tool.digest.clone(), Change::New(pin), Some(record))
            }
            Some(pin) if pin.digest == tool.digest => {
                let status = if pin.status == "flagged" {
                    "flagged"
                } else {
                    "pinned"
                };
                (status, pin.digest, Change::None, None)
            }
            Some(pin) => {
                let known = pin.pending_digest.as_deref() == Some(tool.digest.as_str())
                    || app
                        .registry()
                        .tool_version(agent, &tool.upstream, &tool.name, &tool.digest)?
                        .is_some();
                if known {
                    ("changed", pin.digest, Change::None, None)
                } else {
                    let members = json!({
                        "name": tool.name, "upstream": tool.upstream, "digest": tool.digest,
                        "pinned_digest": pin.digest, "findings": scanned.findings, "by": who,
                    });
                    let record = make_record("tool_changed", agent, now, members)?;
                    let pinned_digest = pin.digest.clone();
                    let changed = ToolPinRow {
                        status: "changed".to_string(),
                        pending_digest: Some(tool.digest.clone()),
                        ..pin
                    };
                    (
                        "changed",
                        pinned_digest,
                        Change::Changed(changed),
                        Some(record),
                    )
                }
            }
        };
        answer["status"] = json!(status);
        answer["pinned_digest"] = json!(pinned_digest);
        if let Some(record) = record {
            records.push(record);
            changes.push((answers.len(), change, version));
        }
        answers.push(answer);
    }
    // Evidence first: one append for every record, then the rows.
    let indexes = app.append(records).await?;
    for ((answer_idx, change, mut version), record_idx) in changes.into_iter().zip(indexes) {
        version.record_idx = record_idx;
        let registry = app.registry();
        match change {
            Change::New(mut pin) | Change::Changed(mut pin) => {
                pin.record_idx = record_idx;
                registry.set_tool_pin(&pin)?;
                registry.insert_tool_version(
                    agent,
                    &pin.upstream,
                    &pin.name,
                    &version,
                    &pin.digest,
                )?;
            }
            Change::None => {}
        }
        if let Some(answer) = answers.get_mut(answer_idx) {
            answer["record"] = json!(record_idx);
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({ "agent": agent, "tools": answers }),
    ))
}

fn pin_json(pin: &ToolPinRow) -> Value {
    json!({
        "name": pin.name,
        "upstream": pin.upstream,
        "digest": pin.digest,
        "status": pin.status,
        "pending_digest": pin.pending_digest,
        "first_seen": format_time_ms(pin.first_seen_ms),
        "record": pin.record_idx,
    })
}

/// `GET /v1/agents/{id}/tools`.
pub(crate) fn list(app: &AppState, caller: &Caller, agent: &str) -> Result<Response, ApiError> {
    caller.require_for_agent(READ_ROLES, agent)?;
    app.agent(agent)?;
    let pins: Vec<Value> = app
        .registry()
        .tool_pins(agent)?
        .iter()
        .map(pin_json)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "agent": agent, "tools": pins }),
    ))
}

/// `POST /v1/agents/{id}/tools/{name}/accept`: the pin becomes `digest` (a definition seen for
/// this tool), status `pinned`, once the `tool_accepted` record is durable.
pub(crate) async fn accept(
    app: &AppState,
    caller: &Caller,
    agent: &str,
    name: &str,
    body: AcceptBody,
) -> Result<Response, ApiError> {
    caller.require(CONTROL_ROLES)?;
    app.agent(agent)?;
    let limit = app.limits().text_bytes_max;
    if body.reason.trim().is_empty() || body.reason.len() > limit {
        return Err(ApiError::unprocessable(
            "invalid-reason",
            format!("`reason` must be 1 to {limit} bytes: say why"),
        ));
    }
    let _admin = app.admin_lock().await;
    let pins: Vec<ToolPinRow> = app
        .registry()
        .tool_pins(agent)?
        .into_iter()
        .filter(|pin| pin.name == name)
        .filter(|pin| {
            body.upstream
                .as_ref()
                .is_none_or(|upstream| *upstream == pin.upstream)
        })
        .collect();
    let pin = match pins.as_slice() {
        [pin] => pin.clone(),
        [] => {
            return Err(ApiError::not_found(
                "unknown-tool",
                format!(
                    "agent `{agent}` has no pinned tool `{name}`{}",
                    match &body.upstream {
                        Some(upstream) => format!(" of upstream `{upstream}`"),
                        None => String::new(),
                    }
                ),
            ))
        }
        _ => {
            return Err(ApiError::unprocessable(
                "ambiguous-tool",
                format!("several upstreams offer `{name}`: name the `upstream`"),
            ))
        }
    };
    let version = app
        .registry()
        .tool_version(agent, &pin.upstream, &pin.name, &body.digest)?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown-digest",
                format!(
                    "`{}` is not a definition seen for tool `{name}` of upstream `{}`",
                    body.digest, pin.upstream
                ),
            )
        })?;
    if pin.digest == body.digest && pin.status == "pinned" {
        return Err(ApiError::conflict(
            "already-pinned",
            format!("tool `{name}` is already pinned at {}", body.digest),
        ));
    }
    let now = app.now_ms();
    let record = make_record(
        "tool_accepted",
        agent,
        now,
        json!({
            "name": pin.name,
            "upstream": pin.upstream,
            "digest": body.digest,
            "previous_digest": pin.digest,
            "reason": body.reason,
            "by": caller.who(),
            "refs": [{ "rel": "tool", "index": version.record_idx }],
        }),
    )?;
    let record_idx = app.append_one(record).await?;
    // A newer definition than the one accepted still waits.
    let still_pending = pin
        .pending_digest
        .clone()
        .filter(|pending| *pending != body.digest);
    let accepted = ToolPinRow {
        digest: body.digest,
        definition: version.definition,
        status: if still_pending.is_some() {
            "changed".to_string()
        } else {
            "pinned".to_string()
        },
        pending_digest: still_pending,
        record_idx,
        ..pin
    };
    app.registry().set_tool_pin(&accepted)?;
    Ok(json_response(StatusCode::OK, pin_json(&accepted)))
}
