//! `compute` over one agent with 1,000,000 synthetic records ([`signals::fixture`]) spread over
//! 90 days.

use criterion::{criterion_group, criterion_main, Criterion};

const N_RECORDS: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let pact = pact::check(signals::fixture::PACT)
        .pact
        .expect("the bench pact checks");
    let thresholds = signals::Thresholds::for_pact(&pact);
    let now_ms = 1_800_000_000_000;
    let records = signals::fixture::records(N_RECORDS, now_ms);
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
