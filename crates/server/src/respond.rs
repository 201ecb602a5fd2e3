//! The response engine: a tripped signal becomes a defined response, and both are records.
//!
//! "A threshold with no downstream action is not a control." For each tripped signal the
//! engine looks up the agent's active pact's `consequences` (a signal, optionally narrowed to an
//! action category or an obligation, and the response); a signal the pact does not map gets its
//! risk tier's default ([`default_responses`]), so a pact without a consequence section is still
//! protected. Then it acts:
//!
//! | response | what happens |
//! |---|---|
//! | `approve` | nothing changes; the decision to accept is recorded |
//! | `restrict` | the action category is denied until lifted (a `restrict` record) |
//! | `halt`, `suspend` | every later call is `halted` (a `halt` record, `mode` says which) |
//! | `re-evaluate` | a trial of the affected obligations is scheduled now |
//! | `escalate` | the configured webhooks are notified and an incident is opened |
//!
//! A critical signal, a halt or an escalation opens an incident from the response records
//! (unless the agent already has one unresolved, whose timeline then shows the new records).
//! | `withhold-settlement` | a `settlement_withheld` record (acted on by escrow) |
//!
//! The order of records for one trip is: the `signal` (what tripped, with its evidence), then
//! each response's effect, then the `response` record referring to both. A trip whose signal is
//! already active for the same category and obligation is not answered twice; a periodic
//! evaluation that finds it back at `ok` clears it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use pact::syntax::{Response as ResponseKind, Tier};
use serde_json::{json, Value};

use crate::app::{make_record, AppState};
use crate::problem::ApiError;

/// Who the records name as the actor.
pub const ENGINE: &str = "pactum:response-engine";
/// Record indexes listed as evidence on a `signal` record.
pub const EVIDENCE_LISTED_MAX: usize = 64;

/// How bad a tripped signal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Worth a look and a re-evaluation.
    Warning,
    /// Act now.
    Critical,
}

impl Level {
    /// `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// A tripped signal, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    /// The signal's name (`pact::check::SIGNALS`).
    pub signal: String,
    /// How bad.
    pub level: Level,
    /// The failure pattern it belongs to (`scope_creep`, `drift`, `injection`,
    /// `authority_confusion`, `metric_gaming`), if one.
    pub pattern: Option<String>,
    /// The action category it concerns, if one.
    pub category: Option<String>,
    /// The obligation it concerns, if one.
    pub obligation: Option<String>,
    /// The measured value, in `unit`.
    pub value: Option<i64>,
    /// The threshold crossed, in `unit`.
    pub threshold: Option<i64>,
    /// `bp`, `milli`, `count`, `points`, `ms`, ...
    pub unit: &'static str,
    /// When the anomaly began, if known (the blast radius starts there).
    pub since_ms: Option<u64>,
    /// Record indexes it was computed from (newest, capped).
    pub evidence: Vec<u64>,
    /// All the records it was computed from, counted.
    pub n_evidence: u64,
    /// One line for a person.
    pub message: String,
}

/// What makes two trips the same condition: signal, category, obligation.
type TripKey = (String, Option<String>, Option<String>);

impl Trip {
    fn key(&self) -> TripKey {
        (
            self.signal.clone(),
            self.category.clone(),
            self.obligation.clone(),
        )
    }
}

/// One response taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    /// The trip's signal.
    pub signal: String,
    /// The response.
    pub response: ResponseKind,
    /// The `signal` record.
    pub signal_record: u64,
    /// The record of the effect (a `halt`, `restrict`, ... record), when there is one.
    pub effect_record: Option<u64>,
    /// The `response` record.
    pub response_record: u64,
}

/// Signals in force per agent, with the level they were answered at, so one condition is
/// answered once per level.
#[derive(Default)]
pub struct Active {
    by_agent: Mutex<HashMap<String, HashMap<TripKey, Level>>>,
}

impl Active {
    /// Marks `trip` active; false when it already was at its level or above.
    ///
    /// A condition answered as a warning and now critical is answered again: otherwise a
    /// scope-violation rate that first crosses the warning bound (restrict only, say) and keeps
    /// rising would never open the incident a critical signal opens.
    fn insert(&self, agent: &str, trip: &Trip) -> bool {
        let mut by_agent = self
            .by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let active = by_agent.entry(agent.to_owned()).or_default();
        match active.get(&trip.key()) {
            Some(answered) if *answered >= trip.level => false,
            _ => {
                active.insert(trip.key(), trip.level);
                true
            }
        }
    }

    /// Keeps only the signals in `still` (a periodic evaluation's trips) for `agent`;
    /// signals answered at once (canary, outside the catalog, ...) stay until the agent is
    /// resumed.
    pub fn retain(&self, agent: &str, still: &[Trip], immediate: &dyn Fn(&str) -> bool) {
        let keep: HashSet<_> = still.iter().map(Trip::key).collect();
        let mut by_agent = self
            .by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(active) = by_agent.get_mut(agent) {
            active.retain(|key, _| immediate(&key.0) || keep.contains(key));
        }
    }

    /// Rebuilds `agent`'s answered signals from its records at start-up: the `signal` records
    /// written since its last return to service (a `resume`, or an incident moving to
    /// `recovering`), each at the highest level answered. Without this a restart would answer
    /// every condition still in force a second time (another restriction, another webhook).
    pub fn restore(&self, agent: &str, records: &[(u64, Value)]) {
        let returned = records
            .iter()
            .rposition(|(_, record)| {
                record["kind"] == "resume"
                    || (record["kind"] == incident::records::KIND_STATE
                        && record["to"] == "recovering")
            })
            .map_or(0, |position| position + 1);
        let mut restored: HashMap<TripKey, Level> = HashMap::new();
        for (_, record) in records.iter().skip(returned) {
            if record["kind"] != "signal" {
                continue;
            }
            let Some(signal) = record["signal"].as_str() else {
                continue;
            };
            let level = match record["level"].as_str() {
                Some("critical") => Level::Critical,
                Some("warning") => Level::Warning,
                _ => continue,
            };
            let key = (
                signal.to_owned(),
                record["category"].as_str().map(str::to_owned),
                record["obligation"].as_str().map(str::to_owned),
            );
            let entry = restored.entry(key).or_insert(level);
            *entry = (*entry).max(level);
        }
        if restored.is_empty() {
            return;
        }
        let mut by_agent = self
            .by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_agent.insert(agent.to_owned(), restored);
    }

    /// Forgets every signal of `agent` (on resume: a new condition must be answered again).
    pub fn clear(&self, agent: &str) {
        let mut by_agent = self
            .by_agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_agent.remove(agent);
    }
}

/// What a risk tier does about a signal the pact does not map. Signals that show an attack in
/// progress (canary, call outside the catalog) halt at every tier; scope signals restrict the
/// category where one is known; drift re-evaluates; everything else escalates, and a critical
/// level escalates at every tier.
pub fn default_responses(tier: Tier, trip: &Trip) -> Vec<ResponseKind> {
    use ResponseKind::{Escalate, Halt, ReEvaluate, Restrict};
    let high = matches!(tier, Tier::High | Tier::Critical);
    let critical = trip.level == Level::Critical;
    let mut responses = match trip.signal.as_str() {
        "canary_seen" | "call_outside_catalog" => vec![Halt, Escalate],
        "authority_missing" | "bulk_operation" => vec![Escalate],
        "scope_violation_rate" | "scope_violation_trend" | "boundary_probe_failure" => {
            match (&trip.category, critical || high) {
                (Some(_), true) => vec![Restrict, Escalate],
                (Some(_), false) => vec![Restrict],
                (None, _) => vec![ReEvaluate, Escalate],
            }
        }
        "score_velocity"
        | "score_swing"
        | "input_shift"
        | "evaluation_staleness"
        | "jury_variance"
        | "model_version_changed" => vec![ReEvaluate],
        "obligation_breach" => vec![ReEvaluate, Escalate],
        _ => vec![Escalate],
    };
    if critical && !responses.contains(&Escalate) {
        responses.push(Escalate);
    }
    responses
}

/// The responses for `trip` under `doc`: the pact's matching consequences, else the tier's.
pub fn responses_for(
    doc: &pact::syntax::PactDoc,
    trip: &Trip,
) -> Vec<(ResponseKind, Option<String>)> {
    let mapped: Vec<(ResponseKind, Option<String>)> = doc
        .consequences
        .iter()
        .filter(|consequence| consequence.signal == trip.signal)
        .filter(|consequence| {
            consequence
                .obligation
                .as_ref()
                .is_none_or(|obligation| Some(obligation) == trip.obligation.as_ref())
        })
        .filter(|consequence| {
            // A restriction naming a category applies to that category's trips, or to trips
            // that name none (an immediate signal says which category to close).
            consequence.response != ResponseKind::Restrict
                || trip.category.is_none()
                || consequence.category == trip.category
        })
        .map(|consequence| {
            (
                consequence.response,
                consequence
                    .category
                    .clone()
                    .or_else(|| trip.category.clone()),
            )
        })
        .collect();
    if !mapped.is_empty() {
        return mapped;
    }
    default_responses(doc.tier, trip)
        .into_iter()
        .map(|response| (response, trip.category.clone()))
        .collect()
}

/// The kebab-case name of a response.
pub fn response_name(response: ResponseKind) -> &'static str {
    match response {
        ResponseKind::Approve => "approve",
        ResponseKind::Restrict => "restrict",
        ResponseKind::ReEvaluate => "re-evaluate",
        ResponseKind::Escalate => "escalate",
        ResponseKind::Suspend => "suspend",
        ResponseKind::Halt => "halt",
        ResponseKind::WithholdSettlement => "withhold-settlement",
    }
}

/// The `signal` record's members.
fn signal_members(trip: &Trip) -> Value {
    let evidence: Vec<u64> = trip
        .evidence
        .iter()
        .rev()
        .take(EVIDENCE_LISTED_MAX)
        .rev()
        .copied()
        .collect();
    let refs: Vec<Value> = evidence
        .iter()
        .map(|index| json!({ "rel": "evidence", "index": index }))
        .collect();
    json!({
        "signal": trip.signal,
        "level": trip.level.as_str(),
        "pattern": trip.pattern,
        "category": trip.category,
        "obligation": trip.obligation,
        "value": trip.value,
        "threshold": trip.threshold,
        "unit": trip.unit,
        "since_ms": trip.since_ms,
        "evidence": evidence,
        "n_evidence": trip.n_evidence,
        "message": trip.message,
        "refs": refs,
    })
}

/// Answers tripped signals for `agent`: records each new one and takes its responses.
/// Trips already active are skipped. Returns what was taken.
pub async fn respond(app: &AppState, agent: &str, trips: &[Trip]) -> Result<Vec<Taken>, ApiError> {
    let slot = app.agent(agent)?;
    let doc = {
        let runtime = crate::app::lock_runtime(&slot);
        match &runtime.guard {
            Some(guard) => guard.pact().doc().clone(),
            None => return Ok(Vec::new()),
        }
    };
    let mut taken = Vec::new();
    for trip in trips {
        if !app.active_signals().insert(agent, trip) {
            continue;
        }
        let mut fired: Vec<(u64, Value)> = Vec::new();
        let mut halt_record = None;
        let mut escalated = trip.level == Level::Critical;
        let now = app.now_ms();
        let signal_record = app
            .append_one(make_record("signal", agent, now, signal_members(trip))?)
            .await?;
        for (response, category) in responses_for(&doc, trip) {
            let effect_record =
                act(app, agent, trip, response, category.clone(), signal_record).await?;
            let mut refs = vec![json!({ "rel": "signal", "index": signal_record })];
            if let Some(effect) = effect_record {
                refs.push(json!({ "rel": "effect", "index": effect }));
            }
            let members = json!({
                "signal": trip.signal,
                "level": trip.level.as_str(),
                "pattern": trip.pattern,
                "response": response_name(response),
                "category": category,
                "obligation": trip.obligation,
                "since_ms": trip.since_ms,
                "evidence": trip.evidence.iter().rev().take(EVIDENCE_LISTED_MAX).collect::<Vec<_>>(),
                "message": trip.message,
                "refs": refs,
            });
            let response_record = app
                .append_one(make_record(
                    "response",
                    agent,
                    app.now_ms(),
                    members.clone(),
                )?)
                .await?;
            // The incident names the signal record (what was detected, and when); the
            // response records reach its timeline through their refs.
            fired.push((signal_record, members));
            if matches!(response, ResponseKind::Halt | ResponseKind::Suspend) {
                halt_record = halt_record.or(effect_record);
            }
            escalated |= matches!(
                response,
                ResponseKind::Escalate | ResponseKind::Halt | ResponseKind::Suspend
            );
            if matches!(
                response,
                ResponseKind::Escalate | ResponseKind::Halt | ResponseKind::Suspend
            ) {
                crate::notify::raise(
                    app,
                    json!({
                        "event": "response",
                        "agent": agent,
                        "signal": trip.signal,
                        "level": trip.level.as_str(),
                        "pattern": trip.pattern,
                        "response": response_name(response),
                        "category": category,
                        "message": trip.message,
                        "record": response_record,
                    }),
                    response_record,
                    None,
                );
            }
            taken.push(Taken {
                signal: trip.signal.clone(),
                response,
                signal_record,
                effect_record,
                response_record,
            });
        }
        if escalated {
            let (trigger, trigger_index) = match halt_record {
                Some(halt) => (incident::records::Trigger::Halt, halt),
                None => (incident::records::Trigger::Signal, signal_record),
            };
            crate::incidents::open_automatically(app, agent, trigger, trigger_index, &fired)
                .await?;
        }
    }
    Ok(taken)
}

/// Takes one response; the record of its effect, when it has one.
async fn act(
    app: &AppState,
    agent: &str,
    trip: &Trip,
    response: ResponseKind,
    category: Option<String>,
    signal_record: u64,
) -> Result<Option<u64>, ApiError> {
    let reason = format!("{}: {}", trip.signal, trip.message);
    let cause =
        json!({ "refs": [{ "rel": "signal", "index": signal_record }], "signal": trip.signal });
    match response {
        ResponseKind::Approve | ResponseKind::Escalate => Ok(None),
        ResponseKind::Restrict => match category {
            Some(category) => {
                let (_, record) = crate::agents::apply_control(
                    app,
                    agent,
                    "restrict",
                    Some(category),
                    ENGINE.to_owned(),
                    reason,
                    cause,
                )
                .await?;
                Ok(Some(record))
            }
            // No category to close: nothing narrower than a halt would do, and the pact asked
            // for less than a halt. The response record says so; the escalation follows.
            None => Ok(None),
        },
        ResponseKind::Halt | ResponseKind::Suspend => {
            let mut cause = cause;
            cause["mode"] = json!(response_name(response));
            let (_, record) = crate::agents::apply_control(
                app,
                agent,
                "halt",
                None,
                ENGINE.to_owned(),
                reason,
                cause,
            )
            .await?;
            Ok(Some(record))
        }
        ResponseKind::ReEvaluate => {
            // The first trial started is the effect; none starts when the pact measures no
            // obligation with an uploaded suite or the agent has no trial target, and the
            // response record says so by having no effect.
            let started = app
                .schedule_obligations_now(agent, trip.obligation.as_deref(), ENGINE)
                .await
                .unwrap_or_default();
            Ok(started.first().copied())
        }
        ResponseKind::WithholdSettlement => {
            let mut members = cause;
            members["obligation"] = json!(trip.obligation);
            members["reason"] = json!(reason);
            let record = app
                .append_one(make_record(
                    "settlement_withheld",
                    agent,
                    app.now_ms(),
                    members,
                )?)
                .await?;
            Ok(Some(record))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(extra: &str) -> pact::syntax::PactDoc {
        let text = format!(
            "pact: p\nversion: 1\nagent: a\ntier: high\nactions:\n  make_policy_statement: {{ reversibility: irreversible, category: policy, args: {{ text: string }} }}\n  refund: {{ reversibility: irreversible, category: refunds, args: {{ n: long }} }}\nrules:\n  - {{ id: r, permit: make_policy_statement }}\n{extra}"
        );
        let checked = pact::check(&text);
        checked
            .pact
            .unwrap_or_else(|| panic!("{:?}", checked.diagnostics))
            .doc()
            .clone()
    }

    fn trip(signal: &str, level: Level, category: Option<&str>) -> Trip {
        Trip {
            signal: signal.into(),
            level,
            pattern: Some("scope_creep".into()),
            category: category.map(str::to_owned),
            obligation: None,
            value: None,
            threshold: None,
            unit: "bp",
            since_ms: None,
            evidence: vec![],
            n_evidence: 0,
            message: String::new(),
        }
    }

    #[test]
    fn the_pact_maps_a_scope_signal_to_a_restriction_of_its_category_only() {
        let doc = doc("consequences:\n  - { signal: scope_violation_rate, response: restrict, category: policy }\n");
        let policy = trip("scope_violation_rate", Level::Warning, Some("policy"));
        assert_eq!(
            responses_for(&doc, &policy),
            vec![(ResponseKind::Restrict, Some("policy".into()))]
        );
        // Another category's trip is not covered by that consequence: the tier default applies.
        let refunds = trip("scope_violation_rate", Level::Warning, Some("refunds"));
        assert_eq!(
            responses_for(&doc, &refunds),
            vec![
                (ResponseKind::Restrict, Some("refunds".into())),
                (ResponseKind::Escalate, Some("refunds".into()))
            ]
        );
    }

    #[test]
    fn a_pact_without_consequences_is_still_protected() {
        let doc = doc("");
        let canary = trip("canary_seen", Level::Critical, None);
        let responses: Vec<_> = responses_for(&doc, &canary)
            .into_iter()
            .map(|(response, _)| response)
            .collect();
        assert_eq!(responses, vec![ResponseKind::Halt, ResponseKind::Escalate]);
        let stale = trip("evaluation_staleness", Level::Warning, None);
        assert_eq!(
            default_responses(Tier::Low, &stale),
            vec![ResponseKind::ReEvaluate]
        );
        let stale_critical = trip("evaluation_staleness", Level::Critical, None);
        assert_eq!(
            default_responses(Tier::Low, &stale_critical),
            vec![ResponseKind::ReEvaluate, ResponseKind::Escalate]
        );
        let low_scope = trip("scope_violation_rate", Level::Warning, Some("refunds"));
        assert_eq!(
            default_responses(Tier::Low, &low_scope),
            vec![ResponseKind::Restrict]
        );
    }

    #[test]
    fn an_active_signal_is_answered_once_until_it_clears() {
        let active = Active::default();
        let rate = trip("scope_violation_rate", Level::Warning, Some("policy"));
        let canary = trip("canary_seen", Level::Critical, None);
        assert!(active.insert("a", &rate));
        assert!(!active.insert("a", &rate));
        assert!(active.insert("b", &rate));
        // Worse than when it was answered: answered again, once.
        let critical_rate = trip("scope_violation_rate", Level::Critical, Some("policy"));
        assert!(active.insert("a", &critical_rate));
        assert!(!active.insert("a", &critical_rate));
        assert!(!active.insert("a", &rate));
        assert!(active.insert("a", &canary));
        active.retain("a", &[], &|signal| signal == "canary_seen");
        assert!(active.insert("a", &rate), "cleared by a calm evaluation");
        assert!(
            !active.insert("a", &canary),
            "immediate signals stay until resume"
        );
        active.clear("a");
        assert!(active.insert("a", &canary));
    }
}
