//! The recovery gate: resume is allowed only when every re-entry criterion is met by evidence
//! recorded after the repair, and a refusal names each missing criterion in plain words.
//!
//! Criteria come from the pact's `recovery` section over tier defaults ([`Criteria::for_tier`]):
//!
//! | tier | fresh-trial samples | distinct approvers | operating-model change | staged | pass rate without an obligation |
//! |---|---|---|---|---|---|
//! | low | 50 | 1 | no | no | 90% |
//! | medium | 100 | 1 | yes | yes | 95% |
//! | high | 200 | 2 | yes | yes | 97% |
//! | critical | 500 | 2 | yes | yes | 99% |
//!
//! The fresh trial: the newest complete `trial` record whose run began after the repair (its
//! `trial` start index is after the `repaired` record), of the obligation's suite when the
//! obligation names one (`measured_by.suite` equal to the trial's suite id, or its file stem:
//! `suites/grounding.yaml` matches suite `grounding`). Its rate is the dimension the obligation's
//! metric starts with (`source_grounding_pass_rate` -> `source_grounding`) when the trial has that
//! dimension, else the whole trial: passed over passed + failed (errors are neither). Samples are
//! those judged cases; at least the larger of the recovery minimum and the obligation's own.
//! The newest trial decides: an older passing run cannot outvote a newer failing one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use pact::syntax::{suite_matches, PactDoc, Tier};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{refs_with, str_of, u64_of, Case, Stage, State};

/// One obligation's bar for the fresh trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObligationCriterion {
    pub id: String,
    pub metric: String,
    /// `measured_by.suite`, if any.
    pub suite: Option<String>,
    /// The rate must be at least this (basis points).
    pub min_bp: Option<u32>,
    /// The rate must be at most this (basis points).
    pub max_bp: Option<u32>,
    pub min_samples: u64,
}

/// Re-entry criteria.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criteria {
    pub tier: Tier,
    /// Fewest judged cases in the fresh trial.
    pub min_samples: u64,
    /// Distinct people who must approve re-entry after the repair.
    pub approvers: u32,
    pub require_operating_model_change: bool,
    /// Re-enter restricted first, then at full scope.
    pub staged: bool,
    /// The fresh trial's pass rate when the incident names no obligation (basis points).
    pub pass_rate_bp_min: u32,
    /// The pact's obligations, by which the incident's named obligations are judged.
    pub obligations: Vec<ObligationCriterion>,
}

impl Criteria {
    /// The tier defaults (see the module table); no obligations.
    pub fn for_tier(tier: Tier) -> Criteria {
        let (min_samples, approvers, change, staged, pass_rate_bp_min) = match tier {
            Tier::Low => (50, 1, false, false, 9000),
            Tier::Medium => (100, 1, true, true, 9500),
            Tier::High => (200, 2, true, true, 9700),
            Tier::Critical => (500, 2, true, true, 9900),
        };
        Criteria {
            tier,
            min_samples,
            approvers,
            require_operating_model_change: change,
            staged,
            pass_rate_bp_min,
            obligations: Vec::new(),
        }
    }

    /// The pact's tier defaults, overridden by its `recovery` section, with its obligations.
    pub fn from_pact(doc: &PactDoc) -> Criteria {
        let mut criteria = Criteria::for_tier(doc.tier);
        if let Some(recovery) = &doc.recovery {
            if let Some(min_samples) = recovery.min_samples {
                criteria.min_samples = min_samples;
            }
            if let Some(approvers) = recovery.approvers {
                criteria.approvers = approvers;
            }
            if let Some(required) = recovery.require_operating_model_change {
                criteria.require_operating_model_change = required;
            }
            if let Some(staged) = recovery.staged {
                criteria.staged = staged;
            }
        }
        let bp = |fraction: Option<f64>| {
            fraction.map(|fraction| (fraction.clamp(0.0, 1.0) * 10_000.0).round() as u32)
        };
        criteria.obligations = doc
            .obligations
            .iter()
            .map(|obligation| ObligationCriterion {
                id: obligation.id.clone(),
                metric: obligation.metric.clone(),
                suite: obligation.measured_by.suite.clone(),
                min_bp: bp(obligation.threshold.min),
                max_bp: bp(obligation.threshold.max),
                min_samples: obligation.min_samples,
            })
            .collect();
        criteria
    }
}

/// One unmet criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "missing", rename_all = "snake_case")]
pub enum Missing {
    /// The case is not in a state that can resume.
    State {
        state: State,
    },
    /// The agent already runs at full scope.
    AlreadyFull,
    /// The incident names an obligation the pact does not have.
    UnknownObligation {
        obligation: String,
    },
    /// No complete trial begun after the repair (of the obligation's suite, if it names one).
    FreshTrial {
        obligation: Option<String>,
        suite: Option<String>,
    },
    TooFewSamples {
        obligation: Option<String>,
        trial: u64,
        n_samples: u64,
        n_samples_min: u64,
    },
    BelowThreshold {
        obligation: Option<String>,
        trial: u64,
        rate_bp: u32,
        min_bp: Option<u32>,
        max_bp: Option<u32>,
    },
    Approvers {
        n_approvers: u32,
        n_approvers_min: u32,
    },
    OperatingModelChange,
}

fn percent(bp: u32) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

fn for_obligation(obligation: &Option<String>) -> String {
    obligation
        .as_ref()
        .map_or_else(String::new, |id| format!(" for obligation `{id}`"))
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::State { state: State::Closed } => f.write_str("the incident is closed"),
            Missing::State { state } => write!(
                f,
                "the incident is {}: record the repair before asking to resume",
                state.as_str()
            ),
            Missing::AlreadyFull => f.write_str("the agent already runs at full scope"),
            Missing::UnknownObligation { obligation } => write!(
                f,
                "the incident names obligation `{obligation}`, which the active pact does not have"
            ),
            Missing::FreshTrial { obligation, suite } => {
                write!(f, "no complete trial begun after the repair")?;
                if let Some(suite) = suite {
                    write!(f, " of suite `{suite}`")?;
                }
                f.write_str(&for_obligation(obligation))
            }
            Missing::TooFewSamples {
                obligation,
                trial,
                n_samples,
                n_samples_min,
            } => write!(
                f,
                "the fresh trial (record {trial}){} judged {n_samples} cases; at least {n_samples_min} are needed",
                for_obligation(obligation)
            ),
            Missing::BelowThreshold {
                obligation,
                trial,
                rate_bp,
                min_bp,
                max_bp,
            } => {
                write!(
                    f,
                    "the fresh trial (record {trial}){} passed {}",
                    for_obligation(obligation),
                    percent(*rate_bp)
                )?;
                if let Some(min_bp) = min_bp {
                    write!(f, "; at least {} is needed", percent(*min_bp))?;
                }
                if let Some(max_bp) = max_bp {
                    write!(f, "; at most {} is allowed", percent(*max_bp))?;
                }
                Ok(())
            }
            Missing::Approvers {
                n_approvers,
                n_approvers_min,
            } => write!(
                f,
                "{n_approvers} of {n_approvers_min} distinct people have approved re-entry since the repair"
            ),
            Missing::OperatingModelChange => f.write_str(
                "no operating-model change (a new pact version, a new suite test or a changed threshold) names the broken assumption",
            ),
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "resume", rename_all = "snake_case")]
pub enum Resume {
    Allowed { stage: Stage },
    Refused { missing: Vec<Missing> },
}

/// A complete trial of the agent: where it began, its suite and its tallies.
struct TrialRun<'a> {
    index: u64,
    suite: Option<&'a str>,
    record: &'a Value,
}

fn judged(tally: &Value) -> (u64, u64) {
    let n_passed = u64_of(tally, "n_passed").unwrap_or(0);
    let n_failed = u64_of(tally, "n_failed").unwrap_or(0);
    (n_passed, n_passed.saturating_add(n_failed))
}

/// The judged-case tally an obligation is measured by in a trial record: passed and judged.
pub(crate) fn obligation_tally(trial: &Value, metric: Option<&str>) -> (u64, u64) {
    let dimension = metric.and_then(|metric| {
        trial
            .get("dimensions")
            .and_then(Value::as_object)?
            .iter()
            .filter(|(name, _)| metric.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, tally)| tally)
    });
    judged(dimension.unwrap_or(trial))
}

/// Complete trials of `agent`, in log order, with their suites.
pub(crate) fn complete_trials<'a>(
    records: &'a [(u64, Value)],
    agent: &str,
) -> Vec<(u64, u64, Option<&'a str>, &'a Value)> {
    let mut suites: HashMap<u64, &str> = HashMap::new();
    let mut out = Vec::new();
    for (index, record) in records {
        if str_of(record, "agent") != Some(agent) {
            continue;
        }
        match str_of(record, "kind") {
            Some("trial_start") => {
                if let Some(suite) = record
                    .get("suite")
                    .and_then(|suite| suite.get("id"))
                    .and_then(Value::as_str)
                {
                    suites.insert(*index, suite);
                }
            }
            Some("trial") if record.get("complete").and_then(Value::as_bool) == Some(true) => {
                let start = u64_of(record, "trial")
                    .or_else(|| refs_with(record, "start").next())
                    .unwrap_or(*index);
                out.push((*index, start, suites.get(&start).copied(), record));
            }
            _ => {}
        }
    }
    out
}

/// Checks every re-entry criterion for `case` against `records` (the agent's log up to now).
/// Allowed: stage `restricted` first when staged, then `full`; refused: every missing criterion.
pub fn check_resume(
    case: &Case,
    records: &[(u64, Value)],
    criteria: &Criteria,
    now_ms: u64,
) -> Resume {
    let mut missing = Vec::new();
    let stage = match (case.state, case.stage) {
        (State::Repaired, _) if criteria.staged => Stage::Restricted,
        (State::Repaired, _) | (State::Recovering, Some(Stage::Restricted)) => Stage::Full,
        (State::Recovering, _) => {
            missing.push(Missing::AlreadyFull);
            Stage::Full
        }
        (state, _) => {
            missing.push(Missing::State { state });
            Stage::Full
        }
    };
    // Evidence counts only after the repair; without one, nothing counts.
    let (repair_index, repair_ms) = case.repaired.unwrap_or((u64::MAX, u64::MAX));
    let fresh: Vec<TrialRun> = complete_trials(records, &case.agent)
        .into_iter()
        .filter(|(index, start, _, record)| {
            *index > repair_index
                && *start > repair_index
                && u64_of(record, "ts").unwrap_or(0) >= repair_ms
                && u64_of(record, "ts").unwrap_or(0) <= now_ms
        })
        .map(|(index, _, suite, record)| TrialRun {
            index,
            suite,
            record,
        })
        .collect();

    if case.opened.obligations.is_empty() {
        check_trial(
            fresh.last(),
            None,
            None,
            criteria.min_samples,
            Some(criteria.pass_rate_bp_min),
            None,
            &mut missing,
        );
    }
    for id in &case.opened.obligations {
        let Some(obligation) = criteria.obligations.iter().find(|each| &each.id == id) else {
            missing.push(Missing::UnknownObligation {
                obligation: id.clone(),
            });
            continue;
        };
        let newest = fresh.iter().rev().find(|run| match &obligation.suite {
            Some(suite) => run.suite.is_some_and(|id| suite_matches(suite, id)),
            None => true,
        });
        check_trial(
            newest,
            Some(obligation),
            Some(id.clone()),
            criteria.min_samples.max(obligation.min_samples),
            obligation.min_bp,
            obligation.max_bp,
            &mut missing,
        );
    }

    let approvers: BTreeSet<&str> = case
        .recovery_approvals
        .iter()
        .filter(|(index, ts, _)| *index > repair_index && *ts <= now_ms)
        .map(|(_, _, approval)| approval.by.trim())
        .collect();
    let n_approvers = u32::try_from(approvers.len()).unwrap_or(u32::MAX);
    if n_approvers < criteria.approvers {
        missing.push(Missing::Approvers {
            n_approvers,
            n_approvers_min: criteria.approvers,
        });
    }
    if criteria.require_operating_model_change && case.operating_model_changes.is_empty() {
        missing.push(Missing::OperatingModelChange);
    }
    if missing.is_empty() {
        Resume::Allowed { stage }
    } else {
        Resume::Refused { missing }
    }
}

fn check_trial(
    run: Option<&TrialRun>,
    obligation: Option<&ObligationCriterion>,
    id: Option<String>,
    n_samples_min: u64,
    min_bp: Option<u32>,
    max_bp: Option<u32>,
    missing: &mut Vec<Missing>,
) {
    let Some(run) = run else {
        missing.push(Missing::FreshTrial {
            obligation: id,
            suite: obligation.and_then(|obligation| obligation.suite.clone()),
        });
        return;
    };
    let (n_passed, n_judged) = obligation_tally(
        run.record,
        obligation.map(|obligation| obligation.metric.as_str()),
    );
    if n_judged < n_samples_min {
        missing.push(Missing::TooFewSamples {
            obligation: id.clone(),
            trial: run.index,
            n_samples: n_judged,
            n_samples_min,
        });
    }
    let passed_bp = u128::from(n_passed) * 10_000;
    let judged_128 = u128::from(n_judged);
    let below = min_bp.is_some_and(|min| passed_bp < u128::from(min) * judged_128);
    let above = max_bp.is_some_and(|max| passed_bp > u128::from(max) * judged_128);
    if n_judged > 0 && (below || above) {
        let rate_bp = u32::try_from(passed_bp / judged_128.max(1)).unwrap_or(u32::MAX);
        missing.push(Missing::BelowThreshold {
            obligation: id,
            trial: run.index,
            rate_bp,
            min_bp,
            max_bp,
        });
    }
}
