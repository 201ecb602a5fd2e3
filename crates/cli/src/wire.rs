//! The JSON wire forms of requests and verdicts: a promise to callers, kept apart from the
//! guard's domain types so either can change without silently changing the other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use guard::{Content, ContentSource, FindingKind, Principal, Request, Verdict};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Most content items in one request.
pub const CONTENT_ITEMS_MAX: usize = 64;
/// Longest session id, in bytes.
pub const SESSION_BYTES_MAX: usize = 256;

/// A request as callers send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestWire {
    /// The agent asking; must be the pact's agent when given.
    #[serde(default)]
    pub agent: Option<String>,
    pub action: String,
    #[serde(default)]
    pub args: Map<String, Value>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub principal: Option<PrincipalWire>,
    #[serde(default)]
    pub content: Vec<ContentWire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalWire {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentWire {
    pub source: String,
    pub text: String,
}

impl RequestWire {
    /// Parses a request from a JSON value, saying what is wrong and where.
    pub fn from_value(value: &Value) -> anyhow::Result<RequestWire> {
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            anyhow::anyhow!("malformed request at `{path}`: {}", err.into_inner())
        })
    }

    /// The guard's request.
    pub fn into_request(self) -> anyhow::Result<Request> {
        let session = self.session.unwrap_or_else(|| "default".to_string());
        if session.len() > SESSION_BYTES_MAX {
            bail!(
                "session id is {} bytes; the limit is {SESSION_BYTES_MAX}",
                session.len()
            );
        }
        if self.content.len() > CONTENT_ITEMS_MAX {
            bail!(
                "request has {} content items; the limit is {CONTENT_ITEMS_MAX}",
                self.content.len()
            );
        }
        let mut content = Vec::with_capacity(self.content.len());
        for (idx, item) in self.content.into_iter().enumerate() {
            let source = match item.source.as_str() {
                "user" => ContentSource::User,
                "tool" => ContentSource::Tool,
                "document" => ContentSource::Document,
                "output" => ContentSource::Output,
                other => {
                    bail!("content[{idx}].source is `{other}`; use user, tool, document or output")
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
pub fn parse_time_ms(text: &str) -> anyhow::Result<u64> {
    let time = humantime::parse_rfc3339_weak(text).with_context(|| {
        format!("`{text}` is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
    })?;
    let since = time
        .duration_since(UNIX_EPOCH)
        .with_context(|| format!("`{text}` is before 1970"))?;
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
    let findings: Vec<Value> = verdict
        .findings
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
        .collect();
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
