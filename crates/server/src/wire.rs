//! The JSON wire forms of requests and verdicts: a promise to callers, kept apart from the
//! guard's domain types so either can change without silently changing the other. The CLI's
//! offline `decide` uses the same forms, so a request file works offline and over HTTP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guard::{Content, ContentSource, Finding, FindingKind, Principal, Request, Verdict};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most content items in one request.
pub const CONTENT_ITEMS_MAX: usize = 64;
/// Longest session id, in bytes.
pub const SESSION_BYTES_MAX: usize = 256;

/// What is wrong with a request or a time on the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The JSON does not have the request's shape.
    #[error("malformed request at `{path}`: {message}")]
    Shape {
        /// Where, as a serde path (`args.amount`).
        path: String,
        /// What serde said.
        message: String,
    },
    /// The session id is too long.
    #[error("session id is {session_bytes} bytes; the limit is {SESSION_BYTES_MAX}")]
    SessionTooLong {
        /// Its length.
        session_bytes: usize,
    },
    /// Too many content items.
    #[error("request has {n_items} content items; the limit is {CONTENT_ITEMS_MAX}")]
    TooManyContentItems {
        /// How many were sent.
        n_items: usize,
    },
    /// A content item's source is not one of the four known ones.
    #[error("content[{idx}].source is `{source_name}`; use user, tool, document or output")]
    ContentSource {
        /// The item's position.
        idx: usize,
        /// What was sent.
        source_name: String,
    },
    /// A time that is not RFC 3339.
    #[error("`{0}` is not an RFC 3339 time such as 2026-01-01T00:00:00Z")]
    Time(String),
}

/// A request as callers send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestWire {
    /// The agent asking; must be the pact's agent when given.
    #[serde(default)]
    pub agent: Option<String>,
    /// The action (tool) the agent wants to call.
    pub action: String,
    /// The call's arguments.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The session; `default` when absent.
    #[serde(default)]
    pub session: Option<String>,
    /// On whose behalf.
    #[serde(default)]
    pub principal: Option<PrincipalWire>,
    /// Content passed along, scanned by detectors.
    #[serde(default)]
    pub content: Vec<ContentWire>,
}

/// The principal of a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalWire {
    /// The asserted id.
    #[serde(default)]
    pub id: Option<String>,
    /// A signed authority token (JWT).
    #[serde(default)]
    pub token: Option<String>,
}

/// One content item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentWire {
    /// `user`, `tool`, `document` or `output`.
    pub source: String,
    /// The text.
    pub text: String,
}

impl RequestWire {
    /// Parses a request from a JSON value, saying what is wrong and where.
    pub fn from_value(value: &Value) -> Result<RequestWire, WireError> {
        serde_path_to_error::deserialize(value).map_err(|err| WireError::Shape {
            path: err.path().to_string(),
            message: err.into_inner().to_string(),
        })
    }

    /// The guard's request.
    pub fn into_request(self) -> Result<Request, WireError> {
        let session = self.session.unwrap_or_else(|| "default".to_string());
        if session.len() > SESSION_BYTES_MAX {
            return Err(WireError::SessionTooLong {
                session_bytes: session.len(),
            });
        }
        if self.content.len() > CONTENT_ITEMS_MAX {
            return Err(WireError::TooManyContentItems {
                n_items: self.content.len(),
            });
        }
        let mut content = Vec::with_capacity(self.content.len());
        for (idx, item) in self.content.into_iter().enumerate() {
            let source = match item.source.as_str() {
                "user" => ContentSource::User,
                "tool" => ContentSource::Tool,
                "document" => ContentSource::Document,
                "output" => ContentSource::Output,
                other => {
                    return Err(WireError::ContentSource {
                        idx,
                        source_name: other.to_string(),
                    })
                }
            };
            content.push(Content {
                source,
                text: item.text,
            });
        }
        let principal = self
            .principal
            .map(|principal| Principal {
                id: principal.id,
                token: principal.token,
            })
            .unwrap_or_default();
        Ok(Request {
            agent: self.agent,
            action: self.action,
            args: self.args,
            session,
            principal,
            content,
        })
    }
}

/// RFC 3339 text -> unix milliseconds.
pub fn parse_time_ms(text: &str) -> Result<u64, WireError> {
    let time =
        humantime::parse_rfc3339_weak(text).map_err(|_| WireError::Time(text.to_string()))?;
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| WireError::Time(text.to_string()))?;
    Ok(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Unix milliseconds -> RFC 3339 text.
pub fn format_time_ms(at_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at_ms)).to_string()
}

/// The current time in unix milliseconds: read here, at the edge, never in the guard.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A verdict as callers receive it. The top-level `decision` is what an agent runtime acts on.
pub fn verdict_json(verdict: &Verdict) -> Value {
    let findings = findings_json(&verdict.findings);
    json!({
        "decision": verdict.decision.as_str(),
        "rules": verdict.rules,
        "findings": findings,
        "counters": verdict.counters,
        "action": verdict.action,
        "session": verdict.session,
        "pact": {
            "id": verdict.pact_id,
            "version": verdict.pact_version,
            "digest": verdict.pact_digest,
        },
        "at": format_time_ms(verdict.at_ms),
    })
}

/// Findings as callers receive them: `kind` and `message`, and per kind its details (a
/// canary's `arg`, `canary_idx` and `encoding`; a content finding's `content_idx` and
/// `score_milli`, the detector's confidence in thousandths; a bulk operation's counts).
pub fn findings_json(findings: &[Finding]) -> Vec<Value> {
    findings
        .iter()
        .map(|finding| {
            let mut item = json!({ "kind": finding.kind.name(), "message": finding.message });
            match &finding.kind {
                FindingKind::Canary {
                    arg,
                    token_idx,
                    encoding,
                } => {
                    item["arg"] = json!(arg);
                    item["canary_idx"] = json!(token_idx);
                    item["encoding"] = json!(encoding.as_str());
                }
                FindingKind::Content {
                    content_idx,
                    score_milli,
                    ..
                } => {
                    item["content_idx"] = json!(content_idx);
                    item["score_milli"] = json!(score_milli);
                }
                FindingKind::Bulk {
                    records,
                    review_above,
                } => {
                    item["records"] = json!(records);
                    item["review_above"] = json!(review_above);
                }
                _ => {}
            }
            item
        })
        .collect()
}
