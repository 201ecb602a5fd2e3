//! Program metrics: how the incident programme as a whole is doing, from the log.
//!
//! - **time to containment**: mean over contained incidents (detection to containment);
//! - **evidence completeness**: mean of the incidents' case-file completeness;
//! - **repeat-failure rate**: incidents whose agent had an earlier incident of the same pattern
//!   and obligation (the same obligation named, or both naming none) opened within
//!   [`REPEAT_WINDOW_MS`] before, over all incidents;
//! - **recovery validation**: every move into recovery (`incident_state` to `recovering`) is
//!   re-checked with [`check_resume`] on the records before it, with the criteria of the pact then
//!   active (else those recorded with it, else the critical tier's); an agent `resume` while the
//!   agent has an incident opened by a signal and not yet recovering or closed bypassed the gate
//!   and counts as a resume that failed (a person lifting their own halt does not) (so the server records `incident_state` before the agent's `resume`); the share
//!   that pass (should be 1);
//! - **pact coverage**: agents with an active pact over agents (given by the caller);
//! - **evaluation freshness**: obligations of each agent's active pact whose newest complete trial
//!   of the obligation's suite is within its `freshness`, over all such obligations;
//! - **exception resolution time**: `review` verdicts to the `approval` that settled them;
//! - **communication latency**: `notification` records' `latency_ms`, mean and p95.

use std::collections::{BTreeMap, HashMap};

use pact::syntax::{suite_matches, PactDoc, Tier};
use serde::Serialize;
use serde_json::Value;

use crate::case::Folder;
use crate::file::case_file;
use crate::records::{self, Notification, StateChange};
use crate::recovery::complete_trials;
use crate::{check_resume, refs_with, str_of, u64_of, Criteria, Resume, State, DAY_MS};

type RepeatKey<'a> = (&'a str, Option<&'static str>, Vec<&'a str>);

/// Incidents of the same pattern and obligation within this window count as a repeat.
pub const REPEAT_WINDOW_MS: u64 = 90 * DAY_MS;

/// The programme's figures. Rates in basis points; `None` where there is nothing to measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramMetrics {
    pub n_incidents: u64,
    pub n_open: u64,
    pub n_contained: u64,
    pub time_to_containment_ms_mean: Option<u64>,
    pub evidence_completeness_bp_mean: Option<u32>,
    pub n_repeats: u64,
    pub repeat_failure_bp: Option<u32>,
    pub n_resumes: u64,
    pub n_resumes_validated: u64,
    pub recovery_validation_bp: Option<u32>,
    pub pact_coverage_bp: Option<u32>,
    pub n_obligations: u64,
    pub n_obligations_fresh: u64,
    pub evaluation_freshness_bp: Option<u32>,
    pub n_exceptions_resolved: u64,
    pub n_exceptions_pending: u64,
    pub exception_resolution_ms_median: Option<u64>,
    pub exception_resolution_ms_mean: Option<u64>,
    pub n_notifications: u64,
    pub n_notifications_failed: u64,
    pub communication_latency_ms_mean: Option<u64>,
    pub communication_latency_ms_p95: Option<u64>,
}

fn ratio_bp(part: u64, whole: u64) -> Option<u32> {
    if whole == 0 {
        return None;
    }
    let bp = (u128::from(part) * 10_000 + u128::from(whole) / 2) / u128::from(whole);
    Some(u32::try_from(bp).unwrap_or(u32::MAX))
}

fn mean(values: &[u64]) -> Option<u64> {
    let n = values.len() as u128;
    if n == 0 {
        return None;
    }
    let sum: u128 = values.iter().map(|value| u128::from(*value)).sum();
    u64::try_from((sum + n / 2) / n).ok()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], pct: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (pct * n).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

fn median(sorted: &[u64]) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        return sorted.get(n / 2).copied();
    }
    let low = *sorted.get(n / 2 - 1)?;
    let high = *sorted.get(n / 2)?;
    Some(low / 2 + high / 2 + (low % 2 + high % 2) / 2)
}

/// Computes the programme's metrics over `records` (the whole log, in order). `pacts(agent,
/// version)` gives pact documents; `n_agents` and `n_agents_with_active_pact` come from the
/// registry.
pub fn program_metrics(
    records: &[(u64, Value)],
    pacts: &dyn Fn(&str, u64) -> Option<PactDoc>,
    n_agents: u64,
    n_agents_with_active_pact: u64,
    now_ms: u64,
) -> ProgramMetrics {
    let mut folder = Folder::new();
    let mut active: HashMap<String, u64> = HashMap::new();
    let mut n_resumes = 0u64;
    let mut n_validated = 0u64;
    let mut review_ms: HashMap<u64, u64> = HashMap::new();
    let mut resolutions = Vec::new();
    let mut latencies = Vec::new();
    let mut n_notifications_failed = 0u64;
    for (position, (index, record)) in records.iter().enumerate() {
        let kind = str_of(record, "kind").unwrap_or("");
        let agent = str_of(record, "agent").unwrap_or("");
        let ts = u64_of(record, "ts").unwrap_or(0);
        match kind {
            "pact_activated" => {
                if let Some(version) = record.get("pact").and_then(|p| u64_of(p, "version")) {
                    active.insert(agent.to_owned(), version);
                }
            }
            "verdict" => {
                let decision = record
                    .get("verdict")
                    .and_then(|verdict| str_of(verdict, "decision"));
                if decision == Some("review") {
                    review_ms.insert(*index, ts);
                }
            }
            "approval" => {
                for verdict in refs_with(record, "verdict") {
                    if let Some(asked) = review_ms.remove(&verdict) {
                        resolutions.push(ts.saturating_sub(asked));
                    }
                }
            }
            records::KIND_NOTIFICATION => {
                if let Some(notification) = records::parse::<Notification>(record, kind) {
                    latencies.push(notification.latency_ms);
                    if notification.status == records::Delivery::Failed {
                        n_notifications_failed += 1;
                    }
                }
            }
            "resume" => {
                // A resume of an agent with an incident opened by evidence and not yet through
                // the gate bypassed it. An incident a person's halt opened is not gated: that
                // person may lift their own halt (a drill), as the server allows.
                let bypassed = folder.cases().values().any(|case| {
                    case.agent == agent
                        && !case.opened.signals.is_empty()
                        && !matches!(case.state, State::Recovering | State::Closed)
                });
                if bypassed {
                    n_resumes += 1;
                }
            }
            records::KIND_STATE => {
                if let Some(change) = records::parse::<StateChange>(record, kind)
                    .filter(|change| change.to == State::Recovering)
                {
                    if let Some(case) = folder.cases().get(&change.incident) {
                        n_resumes += 1;
                        let criteria = active
                            .get(agent)
                            .and_then(|version| pacts(agent, *version))
                            .map(|doc| Criteria::from_pact(&doc))
                            .or(change.criteria.clone())
                            .unwrap_or_else(|| Criteria::for_tier(Tier::Critical));
                        let before = records.get(..position).unwrap_or(&[]);
                        if matches!(
                            check_resume(case, before, &criteria, ts),
                            Resume::Allowed { .. }
                        ) {
                            n_validated += 1;
                        }
                    }
                }
            }
            _ => {}
        }
        folder.apply(*index, record);
    }
    let cases = folder.into_cases();

    let ttcs: Vec<u64> = cases
        .values()
        .filter_map(|case| case.time_to_containment_ms())
        .collect();
    let completeness: Vec<u64> = cases
        .values()
        .map(|case| u64::from(case_file(case, records, pacts, now_ms).completeness_bp))
        .collect();
    let mut n_repeats = 0u64;
    // (agent, pattern, obligations) -> opening times.
    let mut earlier: BTreeMap<RepeatKey, Vec<u64>> = BTreeMap::new();
    for case in cases.values() {
        let mut obligations: Vec<&str> =
            case.opened.obligations.iter().map(String::as_str).collect();
        obligations.sort_unstable();
        let key = (
            case.agent.as_str(),
            case.pattern.map(|pattern| pattern.as_str()),
            obligations,
        );
        let seen = earlier.entry(key).or_default();
        if case.pattern.is_some()
            && seen
                .iter()
                .any(|opened| case.opened_ms.saturating_sub(*opened) <= REPEAT_WINDOW_MS)
        {
            n_repeats += 1;
        }
        seen.push(case.opened_ms);
    }

    let (mut n_obligations, mut n_fresh) = (0u64, 0u64);
    for (agent, version) in &active {
        let Some(doc) = pacts(agent, *version) else {
            continue;
        };
        let trials = complete_trials(records, agent);
        for obligation in &doc.obligations {
            n_obligations += 1;
            let Ok(freshness_ms) = pact::parse_duration_ms(&obligation.freshness) else {
                continue;
            };
            let newest = trials
                .iter()
                .rev()
                .find(|(_, _, suite, _)| match &obligation.measured_by.suite {
                    Some(wanted) => suite.is_some_and(|id| suite_matches(wanted, id)),
                    None => true,
                })
                .and_then(|(_, _, _, record)| u64_of(record, "ts"));
            if newest.is_some_and(|ts| now_ms.saturating_sub(ts) <= freshness_ms) {
                n_fresh += 1;
            }
        }
    }

    resolutions.sort_unstable();
    latencies.sort_unstable();
    ProgramMetrics {
        n_incidents: cases.len() as u64,
        n_open: cases
            .values()
            .filter(|case| case.state != State::Closed)
            .count() as u64,
        n_contained: ttcs.len() as u64,
        time_to_containment_ms_mean: mean(&ttcs),
        evidence_completeness_bp_mean: mean(&completeness).and_then(|bp| u32::try_from(bp).ok()),
        n_repeats,
        repeat_failure_bp: ratio_bp(n_repeats, cases.len() as u64),
        n_resumes,
        n_resumes_validated: n_validated,
        recovery_validation_bp: ratio_bp(n_validated, n_resumes),
        pact_coverage_bp: ratio_bp(n_agents_with_active_pact, n_agents),
        n_obligations,
        n_obligations_fresh: n_fresh,
        evaluation_freshness_bp: ratio_bp(n_fresh, n_obligations),
        n_exceptions_resolved: resolutions.len() as u64,
        n_exceptions_pending: review_ms.len() as u64,
        exception_resolution_ms_median: median(&resolutions),
        exception_resolution_ms_mean: mean(&resolutions),
        n_notifications: latencies.len() as u64,
        n_notifications_failed,
        communication_latency_ms_mean: mean(&latencies),
        communication_latency_ms_p95: percentile(&latencies, 95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_statistics() {
        assert_eq!(median(&[1, 3, 10]), Some(3));
        assert_eq!(median(&[1, 2, 4, 10]), Some(3));
        assert_eq!(median(&[]), None);
        assert_eq!(mean(&[1, 2]), Some(2));
        assert_eq!(percentile(&(1..=20).collect::<Vec<_>>(), 95), Some(19));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(ratio_bp(1, 3), Some(3333));
        assert_eq!(ratio_bp(1, 0), None);
    }
}
