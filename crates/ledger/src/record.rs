//! Records: the entries of the evidence log, validated and encoded canonically (RFC 8785).
//!
//! A record is a JSON object with at least:
//!
//! - `kind`: a lowercase name (`verdict`, `outcome`, `trial`, `signal`, `response`, `incident`,
//!   `pact`, `note`, or any other `[a-z][a-z0-9_]{0,31}`),
//! - `agent`: the agent id, a non-empty string of at most [`AGENT_BYTES_MAX`] bytes,
//! - `ts`: the time as an integer of unix milliseconds (UTC), `0..=2^53-1`,
//! - `refs` (optional): up to [`REFS_MAX`] references to earlier records, each an object with an
//!   optional `rel` string and exactly one of `index` (the referenced record's log index) or
//!   `digest` (`sha256:` and the 64 lowercase hex digits of its RFC 6962 leaf hash).
//!
//! An `outcome` must reference the verdict it completes with `{"rel": "verdict", "index": N}`
//! (or a `digest`) and carry a `status` string (`executed`, `failed`, ...).
//!
//! Any other members are kept as they are. The leaf data is the canonical encoding, at most
//! [`RECORD_BYTES_MAX`] bytes.

use crate::jcs::{self, CanonicalError};
use serde_json::Value;

/// Largest canonical record, in bytes (64 KiB). Larger records are refused, never truncated.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Longest agent id, in bytes.
pub const AGENT_BYTES_MAX: usize = 256;
/// Most references one record may carry.
pub const REFS_MAX: usize = 64;
/// Longest kind name, in bytes.
pub const KIND_BYTES_MAX: usize = 32;

/// Why a JSON value is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The JSON itself is unusable.
    #[error(transparent)]
    Json(#[from] CanonicalError),
    /// The top-level value is not an object.
    #[error("a record must be a json object")]
    NotObject,
    /// A required member is absent.
    #[error("missing member `{0}`")]
    Missing(&'static str),
    /// A member has the wrong type or shape.
    #[error("member `{name}` is invalid: {reason}")]
    Invalid {
        /// The member name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The canonical encoding is larger than [`RECORD_BYTES_MAX`].
    #[error("record is {record_bytes} bytes, over the limit of {RECORD_BYTES_MAX} bytes")]
    TooLarge {
        /// Size of the canonical encoding.
        record_bytes: usize,
    },
}

/// A reference from one record to an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    /// By log index.
    Index(u64),
    /// By leaf hash (SHA-256 of 0x00 || canonical bytes).
    Digest([u8; 32]),
}

/// A validated record and its canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    bytes: Vec<u8>,
    kind: String,
    agent: String,
    ts_ms: u64,
    refs: Vec<(Option<String>, RecordRef)>,
}

impl Record {
    /// Parses and validates one record from JSON text (duplicate names are refused).
    pub fn from_json_text(text: &str) -> Result<Self, RecordError> {
        Self::from_value(&jcs::parse_value(text)?)
    }

    /// Validates `value` and encodes it canonically.
    pub fn from_value(value: &Value) -> Result<Self, RecordError> {
        let object = value.as_object().ok_or(RecordError::NotObject)?;
        let kind = match object.get("kind") {
            None => return Err(RecordError::Missing("kind")),
            Some(Value::String(kind)) if valid_kind(kind) => kind.clone(),
            Some(_) => {
                return Err(RecordError::Invalid {
                    name: "kind",
                    reason: format!(
                        "expected a name matching `[a-z][a-z0-9_]{{0,{}}}`",
                        KIND_BYTES_MAX - 1
                    ),
                })
            }
        };
        let agent = match object.get("agent") {
            None => return Err(RecordError::Missing("agent")),
            Some(Value::String(agent)) if !agent.is_empty() && agent.len() <= AGENT_BYTES_MAX => {
                agent.clone()
            }
            Some(_) => {
                return Err(RecordError::Invalid {
                    name: "agent",
                    reason: format!("expected a string of 1 to {AGENT_BYTES_MAX} bytes"),
                })
            }
        };
        let ts_ms = match object.get("ts") {
            None => return Err(RecordError::Missing("ts")),
            Some(ts) => match ts.as_u64() {
                Some(ts_ms) if ts_ms <= jcs::JSON_INTEGER_MAX => ts_ms,
                _ => {
                    return Err(RecordError::Invalid {
                        name: "ts",
                        reason: "expected unix milliseconds as a non-negative integer".into(),
                    })
                }
            },
        };
        let refs = match object.get("refs") {
            None => Vec::new(),
            Some(refs) => parse_refs(refs)?,
        };
        if kind == "outcome" {
            let completes_verdict = refs
                .iter()
                .any(|(rel, _)| rel.as_deref() == Some("verdict"));
            if !completes_verdict {
                return Err(RecordError::Invalid {
                    name: "refs",
                    reason: "an outcome must reference its verdict with `rel`: `verdict`".into(),
                });
            }
            if !matches!(object.get("status"), Some(Value::String(_))) {
                return Err(RecordError::Missing("status"));
            }
        }
        let bytes = jcs::canonicalize(value)?;
        if bytes.len() > RECORD_BYTES_MAX {
            return Err(RecordError::TooLarge {
                record_bytes: bytes.len(),
            });
        }
        Ok(Self {
            bytes,
            kind,
            agent,
            ts_ms,
            refs,
        })
    }

    /// Parses canonical bytes back, checking that they are canonical.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let text = std::str::from_utf8(bytes).map_err(|_| RecordError::Invalid {
            name: "record",
            reason: "not utf-8".into(),
        })?;
        let record = Self::from_json_text(text)?;
        if record.bytes != bytes {
            return Err(RecordError::Invalid {
                name: "record",
                reason: "bytes are not in canonical form".into(),
            });
        }
        Ok(record)
    }

    /// The canonical bytes: the Merkle leaf data.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Consumes the record, returning its canonical bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
    /// The `kind` member.
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// The `agent` member.
    pub fn agent(&self) -> &str {
        &self.agent
    }
    /// The `ts` member, unix milliseconds.
    pub fn ts_ms(&self) -> u64 {
        self.ts_ms
    }
    /// The references, each with its optional `rel`.
    pub fn refs(&self) -> &[(Option<String>, RecordRef)] {
        &self.refs
    }
    /// The largest referenced index, if any reference is by index.
    pub fn max_ref_index(&self) -> Option<u64> {
        self.refs
            .iter()
            .filter_map(|(_, r)| match r {
                RecordRef::Index(index) => Some(*index),
                RecordRef::Digest(_) => None,
            })
            .max()
    }
}

fn valid_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some('a'..='z'))
        && kind.len() <= KIND_BYTES_MAX
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

fn invalid_ref(reason: &str) -> RecordError {
    RecordError::Invalid {
        name: "refs",
        reason: reason.to_owned(),
    }
}

fn parse_refs(refs: &Value) -> Result<Vec<(Option<String>, RecordRef)>, RecordError> {
    let items = refs
        .as_array()
        .ok_or_else(|| invalid_ref("expected an array"))?;
    if items.len() > REFS_MAX {
        return Err(invalid_ref(&format!("more than {REFS_MAX} references")));
    }
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let object = item
            .as_object()
            .ok_or_else(|| invalid_ref("each reference must be an object"))?;
        let rel = match object.get("rel") {
            None => None,
            Some(Value::String(rel)) => Some(rel.clone()),
            Some(_) => return Err(invalid_ref("`rel` must be a string")),
        };
        let target = match (object.get("index"), object.get("digest")) {
            (Some(index), None) => RecordRef::Index(
                index
                    .as_u64()
                    .filter(|i| *i <= jcs::JSON_INTEGER_MAX)
                    .ok_or_else(|| invalid_ref("`index` must be a non-negative integer"))?,
            ),
            (None, Some(Value::String(digest))) => RecordRef::Digest(parse_digest(digest)?),
            _ => {
                return Err(invalid_ref(
                    "each reference needs exactly one of `index` or `digest`",
                ))
            }
        };
        parsed.push((rel, target));
    }
    Ok(parsed)
}

fn parse_digest(digest: &str) -> Result<[u8; 32], RecordError> {
    let bad = || {
        invalid_ref(&format!(
            "digest `{digest}` is not `sha256:` and 64 lowercase hex digits"
        ))
    };
    let hex_text = digest.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex_text.len() != 64 || hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// Formats a leaf hash as a record digest reference (`sha256:<hex>`).
pub fn format_digest(leaf_hash: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(leaf_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_record_is_canonicalized() {
        let record = Record::from_json_text(
            r#"{ "ts": 5, "kind": "verdict", "agent": "a1", "z": [1, 2.50] }"#,
        )
        .unwrap();
        assert_eq!(
            record.bytes(),
            br#"{"agent":"a1","kind":"verdict","ts":5,"z":[1,2.5]}"#
        );
        assert_eq!(record.kind(), "verdict");
        assert_eq!(record.agent(), "a1");
        assert_eq!(record.ts_ms(), 5);
        assert_eq!(
            Record::from_canonical_bytes(record.bytes()).unwrap(),
            record
        );
        assert!(
            Record::from_canonical_bytes(br#"{"kind":"verdict","agent":"a1","ts":5}"#).is_err()
        );
    }

    #[test]
    fn required_members_are_checked() {
        let cases = [
            (r#"[1]"#, "a record must be a json object"),
            (r#"{"agent":"a","ts":1}"#, "missing member `kind`"),
            (r#"{"kind":"x","ts":1}"#, "missing member `agent`"),
            (r#"{"kind":"x","agent":"a"}"#, "missing member `ts`"),
            (
                r#"{"kind":"X","agent":"a","ts":1}"#,
                "member `kind` is invalid",
            ),
            (
                r#"{"kind":"x","agent":"","ts":1}"#,
                "member `agent` is invalid",
            ),
            (
                r#"{"kind":"x","agent":"a","ts":-1}"#,
                "member `ts` is invalid",
            ),
            (
                r#"{"kind":"x","agent":"a","ts":"2024"}"#,
                "member `ts` is invalid",
            ),
            (
                r#"{"kind":"x","agent":"a","ts":1,"refs":[{"index":1,"digest":"x"}]}"#,
                "exactly one",
            ),
            (
                r#"{"kind":"x","agent":"a","ts":1,"refs":[{"digest":"sha256:AB"}]}"#,
                "lowercase hex",
            ),
            (
                r#"{"kind":"outcome","agent":"a","ts":1,"status":"executed"}"#,
                "must reference its verdict",
            ),
            (
                r#"{"kind":"outcome","agent":"a","ts":1,"refs":[{"rel":"verdict","index":0}]}"#,
                "missing member `status`",
            ),
        ];
        for (text, want) in cases {
            let err = Record::from_json_text(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: got `{err}`, want `{want}`");
        }
    }

    #[test]
    fn outcome_with_verdict_ref_is_accepted() {
        let digest = format_digest(&[7u8; 32]);
        let text = format!(
            r#"{{"kind":"outcome","agent":"a","ts":1,"status":"executed","refs":[{{"rel":"verdict","index":3}},{{"rel":"result","digest":"{digest}"}}]}}"#
        );
        let record = Record::from_json_text(&text).unwrap();
        assert_eq!(record.max_ref_index(), Some(3));
        assert_eq!(record.refs()[1].1, RecordRef::Digest([7u8; 32]));
    }

    #[test]
    fn record_bytes_max_is_enforced() {
        let filler = "x".repeat(RECORD_BYTES_MAX);
        let text = format!(r#"{{"kind":"note","agent":"a","ts":1,"text":"{filler}"}}"#);
        assert!(matches!(
            Record::from_json_text(&text),
            Err(RecordError::TooLarge { .. })
        ));
        let fits = "x".repeat(RECORD_BYTES_MAX - 60);
        let text = format!(r#"{{"kind":"note","agent":"a","ts":1,"text":"{fits}"}}"#);
        assert!(Record::from_json_text(&text).is_ok());
    }
}
