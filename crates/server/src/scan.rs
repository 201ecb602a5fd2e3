//! Scanning what came back to an agent: a tool's result (`POST /v1/outcomes` with `result`),
//! a resource read or a tool's description (`POST /v1/scans`), as content of source `tool`
//! against the agent's session, with the one detector `decide` uses ([`guard::scan_result`]).
//!
//! An injection taints the session before the record is written (failing safe: the session's
//! next elevated call goes to `review` even while this record is in flight). A canary is
//! answered like a canary in `decide`, as the immediate `canary_seen` signal, once the record
//! naming it is durable, unless the scan was only observed. Records keep the text's size,
//! digest and findings, never the text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::{lock_runtime, make_record, AgentSlot, AppState};
use crate::auth::{Caller, Role};
use crate::decide::Mode;
use crate::json::{json_response, ApiJson};
use crate::problem::ApiError;
use crate::wire::{findings_json, SESSION_BYTES_MAX};

/// Longest scanned text, in bytes (after JSON decoding).
pub const SCAN_TEXT_BYTES_MAX: usize = 1024 * 1024;
/// Largest body of `POST /v1/outcomes` and `POST /v1/scans`, in bytes: a text of
/// [`SCAN_TEXT_BYTES_MAX`] with room for JSON escapes.
pub const SCAN_BODY_BYTES_MAX: usize = 4 * SCAN_TEXT_BYTES_MAX;
/// Most findings kept in a record and an answer (the rest are counted in `n_findings`); a
/// record must stay under the log's record size.
pub const FINDINGS_RECORDED_MAX: usize = 32;
/// Longest `origin` of a scan, in bytes.
pub const ORIGIN_BYTES_MAX: usize = 2048;
/// What `POST /v1/scans` takes as `source`.
pub const SCAN_SOURCES: [&str; 3] = ["tool", "resource", "tool_description"];

/// Roles that may ask for scans (agent tokens: for their own agent).
pub const SCAN_ROLES: &[Role] = &[Role::Admin, Role::Agent];

/// A returned text as a gateway sends it: its size and digest as returned (of the whole
/// result, say) and the text content to scan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReturnedWire {
    /// Size of what was returned, in bytes.
    pub bytes: u64,
    /// `sha256:<64 hex>` of what was returned.
    pub sha256: String,
    /// Its text content, scanned and never recorded.
    pub text: String,
}

impl ReturnedWire {
    /// Refuses a digest that is not `sha256:<64 lowercase hex>` or a text over the limit.
    pub fn check(&self, at: &str) -> Result<(), ApiError> {
        let hex_ok = self.sha256.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        });
        if !hex_ok {
            return Err(ApiError::unprocessable(
                "invalid-digest",
                format!("`{at}sha256` must be `sha256:` and 64 lowercase hex digits"),
            ));
        }
        if self.text.len() > SCAN_TEXT_BYTES_MAX {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text-too-large",
                format!(
                    "`{at}text` is {} bytes; the limit is {SCAN_TEXT_BYTES_MAX} bytes",
                    self.text.len()
                ),
            ));
        }
        Ok(())
    }
}

/// What a scan found, in wire form.
pub(crate) struct Scanned {
    /// At most [`FINDINGS_RECORDED_MAX`].
    pub findings: Vec<Value>,
    pub n_findings: usize,
    pub injection: bool,
    pub canary: bool,
}

impl Scanned {
    /// The members a record keeps: size, digest and findings of the text, never the text.
    pub fn record_members(&self, returned: &ReturnedWire, text_bytes: usize) -> Value {
        json!({
            "bytes": returned.bytes,
            "sha256": returned.sha256,
            "text_bytes": text_bytes,
            "findings": self.findings,
            "n_findings": self.n_findings,
            "injection": self.injection,
            "canary": self.canary,
        })
    }
}

/// The active guard of an agent, or 409 `no-active-pact` (the detector and the canaries are
/// the pact's).
pub(crate) fn active_guard(slot: &AgentSlot, agent: &str) -> Result<Arc<guard::Guard>, ApiError> {
    lock_runtime(slot).guard.clone().ok_or_else(|| {
        ApiError::conflict(
            "no-active-pact",
            format!("agent `{agent}` has no active pact; upload and activate one"),
        )
    })
}

/// Scans `text` with the guard's detector and canaries, off the async threads. `session`
/// `Some` taints that session of the agent on an injection.
pub(crate) async fn scan_text(
    app: &AppState,
    slot: &AgentSlot,
    agent: &str,
    session: Option<&str>,
    text: String,
) -> Result<Scanned, ApiError> {
    let guard = active_guard(slot, agent)?;
    let now = app.now_ms();
    let scan = tokio::task::spawn_blocking(move || {
        // A scratch state: the taint is applied to the agent's own state below, under its
        // lock for only that long.
        let mut scratch = guard::State::new();
        guard::scan_result(&guard, "scan", &text, &mut scratch, now)
    })
    .await
    .map_err(|err| ApiError::internal(format!("scanning failed: {err}")))?;
    if let (true, Some(session)) = (scan.injection, session) {
        lock_runtime(slot)
            .state
            .taint_session(session, scan.reason.clone(), now);
    }
    let n_findings = scan.findings.len();
    let mut findings = findings_json(&scan.findings);
    findings.truncate(FINDINGS_RECORDED_MAX);
    Ok(Scanned {
        findings,
        n_findings,
        injection: scan.injection,
        canary: scan.canary,
    })
}

/// Once the record naming a scan is durable: a canary is answered as `decide` answers one
/// (the immediate `canary_seen` signal and the pact's response to it), unless observed.
pub(crate) async fn answer_canary(
    app: &AppState,
    agent: &str,
    record_idx: u64,
    ts_ms: u64,
    action: &str,
    scanned: &Scanned,
    mode: Mode,
) -> Result<(), ApiError> {
    if !scanned.canary || !mode.is_enforced() {
        return Ok(());
    }
    let verdict = json!({ "action": action, "findings": scanned.findings });
    crate::watch::after_verdict(app, agent, record_idx, ts_ms, &verdict).await?;
    Ok(())
}

/// The body of `POST /v1/scans`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanBody {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    session: Option<String>,
    source: String,
    /// Where the text came from: a resource URI, `upstream/tool`.
    origin: String,
    #[serde(default)]
    mode: Option<String>,
    bytes: u64,
    sha256: String,
    text: String,
}

/// `POST /v1/scans`: scans a text returned to the agent outside a call's outcome (a resource
/// read, a tool's description) and records a `content_scan`.
pub(crate) async fn scan(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ScanBody>,
) -> Result<Response, ApiError> {
    let agent = match (&body.agent, &caller.agent) {
        (Some(agent), _) | (None, Some(agent)) => agent.clone(),
        (None, None) => {
            return Err(ApiError::unprocessable(
                "missing-agent",
                "the scan must name its `agent`",
            ))
        }
    };
    caller.require_for_agent(SCAN_ROLES, &agent)?;
    if !SCAN_SOURCES.contains(&body.source.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid-source",
            format!(
                "source `{}` is not one of tool, resource, tool_description",
                body.source
            ),
        ));
    }
    if body.origin.is_empty() || body.origin.len() > ORIGIN_BYTES_MAX {
        return Err(ApiError::unprocessable(
            "invalid-field",
            format!(
                "`origin` must be 1 to {ORIGIN_BYTES_MAX} bytes (a resource URI, `upstream/tool`)"
            ),
        ));
    }
    let session = body.session.unwrap_or_else(|| "default".to_string());
    if session.is_empty() || session.len() > SESSION_BYTES_MAX {
        return Err(ApiError::unprocessable(
            "invalid-field",
            format!("`session` must be 1 to {SESSION_BYTES_MAX} bytes"),
        ));
    }
    let mode = match body.mode.as_deref() {
        None => Mode::Enforce,
        Some(text) => Mode::parse(text).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid-mode",
                format!("mode `{text}` is neither enforce nor observe"),
            )
        })?,
    };
    let mut returned = ReturnedWire {
        bytes: body.bytes,
        sha256: body.sha256,
        text: body.text,
    };
    returned.check("")?;
    let slot = app.agent(&agent)?;
    let text_bytes = returned.text.len();
    let text = std::mem::take(&mut returned.text);
    let scanned = scan_text(&app, &slot, &agent, Some(&session), text).await?;
    let mut members = json!({
        "session": session,
        "source": body.source,
        "origin": body.origin,
        "scan": scanned.record_members(&returned, text_bytes),
        "by": caller.who(),
    });
    if !mode.is_enforced() {
        members["enforced"] = json!(false);
    }
    let now = app.now_ms();
    let record_idx = app
        .append_one(make_record("content_scan", &agent, now, members)?)
        .await?;
    answer_canary(&app, &agent, record_idx, now, &body.origin, &scanned, mode).await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({
            "agent": agent,
            "record": record_idx,
            "findings": scanned.findings,
            "n_findings": scanned.n_findings,
            "injection": scanned.injection,
            "canary": scanned.canary,
        }),
    ))
}
