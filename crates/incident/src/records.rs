//! The records this crate defines: typed members, validated, turned into the JSON the server
//! appends (it adds `kind`, `agent` and `ts`), and read back from the log.
//!
//! Each type's `members()` checks the required fields and returns the members with the `refs`
//! that tie the record to its incident or trigger; reading a record back ([`parse`]) ignores
//! records that do not have the right shape, so a garbled log never breaks a case file.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Level, Pattern, Severity, Stage, State};

pub const KIND_SIGNAL: &str = "signal";
pub const KIND_RESPONSE: &str = "response";
pub const KIND_NOTIFICATION: &str = "notification";
pub const KIND_OPENED: &str = "incident_opened";
pub const KIND_UPDATED: &str = "incident_updated";
pub const KIND_STATE: &str = "incident_state";
pub const KIND_OPERATING_MODEL_CHANGE: &str = "operating_model_change";
pub const KIND_RECOVERY_APPROVAL: &str = "recovery_approval";
pub const KIND_POSTMORTEM: &str = "postmortem";

/// Longest free text kept in a record (reasons, details), in bytes.
pub const TEXT_BYTES_MAX: usize = 4096;

/// A record that cannot be written: which field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.message)
    }
}

impl std::error::Error for RecordError {}

fn required(field: &'static str, text: &str) -> Result<(), RecordError> {
    if text.trim().is_empty() {
        return Err(RecordError {
            field,
            message: "is required".to_owned(),
        });
    }
    if text.len() > TEXT_BYTES_MAX {
        return Err(RecordError {
            field,
            message: format!("is longer than {TEXT_BYTES_MAX} bytes"),
        });
    }
    Ok(())
}

fn to_members<T: Serialize>(value: &T, refs: Vec<Value>) -> Result<Value, RecordError> {
    let mut members = serde_json::to_value(value).map_err(|err| RecordError {
        field: "record",
        message: err.to_string(),
    })?;
    if let Some(object) = members.as_object_mut() {
        object.retain(|_, member| !member.is_null());
        if !refs.is_empty() {
            object.insert("refs".to_owned(), Value::Array(refs));
        }
    }
    Ok(members)
}

fn incident_ref(incident: u64) -> Value {
    json!({"rel": "incident", "index": incident})
}

/// Reads a record's members as `T` if it has kind `kind`; `None` for anything else or a bad shape.
pub fn parse<T: DeserializeOwned>(record: &Value, kind: &str) -> Option<T> {
    if record.get("kind").and_then(Value::as_str) != Some(kind) {
        return None;
    }
    serde_json::from_value(record.clone()).ok()
}

/// A `signal` (a threshold tripped) or `response` (what was done about it) record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fired {
    pub signal: String,
    pub level: Level,
    #[serde(default)]
    pub pattern: Option<Pattern>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub obligation: Option<String>,
    /// `approve`, `restrict`, `re-evaluate`, `escalate`, `suspend`, `halt`, `withhold-settlement`.
    pub response: String,
    /// The records the signal was computed from (newest, capped by the signal's computation).
    #[serde(default)]
    pub evidence: Vec<u64>,
    /// When the anomaly began, if the signal knows.
    #[serde(default)]
    pub since_ms: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Fired {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("signal", &self.signal)?;
        required("response", &self.response)?;
        let refs = self
            .evidence
            .iter()
            .map(|index| json!({"rel": "evidence", "index": index}))
            .collect();
        to_members(self, refs)
    }

    /// The pattern named in the record, else the one its signal points to.
    pub fn pattern(&self) -> Option<Pattern> {
        self.pattern.or_else(|| Pattern::of_signal(&self.signal))
    }
}

/// Whether a notification reached its webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Delivered,
    Failed,
}

/// A `notification` record: one webhook delivery (after its retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub incident: Option<u64>,
    pub url: String,
    pub status: Delivery,
    pub attempts: u32,
    /// From the event to the final answer (or giving up).
    pub latency_ms: u64,
    /// What was announced, for example `incident_opened` or `halt`.
    pub event: String,
}

impl Notification {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("url", &self.url)?;
        required("event", &self.event)?;
        let refs = self.incident.map(incident_ref).into_iter().collect();
        to_members(self, refs)
    }
}

/// What opened an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Halt,
    Signal,
    Person,
}

/// A triggering signal as carried by `incident_opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRef {
    /// The `signal` or `response` record.
    pub index: u64,
    pub signal: String,
    pub level: Level,
    #[serde(default)]
    pub pattern: Option<Pattern>,
    #[serde(default)]
    pub obligation: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

impl SignalRef {
    /// From a `signal` or `response` record at `index`.
    pub fn from_fired(index: u64, fired: &Fired) -> SignalRef {
        SignalRef {
            index,
            signal: fired.signal.clone(),
            level: fired.level,
            pattern: fired.pattern(),
            obligation: fired.obligation.clone(),
            category: fired.category.clone(),
        }
    }
}

/// The preliminary classification: each signal votes for its pattern, a critical one twice; the
/// most votes wins, ties go to DESIGN.md's order. `None` when no signal names a pattern.
pub fn classify(signals: &[SignalRef]) -> Option<Pattern> {
    let mut votes = [0u64; 5];
    for signal in signals {
        let pattern = signal
            .pattern
            .or_else(|| Pattern::of_signal(&signal.signal));
        if let Some(pattern) = pattern {
            let weight = if signal.level == Level::Critical {
                2
            } else {
                1
            };
            if let Some(slot) = Pattern::ALL
                .iter()
                .position(|each| *each == pattern)
                .and_then(|idx| votes.get_mut(idx))
            {
                *slot += weight;
            }
        }
    }
    let best = votes.iter().copied().max().unwrap_or(0);
    if best == 0 {
        return None;
    }
    Pattern::ALL
        .into_iter()
        .zip(votes)
        .find(|(_, n)| *n == best)
        .map(|(pattern, _)| pattern)
}

/// The preliminary severity: `critical` for an injection or authority confusion raised by a
/// critical signal, `high` for a halt or any other critical signal, `medium` otherwise.
pub fn preliminary_severity(trigger: Trigger, signals: &[SignalRef]) -> Severity {
    let critical = signals.iter().any(|signal| signal.level == Level::Critical);
    match (trigger, critical, classify(signals)) {
        (_, true, Some(Pattern::Injection | Pattern::AuthorityConfusion)) => Severity::Critical,
        (Trigger::Halt, _, _) | (_, true, _) => Severity::High,
        _ => Severity::Medium,
    }
}

/// An `incident_opened` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub trigger: Trigger,
    /// The halt, signal or response record that opened it.
    #[serde(default)]
    pub trigger_index: Option<u64>,
    /// The person who opened it (required when `trigger` is `person`).
    #[serde(default)]
    pub by: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub signals: Vec<SignalRef>,
    /// Evidence records of the triggering signals.
    #[serde(default)]
    pub evidence: Vec<u64>,
    /// When the anomaly began (the earliest of the signals' `since_ms`).
    #[serde(default)]
    pub since_ms: Option<u64>,
    #[serde(default)]
    pub pattern: Option<Pattern>,
    pub severity: Severity,
    #[serde(default)]
    pub owner: Option<String>,
    /// Obligations the incident concerns (recovery checks their thresholds).
    #[serde(default)]
    pub obligations: Vec<String>,
    /// The action category concerned (a `restrict` of it contains the incident).
    #[serde(default)]
    pub category: Option<String>,
}

impl Opened {
    /// Opened by a person; `severity` is a [`Severity`] name (`medium` if unknown).
    pub fn by_person(by: &str, reason: &str, severity: &str) -> Opened {
        Opened {
            trigger: Trigger::Person,
            trigger_index: None,
            by: Some(by.to_owned()),
            reason: reason.to_owned(),
            signals: Vec::new(),
            evidence: Vec::new(),
            since_ms: None,
            pattern: None,
            severity: Severity::parse(severity).unwrap_or(Severity::Medium),
            owner: None,
            obligations: Vec::new(),
            category: None,
        }
    }

    /// Opened automatically from `signal`/`response` records (index and members): classification,
    /// severity, evidence, `since_ms`, obligations and category all come from the signals.
    /// `trigger_index` is the record that opened it (a halt, or the first signal).
    pub fn from_signals(
        trigger: Trigger,
        trigger_index: u64,
        fired: &[(u64, Fired)],
        owner: Option<&str>,
    ) -> Opened {
        // One signal may fire several responses (halt and escalate): the case lists it once,
        // by its first response record, and states its message once.
        let mut seen = std::collections::BTreeSet::new();
        let firsts: Vec<&(u64, Fired)> = fired
            .iter()
            .filter(|(_, fired)| {
                seen.insert((
                    fired.signal.clone(),
                    fired.category.clone(),
                    fired.obligation.clone(),
                ))
            })
            .collect();
        let signals: Vec<SignalRef> = firsts
            .iter()
            .map(|(index, fired)| SignalRef::from_fired(*index, fired))
            .collect();
        let mut evidence: Vec<u64> = fired
            .iter()
            .flat_map(|(_, fired)| fired.evidence.iter().copied())
            .collect();
        evidence.sort_unstable();
        evidence.dedup();
        let mut obligations: Vec<String> = fired
            .iter()
            .filter_map(|(_, fired)| fired.obligation.clone())
            .collect();
        obligations.sort();
        obligations.dedup();
        let reason = firsts
            .iter()
            .map(|(_, fired)| {
                fired
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("signal `{}` tripped", fired.signal))
            })
            .collect::<Vec<_>>()
            .join("; ");
        Opened {
            trigger,
            trigger_index: Some(trigger_index),
            by: None,
            reason: if reason.is_empty() {
                "halted".to_owned()
            } else {
                reason
            },
            pattern: classify(&signals),
            severity: preliminary_severity(trigger, &signals),
            since_ms: fired.iter().filter_map(|(_, fired)| fired.since_ms).min(),
            category: fired.iter().find_map(|(_, fired)| fired.category.clone()),
            owner: owner.map(str::to_owned),
            signals,
            evidence,
            obligations,
        }
    }

    pub fn members(&self) -> Result<Value, RecordError> {
        required("reason", &self.reason)?;
        match self.trigger {
            Trigger::Person => required("by", self.by.as_deref().unwrap_or(""))?,
            Trigger::Signal if self.signals.is_empty() => {
                return Err(RecordError {
                    field: "signals",
                    message: "must name the triggering signal".to_owned(),
                })
            }
            Trigger::Halt | Trigger::Signal if self.trigger_index.is_none() => {
                return Err(RecordError {
                    field: "trigger_index",
                    message: "must name the record that opened the incident".to_owned(),
                })
            }
            _ => {}
        }
        let mut refs: Vec<Value> = self
            .trigger_index
            .map(|index| json!({"rel": "trigger", "index": index}))
            .into_iter()
            .collect();
        refs.extend(
            self.signals
                .iter()
                .filter(|signal| Some(signal.index) != self.trigger_index)
                .map(|signal| json!({"rel": "signal", "index": signal.index})),
        );
        to_members(self, refs)
    }
}

/// An `incident_updated` record: a person changes classification, severity or owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Updated {
    pub incident: u64,
    pub by: String,
    pub reason: String,
    #[serde(default)]
    pub pattern: Option<Pattern>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub owner: Option<String>,
}

impl Updated {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("by", &self.by)?;
        required("reason", &self.reason)?;
        if self.pattern.is_none() && self.severity.is_none() && self.owner.is_none() {
            return Err(RecordError {
                field: "pattern",
                message: "or `severity` or `owner` must change".to_owned(),
            });
        }
        if let Some(owner) = &self.owner {
            required("owner", owner)?;
        }
        to_members(self, vec![incident_ref(self.incident)])
    }
}

/// An `incident_state` record: one transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub incident: u64,
    pub from: State,
    pub to: State,
    pub by: String,
    pub reason: String,
    /// On `recovering`: the stage granted.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// On `recovering`: the criteria the resume was checked against, for auditors.
    #[serde(default)]
    pub criteria: Option<crate::Criteria>,
}

impl StateChange {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("by", &self.by)?;
        required("reason", &self.reason)?;
        if self.to == State::Recovering && self.stage.is_none() {
            return Err(RecordError {
                field: "stage",
                message: "is required when recovering".to_owned(),
            });
        }
        to_members(self, vec![incident_ref(self.incident)])
    }
}

/// What kind of operating-model change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new pact version.
    PactVersion,
    /// A new test in the suite.
    SuiteTest,
    /// A changed threshold.
    Threshold,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::PactVersion => "pact_version",
            ChangeKind::SuiteTest => "suite_test",
            ChangeKind::Threshold => "threshold",
        }
    }
}

/// An `operating_model_change` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingModelChange {
    pub incident: u64,
    pub change: ChangeKind,
    /// What changed: `pact v4`, `suite grounding v3 case refund-bait`, ...
    pub detail: String,
    /// The assumption the incident showed to be wrong.
    pub broken_assumption: String,
    pub by: String,
}

impl OperatingModelChange {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("detail", &self.detail)?;
        required("broken_assumption", &self.broken_assumption)?;
        required("by", &self.by)?;
        to_members(self, vec![incident_ref(self.incident)])
    }
}

/// A `recovery_approval` record: one person approves re-entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryApproval {
    pub incident: u64,
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl RecoveryApproval {
    pub fn members(&self) -> Result<Value, RecordError> {
        required("by", &self.by)?;
        to_members(self, vec![incident_ref(self.incident)])
    }
}

/// A `postmortem` record; closing an incident requires one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Postmortem {
    pub incident: u64,
    pub by: String,
    /// What people saw (the refund that should not have happened).
    pub visible_failure: String,
    /// Why the system let it happen (nothing tested adjacent actions).
    pub structural_failure: String,
    pub broken_assumption: String,
    pub operating_model_change: String,
}

impl Postmortem {
    pub fn members(&self) -> Result<Value, RecordError> {
        self.check()?;
        to_members(self, vec![incident_ref(self.incident)])
    }

    /// Every field present, and the structural failure is not the visible one restated.
    pub fn check(&self) -> Result<(), RecordError> {
        required("by", &self.by)?;
        required("visible_failure", &self.visible_failure)?;
        required("structural_failure", &self.structural_failure)?;
        required("broken_assumption", &self.broken_assumption)?;
        required("operating_model_change", &self.operating_model_change)?;
        let norm = |text: &str| text.trim().to_lowercase();
        if norm(&self.structural_failure) == norm(&self.visible_failure) {
            return Err(RecordError {
                field: "structural_failure",
                message: "must differ from the visible failure: say why the system allowed it"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(signal: &str, level: Level) -> Fired {
        Fired {
            signal: signal.to_owned(),
            level,
            pattern: None,
            category: None,
            obligation: None,
            response: "restrict".to_owned(),
            evidence: vec![3, 1],
            since_ms: Some(500),
            message: None,
        }
    }

    #[test]
    fn signal_members_have_evidence_refs_and_no_nulls() {
        let members = fired("scope_violation_rate", Level::Warning)
            .members()
            .unwrap();
        assert_eq!(members["refs"][0], json!({"rel": "evidence", "index": 3}));
        assert!(members.get("category").is_none());
        assert_eq!(members["since_ms"], json!(500));
        let mut record = members.clone();
        record["kind"] = json!("signal");
        let back: Fired = parse(&record, KIND_SIGNAL).unwrap();
        assert_eq!(back.pattern(), Some(Pattern::ScopeCreep));
        assert!(parse::<Fired>(&record, KIND_RESPONSE).is_none());
    }

    #[test]
    fn classification_votes_with_critical_counting_twice() {
        let signals = vec![
            SignalRef::from_fired(1, &fired("scope_violation_rate", Level::Warning)),
            SignalRef::from_fired(2, &fired("input_shift", Level::Warning)),
            SignalRef::from_fired(3, &fired("canary_seen", Level::Critical)),
        ];
        assert_eq!(classify(&signals), Some(Pattern::Injection));
        assert_eq!(
            preliminary_severity(Trigger::Signal, &signals),
            Severity::Critical
        );
        let tie = signals.get(..2).unwrap();
        assert_eq!(classify(tie), Some(Pattern::ScopeCreep));
        assert_eq!(preliminary_severity(Trigger::Signal, tie), Severity::Medium);
        assert_eq!(preliminary_severity(Trigger::Halt, tie), Severity::High);
        assert_eq!(classify(&[]), None);
    }

    #[test]
    fn opened_from_signals_collects_evidence_and_since() {
        let mut late = fired("scope_violation_trend", Level::Warning);
        late.since_ms = Some(900);
        late.obligation = Some("scope".to_owned());
        late.category = Some("refunds".to_owned());
        let opened = Opened::from_signals(
            Trigger::Signal,
            10,
            &[
                (10, fired("scope_violation_rate", Level::Critical)),
                (11, late),
            ],
            Some("ops"),
        );
        assert_eq!(opened.evidence, vec![1, 3]);
        assert_eq!(opened.since_ms, Some(500));
        assert_eq!(opened.pattern, Some(Pattern::ScopeCreep));
        assert_eq!(opened.severity, Severity::High);
        assert_eq!(opened.obligations, vec!["scope".to_owned()]);
        assert_eq!(opened.category.as_deref(), Some("refunds"));
        let members = opened.members().unwrap();
        assert_eq!(
            members["refs"],
            json!([{"rel": "trigger", "index": 10}, {"rel": "signal", "index": 11}])
        );
    }

    #[test]
    fn required_fields_are_refused() {
        let mut opened = Opened::by_person(" ", "why", "high");
        assert_eq!(opened.members().unwrap_err().field, "by");
        opened.by = Some("ann".to_owned());
        opened.reason = String::new();
        assert_eq!(opened.members().unwrap_err().field, "reason");
        let signal_without = Opened {
            trigger: Trigger::Signal,
            ..Opened::by_person("x", "y", "low")
        };
        assert_eq!(signal_without.members().unwrap_err().field, "signals");

        let update = Updated {
            incident: 4,
            by: "ann".to_owned(),
            reason: String::new(),
            pattern: Some(Pattern::Drift),
            severity: None,
            owner: None,
        };
        assert_eq!(update.members().unwrap_err().field, "reason");
        let nothing = Updated {
            reason: "because".to_owned(),
            pattern: None,
            ..update
        };
        assert_eq!(nothing.members().unwrap_err().field, "pattern");

        let change = OperatingModelChange {
            incident: 4,
            change: ChangeKind::SuiteTest,
            detail: "case refund-bait".to_owned(),
            broken_assumption: "".to_owned(),
            by: "ann".to_owned(),
        };
        assert_eq!(change.members().unwrap_err().field, "broken_assumption");

        let state = StateChange {
            incident: 4,
            from: State::Repaired,
            to: State::Recovering,
            by: "ann".to_owned(),
            reason: "criteria met".to_owned(),
            stage: None,
            criteria: None,
        };
        assert_eq!(state.members().unwrap_err().field, "stage");

        let postmortem = Postmortem {
            incident: 4,
            by: "ann".to_owned(),
            visible_failure: "Refunds were issued".to_owned(),
            structural_failure: " refunds were issued ".to_owned(),
            broken_assumption: "nobody asks for refunds".to_owned(),
            operating_model_change: "suite_test".to_owned(),
        };
        assert_eq!(
            postmortem.members().unwrap_err().field,
            "structural_failure"
        );
        let long = RecoveryApproval {
            incident: 4,
            by: "x".repeat(TEXT_BYTES_MAX + 1),
            reason: None,
        };
        assert!(long.members().unwrap_err().message.contains("longer"));
    }
}
