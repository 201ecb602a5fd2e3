//! `GET /v1/agents/{id}/shadow?since=24h`: what the agent's observed (unenforced) verdicts would
//! have done, counted per (action, decision, rule) over a period.
//!
//! The read is bounded: the period's first log index is found by a binary search over the
//! log's timestamps (about log2(n) single-record reads), then the agent's `verdict` records are
//! read from there through the store's agent index, at most [`SHADOW_VERDICTS_READ_MAX`] of
//! them, oldest first. When the bound is hit, the answer says so (`bound.hit`) and names the
//! last record read: the newest part of the period is then missing, never silently.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::agents::READ_ROLES;
use crate::app::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::wire::format_time_ms;

/// Most verdict records one shadow report reads.
pub const SHADOW_VERDICTS_READ_MAX: usize = 100_000;
/// Verdict records read per page.
const PAGE_RECORDS: usize = 10_000;
/// Most (action, decision, rule) groups reported; further groups are counted in
/// `n_groups_omitted`.
pub const SHADOW_GROUPS_MAX: usize = 1000;
/// Longest period, in milliseconds (a year).
pub const SHADOW_PERIOD_MS_MAX: u64 = 366 * 24 * 60 * 60 * 1000;
/// The period when `since` is not given.
pub const SHADOW_PERIOD_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;
/// Records are appended in batches from concurrent requests, so timestamps are ordered only
/// roughly: the search starts this much before the period and the records are then filtered
/// by their own `ts`.
const TS_SLACK_MS: u64 = 60_000;

/// Parses the query: `since=<duration>` (`24h`, `7d`, `90m`).
fn period_ms(query: Option<&str>) -> Result<u64, ApiError> {
    let mut period_ms = SHADOW_PERIOD_MS_DEFAULT;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "since" {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("unknown query parameter `{name}`; this takes `since`"),
            ));
        }
        let duration = humantime::parse_duration(value).map_err(|_| {
            ApiError::bad_request(
                "invalid-query",
                format!("since `{value}` is not a duration such as 24h, 7d or 90m"),
            )
        })?;
        period_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if period_ms == 0 || period_ms > SHADOW_PERIOD_MS_MAX {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("since `{value}` must be more than 0 and at most 366d"),
            ));
        }
    }
    Ok(period_ms)
}

fn record_ts(app: &AppState, index: u64) -> Result<u64, ApiError> {
    let bytes = app.log().get(index)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    Ok(value["ts"].as_u64().unwrap_or(0))
}

/// The first log index whose record is not older than `since_ms` (roughly; see
/// [`TS_SLACK_MS`]).
fn first_index_since(app: &AppState, since_ms: u64) -> Result<u64, ApiError> {
    let (mut low, mut high) = (0u64, app.log().size()?);
    while low < high {
        let mid = low + (high - low) / 2;
        if record_ts(app, mid)? < since_ms {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    Ok(low)
}

#[derive(Default)]
struct Group {
    n_verdicts: u64,
    first_record: u64,
    last_record: u64,
}

fn decision_rank(decision: &str) -> u8 {
    match decision {
        "halted" => 0,
        "deny" => 1,
        "review" => 2,
        "allow" => 3,
        _ => 4,
    }
}

fn report(app: &AppState, agent: &str, now_ms: u64, period_ms: u64) -> Result<Value, ApiError> {
    let since_ms = now_ms.saturating_sub(period_ms);
    let mut next_idx = first_index_since(app, since_ms.saturating_sub(TS_SLACK_MS))?;
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    let mut n_groups_omitted = 0u64;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let (mut n_read, mut n_observed) = (0usize, 0u64);
    let mut last_read = None;
    let mut hit = false;
    loop {
        let page_max = PAGE_RECORDS.min(SHADOW_VERDICTS_READ_MAX - n_read);
        let page = app
            .log()
            .agent_records(agent, next_idx, &["verdict"], page_max)?;
        let n_page = page.len();
        for (index, bytes) in page {
            n_read += 1;
            last_read = Some(index);
            next_idx = index + 1;
            let Ok(record) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if record["enforced"] != json!(false) || record["ts"].as_u64().unwrap_or(0) < since_ms {
                continue;
            }
            n_observed += 1;
            let verdict = &record["verdict"];
            let decision = verdict["decision"].as_str().unwrap_or("?").to_string();
            let action = verdict["action"].as_str().unwrap_or("?").to_string();
            *totals.entry(decision.clone()).or_default() += 1;
            let mut rules: Vec<String> = verdict["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|rule| rule.as_str().map(str::to_string))
                .collect();
            if rules.is_empty() {
                rules.push(String::new());
            }
            for rule in rules {
                let key = (action.clone(), decision.clone(), rule);
                if !groups.contains_key(&key) && groups.len() >= SHADOW_GROUPS_MAX {
                    n_groups_omitted += 1;
                    continue;
                }
                let group = groups.entry(key).or_insert(Group {
                    n_verdicts: 0,
                    first_record: index,
                    last_record: index,
                });
                group.n_verdicts += 1;
                group.last_record = index;
            }
        }
        if n_read >= SHADOW_VERDICTS_READ_MAX {
            // Hit only if there was more to read.
            hit = !app
                .log()
                .agent_records(agent, next_idx, &["verdict"], 1)?
                .is_empty();
            break;
        }
        if n_page < page_max {
            break;
        }
    }
    let mut rows: Vec<(&(String, String, String), &Group)> = groups.iter().collect();
    rows.sort_by(|(a_key, a), (b_key, b)| {
        decision_rank(&a_key.1)
            .cmp(&decision_rank(&b_key.1))
            .then(b.n_verdicts.cmp(&a.n_verdicts))
            .then(a_key.cmp(b_key))
    });
    let groups: Vec<Value> = rows
        .into_iter()
        .map(|((action, decision, rule), group)| {
            json!({
                "action": action,
                "decision": decision,
                "rule": rule,
                "n_verdicts": group.n_verdicts,
                "first_record": group.first_record,
                "last_record": group.last_record,
                "example_record": group.first_record,
            })
        })
        .collect();
    Ok(json!({
        "agent": agent,
        "since": format_time_ms(since_ms),
        "until": format_time_ms(now_ms),
        "period_ms": period_ms,
        "totals": {
            "n_observed": n_observed,
            "n_allow": totals.get("allow").copied().unwrap_or(0),
            "n_review": totals.get("review").copied().unwrap_or(0),
            "n_deny": totals.get("deny").copied().unwrap_or(0),
            "n_halted": totals.get("halted").copied().unwrap_or(0),
        },
        "groups": groups,
        "n_groups_omitted": n_groups_omitted,
        "n_verdicts_read": n_read,
        "bound": {
            "verdicts_read_max": SHADOW_VERDICTS_READ_MAX,
            "hit": hit,
            "read_to_record": last_read,
        },
    }))
}

/// `GET /v1/agents/{id}/shadow?since=24h`.
pub(crate) async fn shadow(
    app: &AppState,
    caller: &Caller,
    agent: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    caller.require_for_agent(READ_ROLES, agent)?;
    app.agent(agent)?;
    let period_ms = period_ms(query)?;
    let now = app.now_ms();
    let worker = app.clone();
    let owned_agent = agent.to_string();
    let body = tokio::task::spawn_blocking(move || report(&worker, &owned_agent, now, period_ms))
        .await
        .map_err(|err| ApiError::internal(format!("the shadow report failed: {err}")))??;
    Ok(crate::json::json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_durations_within_a_year() {
        assert_eq!(period_ms(None).unwrap(), SHADOW_PERIOD_MS_DEFAULT);
        assert_eq!(period_ms(Some("since=90m")).unwrap(), 90 * 60 * 1000);
        for bad in ["since=soon", "since=0s", "since=400d", "until=1h"] {
            assert!(period_ms(Some(bad)).is_err(), "{bad}");
        }
    }
}
