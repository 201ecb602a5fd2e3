//! Incidents as case files, evidence-gated recovery and program metrics, read from the evidence log.
//!
//! Everything about an incident is a record in the log; this crate defines those records, folds
//! them into case state ([`fold`]), assembles the case file at once ([`case_file`], [`render`]),
//! checks state transitions ([`check_transition`]) and the evidence-gated resume
//! ([`check_resume`]), and computes the program's metrics ([`program_metrics`]). No IO: records
//! (each with its log index) and `now_ms` come in as values. Times are unix milliseconds, rates
//! basis points.
//!
//! # Records this crate defines
//!
//! Every record also has `kind`, `agent` and `ts`; the constructors in [`records`] return the
//! other members, validated, so the server writes exactly this format. The incident id is the
//! log index of its `incident_opened` record (shown as `INC-42`); every later incident record
//! names it in `incident` and in `refs` as `{"rel": "incident", "index": id}`.
//!
//! | kind | members |
//! |---|---|
//! | `signal`, `response` | `signal`, `level` (`warning`/`critical`), `pattern`?, `category`?, `obligation`?, `response`, `evidence` (indexes), `since_ms`?, `message`? |
//! | `notification` | `incident`?, `url`, `status` (`delivered`/`failed`), `attempts`, `latency_ms`, `event` |
//! | `incident_opened` | `trigger` (`halt`/`signal`/`person`), `trigger_index`?, `by`?, `reason`, `signals` [{`index`, `signal`, `level`, `pattern`?, `obligation`?, `category`?}], `evidence`, `since_ms`?, `pattern`?, `severity`, `owner`?, `obligations`, `category`? |
//! | `incident_updated` | `incident`, `by`, `reason` (required), and at least one of `pattern`, `severity`, `owner` |
//! | `incident_state` | `incident`, `from`, `to` (`open`/`contained`/`repaired`/`recovering`/`closed`), `by`, `reason`, `stage`? (`restricted`/`full`, on `recovering`), `criteria`? |
//! | `operating_model_change` | `incident`, `change` (`pact_version`/`suite_test`/`threshold`), `detail`, `broken_assumption`, `by` |
//! | `recovery_approval` | `incident`, `by`, `reason`? |
//! | `postmortem` | `incident`, `by`, `visible_failure`, `structural_failure` (must differ from the visible one), `broken_assumption`, `operating_model_change` |
//!
//! Containment needs no record of its own: a `halt` of the agent, or a `restrict` of the
//! incident's category (any category if the incident names none), contains every open incident of
//! that agent, and an incident opened while the agent is halted (or the category restricted) is
//! contained at once. A person may also record `incident_state` to `contained`.
//!
//! ```
//! use incident::records::Opened;
//! use serde_json::json;
//!
//! let opened = Opened::by_person("ops@acme.example", "refunds look wrong", "medium");
//! let mut record = opened.members().unwrap();
//! record["kind"] = json!("incident_opened");
//! record["agent"] = json!("acme/bot");
//! record["ts"] = json!(1_000);
//! let cases = incident::fold(&[(42, record)]);
//! assert_eq!(cases[&42].label(), "INC-42");
//! assert_eq!(cases[&42].state, incident::State::Open);
//! ```

// Nothing here may panic on any input: enforced outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod case;
mod file;
mod metrics;
pub mod records;
mod recovery;

use serde::{Deserialize, Serialize};

pub use case::{check_transition, fold, Case, Change, Folder, Transition, TransitionError};
pub use file::{
    case_file, counterparties, render, BlastGroup, CaseFile, CompletenessItem, Notice,
    TimelineEntry, COUNTERPARTY_ARGS, LISTED_MAX,
};
pub use metrics::{program_metrics, ProgramMetrics, REPEAT_WINDOW_MS};
pub use recovery::{check_resume, Criteria, Missing, ObligationCriterion, Resume};

/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The five failure patterns of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    ScopeCreep,
    Drift,
    Injection,
    AuthorityConfusion,
    MetricGaming,
}

impl Pattern {
    /// In DESIGN.md's order.
    pub const ALL: [Pattern; 5] = [
        Pattern::ScopeCreep,
        Pattern::Drift,
        Pattern::Injection,
        Pattern::AuthorityConfusion,
        Pattern::MetricGaming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::ScopeCreep => "scope_creep",
            Pattern::Drift => "drift",
            Pattern::Injection => "injection",
            Pattern::AuthorityConfusion => "authority_confusion",
            Pattern::MetricGaming => "metric_gaming",
        }
    }

    pub fn parse(text: &str) -> Option<Pattern> {
        Pattern::ALL
            .into_iter()
            .find(|pattern| pattern.as_str() == text)
    }

    /// The pattern a signal points to, for signal records that do not carry one.
    pub fn of_signal(signal: &str) -> Option<Pattern> {
        Some(match signal {
            "scope_violation_rate" | "scope_violation_trend" | "boundary_probe_failure" => {
                Pattern::ScopeCreep
            }
            "score_velocity"
            | "score_swing"
            | "input_shift"
            | "evaluation_staleness"
            | "jury_variance"
            | "model_version_changed"
            | "obligation_breach" => Pattern::Drift,
            "canary_seen" | "call_outside_catalog" | "bulk_operation" | "injection" => {
                Pattern::Injection
            }
            "authority_missing" | "authority_claim" => Pattern::AuthorityConfusion,
            "proxy_truth_divergence" | "deflection_rate" => Pattern::MetricGaming,
            _ => return None,
        })
    }
}

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|severity| severity.as_str() == text)
    }
}

/// A signal's level, as written in `signal` and `response` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// Where a case is: open -> contained -> repaired -> recovering -> closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Contained,
    Repaired,
    Recovering,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Contained => "contained",
            State::Repaired => "repaired",
            State::Recovering => "recovering",
            State::Closed => "closed",
        }
    }
}

/// How far trust has come back during recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The agent runs again, with the incident's category still restricted.
    Restricted,
    /// Full scope.
    Full,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Restricted => "restricted",
            Stage::Full => "full",
        }
    }
}

/// `INC-42` for incident 42.
pub fn label(id: u64) -> String {
    format!("INC-{id}")
}

/// Reads `INC-42`, `inc-42` or `42`.
pub fn parse_label(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = match text.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("inc-") => text.get(4..)?,
        _ => text,
    };
    digits.parse().ok()
}

/// `refs` entries of a record with relation `rel`.
pub(crate) fn refs_with<'a>(
    record: &'a serde_json::Value,
    rel: &'a str,
) -> impl Iterator<Item = u64> + 'a {
    record
        .get("refs")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |entry| entry.get("rel").and_then(serde_json::Value::as_str) == Some(rel))
        .filter_map(|entry| entry.get("index").and_then(serde_json::Value::as_u64))
}

pub(crate) fn str_of<'a>(record: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    record.get(key).and_then(serde_json::Value::as_str)
}

pub(crate) fn u64_of(record: &serde_json::Value, key: &str) -> Option<u64> {
    record.get(key).and_then(serde_json::Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        assert_eq!(label(42), "INC-42");
        assert_eq!(parse_label("INC-42"), Some(42));
        assert_eq!(parse_label("inc-7"), Some(7));
        assert_eq!(parse_label("7"), Some(7));
        assert_eq!(parse_label("INC-"), None);
        assert_eq!(parse_label("INC-x"), None);
        assert_eq!(parse_label("é"), None);
    }

    #[test]
    fn signals_map_to_patterns() {
        assert_eq!(Pattern::of_signal("canary_seen"), Some(Pattern::Injection));
        assert_eq!(
            Pattern::of_signal("scope_violation_rate"),
            Some(Pattern::ScopeCreep)
        );
        assert_eq!(Pattern::of_signal("nonsense"), None);
        assert_eq!(Pattern::parse("metric_gaming"), Some(Pattern::MetricGaming));
    }
}
