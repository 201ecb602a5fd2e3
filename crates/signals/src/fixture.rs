//! A synthetic workload for measuring signals (and the score, and incidents) over one busy
//! agent: mostly verdicts (2% denied, some with findings), outcomes for most allowed verdicts,
//! scores, trials with their cases, observations. Shared by the criterion benchmark and
//! `pactum bench signals`, so both time the same thing.

use serde_json::{json, Value};

/// The workload's pact: two actions in two categories, an obligation measured by a suite with
/// a truth metric.
pub const PACT: &str = r#"pact: bench
version: 1
agent: acme/bot
tier: high
actions:
  lookup: { category: reads, args: { id: string, query: string } }
  refund: { category: money, args: { id: string, query: string } }
rules:
  - { id: lookups, permit: lookup }
  - { id: refunds, permit: refund }
obligations:
  - id: grounding
    metric: boundary_integrity_pass_rate
    measured_by: { suite: suites/probes.yaml, judges: [j] }
    threshold: { min: 0.9 }
    min_samples: 10
    window: 14d
    freshness: 30d
    truth_metric: resolution_rate
"#;

const DAY_MS: u64 = 86_400_000;

/// `n_records` records of agent `acme/bot` spread over the 90 days before `now_ms`.
pub fn records(n_records: u64, now_ms: u64) -> Vec<(u64, Value)> {
    let span_ms = 90 * DAY_MS;
    let n_records = n_records.max(1);
    let start_ms = now_ms.saturating_sub(span_ms);
    let mut out = Vec::with_capacity(usize::try_from(n_records).unwrap_or(0));
    let mut index = 0u64;
    let mut last_verdict = 0u64;
    while index < n_records {
        let ts = start_ms + index * span_ms / n_records;
        let record = match index % 100 {
            0..=69 => {
                last_verdict = index;
                let (action, decision) = match index % 50 {
                    0 => ("refund", "deny"),
                    1..=9 => ("refund", "allow"),
                    _ => ("lookup", "allow"),
                };
                let findings = if index % 997 == 0 {
                    json!([{"kind": "bulk", "message": "many"}])
                } else {
                    json!([])
                };
                json!({"kind": "verdict", "agent": "acme/bot", "ts": ts,
                    "request": {"action": action, "args": {"id": format!("order-{}", index % 5000),
                        "query": "where is my parcel, it was due on monday"}},
                    "verdict": {"decision": decision, "rules": [], "findings": findings, "action": action}})
            }
            70..=94 => {
                json!({"kind": "outcome", "agent": "acme/bot", "ts": ts, "status": "succeeded",
                "refs": [{"rel": "verdict", "index": last_verdict}]})
            }
            95 => {
                json!({"kind": "score", "agent": "acme/bot", "ts": ts, "points": 800 + index % 50})
            }
            96 => json!({"kind": "observation", "agent": "acme/bot", "ts": ts,
                "metric": if index % 2 == 0 { "boundary_integrity_pass_rate" } else { "resolution_rate" },
                "value_milli": 700 + (index / 100) % 200}),
            97 => json!({"kind": "trial_start", "agent": "acme/bot", "ts": ts,
                "suite": {"id": "probes", "version": 1, "digest": "sha256:00"}}),
            98 => {
                json!({"kind": "trial_case", "agent": "acme/bot", "ts": ts, "trial": index.saturating_sub(1),
                "dimension": "boundary_integrity", "status": if index % 7 == 0 { "failed" } else { "passed" },
                "hard_failures": []})
            }
            _ => {
                json!({"kind": "trial", "agent": "acme/bot", "ts": ts, "trial": index.saturating_sub(2), "complete": true,
                "n_passed": 9, "n_failed": 1, "jury_variance_bp2_mean": 100 + index % 13,
                "models": ["model-a"], "dimensions": {"boundary_integrity": {"n_passed": 9, "n_failed": 1}}})
            }
        };
        out.push((index, record));
        index += 1;
    }
    out
}
