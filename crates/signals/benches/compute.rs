//! `compute` over one agent with 1,000,000 synthetic records spread over 90 days: mostly
//! verdicts (2% denied, some with findings), outcomes for most allowed verdicts, hourly scores,
//! weekly trials with their cases, daily observations.

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

const PACT: &str = r#"pact: bench
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

const N_RECORDS: u64 = 1_000_000;
const DAY_MS: u64 = 86_400_000;

fn records(now_ms: u64) -> Vec<(u64, Value)> {
    let span_ms = 90 * DAY_MS;
    let start_ms = now_ms - span_ms;
    let mut out = Vec::with_capacity(N_RECORDS as usize);
    let mut index = 0u64;
    let mut last_verdict = 0u64;
    while index < N_RECORDS {
        let ts = start_ms + index * span_ms / N_RECORDS;
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
            98 => json!({"kind": "trial_case", "agent": "acme/bot", "ts": ts, "trial": index - 1,
                "dimension": "boundary_integrity", "status": if index % 7 == 0 { "failed" } else { "passed" },
                "hard_failures": []}),
            _ => {
                json!({"kind": "trial", "agent": "acme/bot", "ts": ts, "trial": index - 2, "complete": true,
                "n_passed": 9, "n_failed": 1, "jury_variance_bp2_mean": 100 + index % 13,
                "models": ["model-a"], "dimensions": {"boundary_integrity": {"n_passed": 9, "n_failed": 1}}})
            }
        };
        out.push((index, record));
        index += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let pact = pact::check(PACT).pact.expect("the bench pact checks");
    let thresholds = signals::Thresholds::for_pact(&pact);
    let now_ms = 1_800_000_000_000;
    let records = records(now_ms);
    let eval_texts: Vec<String> = (0..200)
        .map(|case| format!("customer asks about order {case} and a refund"))
        .collect();
    let mut group = c.benchmark_group("compute");
    group.throughput(criterion::Throughput::Elements(N_RECORDS));
    group.bench_function("one_agent_1m_records", |b| {
        b.iter(|| signals::compute(&records, &pact, &eval_texts, &thresholds, now_ms))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
