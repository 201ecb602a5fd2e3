//! The pact language: YAML or JSON source -> a checked [`Pact`], with its Cedar schema and policies.
//!
//! A pact is the versioned contract for one agent: its action catalog, scope rules (Cedar
//! conditions), counters, canaries, authority keys, obligations, consequences and recovery
//! criteria. [`check`] parses and validates a source text and returns either a [`Pact`] ready for
//! the guard (policies parsed, validated and indexed by action once, here) or every problem found.
//!
//! ```
//! let source = "pact: demo\nversion: 1\nagent: acme/bot\ntier: low\n\
//!               actions:\n  lookup: { args: { id: string } }\n\
//!               rules:\n  - { id: lookups, permit: lookup }\n";
//! let checked = pact::check(source);
//! let pact = checked.pact.expect("valid pact");
//! assert_eq!(pact.action("lookup").map(|action| action.name.as_str()), Some("lookup"));
//! assert!(pact.digest().starts_with("sha256:"));
//! ```

mod canonical;
mod check;
mod diag;
mod duration;
pub mod fmt;
pub mod mcp;
mod model;
mod source;
pub mod syntax;

pub use canonical::{canonical_json, digest_of};
pub use check::{
    check, check_bytes, parse_doc, Checked, ARG_DEPTH_MAX, CONDITION_NESTING_MAX,
    CONDITION_OPERATORS_MAX, SCORE_DIMENSIONS, SCORE_WEIGHT_MAX, SIGNALS,
};
pub use diag::{has_errors, Diagnostic, Position, Severity};
pub use duration::parse_duration_ms;
pub use model::{
    Action, Arg, ArgKind, AuthorityKey, AuthorityRequirement, Bulk, Counter, CounterKind, Effect,
    Pact, Rule, RULE_ID_BULK, RULE_ID_UNKNOWN_ACTION, URL_CEDAR_TYPE,
};
pub use source::{DEPTH_MAX, PACT_BYTES_MAX};

/// Parses a YAML or JSON document (at most [`PACT_BYTES_MAX`] bytes, no aliases) into a JSON
/// value, for other files in the pact toolchain such as test case files.
pub fn parse_yaml(text: &str) -> Result<serde_json::Value, Diagnostic> {
    source::parse(text).map(|doc| doc.value)
}

/// The JSON Schema of the pact file format, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(syntax::PactDoc);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
