//! Watching signals: at once on every verdict with an alarming finding (canary, call outside the
//! catalog, missing authority, bulk), and periodically over each agent's records (rates, trends,
//! drift, staleness, proxy against truth). Tripped signals go to the response engine.
//!
//! `GET /v1/agents/{id}/signals` shows every signal's current reading; `POST` evaluates and
//! responds now (what the periodic watcher does every `limits.signals_check_ms`). Answering
//! evaluations also record the agent's score once a day ([`SCORE_RECORD_INTERVAL_MS`]), the
//! history its velocity and swing signals read.

use std::time::Duration;

use serde_json::{json, Value};

use crate::app::AppState;
use crate::problem::ApiError;
use crate::respond::{respond, Level, Taken, Trip};

/// Signals answered at once, which stay answered until the agent is resumed.
const IMMEDIATE_SIGNALS: [&str; 4] = [
    "canary_seen",
    "call_outside_catalog",
    "authority_missing",
    "bulk_operation",
];

/// Finding kinds that make a verdict worth an immediate look.
const ALARMING_FINDINGS: [&str; 5] = [
    "canary",
    "unknown_action",
    "authority_missing",
    "authority_invalid",
    "bulk",
];

fn trip_of(reading: &signals::Reading) -> Option<Trip> {
    let level = match reading.level {
        signals::Level::Ok => return None,
        signals::Level::Warning => Level::Warning,
        signals::Level::Critical => Level::Critical,
    };
    Some(Trip {
        signal: reading.signal.to_string(),
        level,
        pattern: reading.pattern.map(|pattern| pattern.as_str().to_owned()),
        category: reading.category.clone(),
        obligation: reading.obligation.clone(),
        value: reading.value,
        threshold: reading.threshold,
        unit: reading.unit.as_str(),
        since_ms: reading.since_ms,
        evidence: reading.evidence.clone(),
        n_evidence: reading.n_evidence,
        message: reading.message.clone(),
    })
}

/// A reading as JSON.
pub fn reading_json(reading: &signals::Reading) -> Value {
    json!({
        "signal": reading.signal,
        "level": reading.level.as_str(),
        "pattern": reading.pattern.map(signals::Pattern::as_str),
        "category": reading.category,
        "obligation": reading.obligation,
        "value": reading.value,
        "threshold": reading.threshold,
        "unit": reading.unit.as_str(),
        "since_ms": reading.since_ms,
        "evidence": reading.evidence,
        "n_evidence": reading.n_evidence,
        "message": reading.message,
    })
}

/// Right after a verdict is durable: immediate signals, answered before the caller hears back,
/// so the next decision already sees a halt. `decided_ms` is the verdict record's `ts`: the
/// anomaly began then, not when the signal was computed.
pub async fn after_verdict(
    app: &AppState,
    agent: &str,
    index: u64,
    decided_ms: u64,
    verdict: &Value,
) -> Result<Vec<Taken>, ApiError> {
    let alarming = verdict["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|finding| {
            finding["kind"]
                .as_str()
                .is_some_and(|kind| ALARMING_FINDINGS.contains(&kind))
        });
    if !alarming {
        return Ok(Vec::new());
    }
    let record = json!({ "kind": "verdict", "agent": agent, "ts": decided_ms, "verdict": verdict });
    let trips: Vec<Trip> = signals::immediate(index, &record)
        .iter()
        .filter_map(trip_of)
        .collect();
    if trips.is_empty() {
        return Ok(Vec::new());
    }
    respond(app, agent, &trips).await
}

/// Every signal of `agent` now; with `answer`, tripped ones go to the response engine.
pub async fn evaluate(
    app: &AppState,
    agent: &str,
    answer: bool,
) -> Result<(Vec<signals::Reading>, Vec<Taken>), ApiError> {
    let slot = app.agent(agent)?;
    let Some(guard) = crate::app::lock_runtime(&slot).guard.clone() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let eval_texts = evaluation_texts(app, agent);
    let now = app.now_ms();
    let worker = app.clone();
    let owned_agent = agent.to_owned();
    let (readings, returned, score_due) = tokio::task::spawn_blocking(move || {
        let records = enforced_records(worker.agent_records(&owned_agent)?);
        let pact = guard.pact();
        let thresholds = signals::Thresholds::for_pact(pact);
        let readings = signals::compute(&records, pact, &eval_texts, &thresholds, now);
        let score_due = (answer && score_is_due(&records, now)).then(|| {
            score::compute(&records, &score::Config::for_pact(pact.doc()), now)
                .to_record(&owned_agent, now)
        });
        Ok::<_, ApiError>((readings, last_return(&records), score_due))
    })
    .await
    .map_err(|err| ApiError::internal(format!("signal evaluation failed: {err}")))??;
    if !answer {
        return Ok((readings, Vec::new()));
    }
    if let Some(mut record) = score_due.filter(|record| !record["points"].is_null()) {
        // The score's history, which velocity and swing are measured against.
        let members = record.as_object_mut().map_or(Value::Null, |members| {
            members.retain(|name, _| !matches!(name.as_str(), "kind" | "agent" | "ts"));
            Value::Object(std::mem::take(members))
        });
        app.append_one(crate::app::make_record("score", agent, now, members)?)
            .await?;
    }
    let trips: Vec<Trip> = readings.iter().filter_map(trip_of).collect();
    app.active_signals()
        .retain(agent, &trips, &|signal| IMMEDIATE_SIGNALS.contains(&signal));
    let fresh: Vec<Trip> = trips
        .into_iter()
        .filter(|trip| is_news(trip, returned))
        .collect();
    let taken = respond(app, agent, &fresh).await?;
    Ok((readings, taken))
}

/// Whether a tripped signal is news since the agent's latest return to service (`returned`:
/// its record index and time). Signals are computed over windows (a day for the immediate
/// ones, weeks for rates) that still hold the evidence an incident was opened on after the
/// agent came back through its recovery gate; answering that evidence again would halt or
/// restrict the agent and open a new incident at the next evaluation after every resume. A
/// trip is news when some of its evidence is newer than the return, or its anomaly began after
/// it (a suite going stale, outcomes falling due: time alone trips those).
fn is_news(trip: &Trip, returned: Option<(u64, u64)>) -> bool {
    let Some((returned_idx, returned_ms)) = returned else {
        return true;
    };
    trip.evidence
        .last()
        .is_none_or(|newest| *newest > returned_idx)
        || trip.since_ms.is_some_and(|since| since > returned_ms)
}

/// The records signals and the score read: every record but observed verdicts (`"enforced":
/// false`, see [`crate::decide::Mode`]), which would have denied or halted nothing, so they
/// count neither as denials nor as calls outside the catalog, canaries or outcomes due.
pub fn enforced_records(mut records: Vec<(u64, Value)>) -> Vec<(u64, Value)> {
    records.retain(|(_, record)| !(record["kind"] == "verdict" && record["enforced"] == false));
    records
}

/// How often the watcher records an agent's score (`score` records are the history that
/// `score_velocity` and `score_swing` read).
pub const SCORE_RECORD_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether the agent's newest `score` record is older than [`SCORE_RECORD_INTERVAL_MS`].
fn score_is_due(records: &[(u64, Value)], now_ms: u64) -> bool {
    records
        .iter()
        .rev()
        .find(|(_, record)| record["kind"] == "score")
        .and_then(|(_, record)| record["ts"].as_u64())
        .is_none_or(|ts| now_ms.saturating_sub(ts) >= SCORE_RECORD_INTERVAL_MS)
}

/// The agent's latest return to service, as its record index and time: a `resume` record, or
/// an incident moving to `recovering` (a staged re-entry lifts no halt but is a return all the
/// same).
fn last_return(records: &[(u64, Value)]) -> Option<(u64, u64)> {
    records
        .iter()
        .rev()
        .find(|(_, record)| {
            record["kind"] == "resume"
                || (record["kind"] == incident::records::KIND_STATE && record["to"] == "recovering")
        })
        .map(|(index, record)| (*index, record["ts"].as_u64().unwrap_or(0)))
}

/// Evaluates every agent's signals every `Limits::signals_check_ms` (0: never) and answers
/// what tripped, until the server stops.
pub fn spawn_watcher(app: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every_ms = app.limits().signals_check_ms;
    if every_ms == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(every_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            for agent in app.agent_ids() {
                if let Err(err) = evaluate(&app, &agent, true).await {
                    eprintln!("pactum serve: evaluating signals of `{agent}`: {err:?}");
                }
            }
        }
    }))
}

/// `GET|POST /v1/agents/{id}/signals`: readings; `POST` also answers what tripped.
pub async fn handle(app: &AppState, agent: &str, answer: bool) -> Result<Value, ApiError> {
    let (readings, taken) = evaluate(app, agent, answer).await?;
    Ok(json!({
        "agent": agent,
        "readings": readings.iter().map(reading_json).collect::<Vec<_>>(),
        "responses": taken.iter().map(|taken| json!({
            "signal": taken.signal,
            "response": crate::respond::response_name(taken.response),
            "record": taken.response_record,
            "effect": taken.effect_record,
        })).collect::<Vec<_>>(),
    }))
}

/// Inputs of the suites that measure `agent`'s obligations (turns and documents), the
/// evaluation side of `input_shift`. Empty when no uploaded suite measures the active pact.
fn evaluation_texts(app: &AppState, agent: &str) -> Vec<String> {
    let Ok(measured) = app.measured_obligations(agent) else {
        return Vec::new();
    };
    let mut texts = Vec::new();
    for (_, suite_id) in measured {
        let Ok(Some(row)) = app.registry().suite(&suite_id) else {
            continue;
        };
        let Ok(suite) = crate::trials::parse_suite_source(&row.source, &row.format) else {
            continue;
        };
        for case in suite.cases() {
            texts.extend(case.turns.iter().cloned());
            texts.extend(case.documents.iter().map(|document| document.text.clone()));
        }
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(evidence: Vec<u64>, since_ms: Option<u64>) -> Trip {
        Trip {
            signal: "canary_seen".into(),
            level: Level::Critical,
            pattern: Some("injection".into()),
            category: None,
            obligation: None,
            value: Some(1),
            threshold: Some(0),
            unit: "count",
            since_ms,
            evidence,
            n_evidence: 1,
            message: String::new(),
        }
    }

    #[test]
    fn observed_verdicts_are_left_out_of_signals() {
        let records = vec![
            (
                1,
                json!({ "kind": "verdict", "verdict": { "decision": "deny" } }),
            ),
            (
                2,
                json!({ "kind": "verdict", "enforced": false, "verdict": { "decision": "deny" } }),
            ),
            (3, json!({ "kind": "outcome", "enforced": false })),
        ];
        let kept: Vec<u64> = enforced_records(records)
            .iter()
            .map(|(idx, _)| *idx)
            .collect();
        assert_eq!(kept, [1, 3]);
    }

    #[test]
    fn a_score_is_recorded_once_a_day() {
        let day = SCORE_RECORD_INTERVAL_MS;
        assert!(score_is_due(&[], 5 * day));
        let records = vec![
            (1, json!({ "kind": "score", "ts": day })),
            (2, json!({ "kind": "verdict", "ts": 3 * day })),
        ];
        assert!(!score_is_due(&records, 2 * day - 1));
        assert!(score_is_due(&records, 2 * day));
    }

    #[test]
    fn evidence_from_before_a_return_to_service_is_not_answered_again() {
        let returned = Some((100, 5_000));
        assert!(is_news(&trip(vec![40, 90], Some(1_000)), None));
        assert!(!is_news(&trip(vec![40, 90], Some(1_000)), returned));
        assert!(is_news(&trip(vec![40, 101], Some(1_000)), returned));
        // Time alone tripped it after the return (a suite went stale since).
        assert!(is_news(&trip(vec![90], Some(6_000)), returned));
        assert!(is_news(&trip(vec![], None), returned));
        let records = vec![
            (7, json!({ "kind": "resume", "ts": 10 })),
            (
                8,
                json!({ "kind": "incident_state", "to": "repaired", "ts": 20 }),
            ),
            (
                9,
                json!({ "kind": "incident_state", "to": "recovering", "ts": 30 }),
            ),
            (10, json!({ "kind": "verdict", "ts": 40 })),
        ];
        assert_eq!(last_return(&records), Some((9, 30)));
        assert_eq!(last_return(&records[..2]), Some((7, 10)));
        assert_eq!(last_return(&records[1..2]), None);
    }
}
