//! Criterion benchmark of one guard decision on the 100-rule, 1,000-canary fixture pact.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use guard::{decide, fixture, Guard, State};

fn bench_decide(c: &mut Criterion) {
    let checked = pact::check(&fixture::pact_text());
    let Some(pact) = checked.pact else {
        panic!("fixture pact does not check: {:?}", checked.diagnostics);
    };
    let guard = Guard::new(Arc::new(pact)).expect("fixture guard");
    let requests = fixture::requests();
    let mut state = State::new();
    let mut idx = 0usize;
    let mut now_ms = 1_790_000_000_000u64;
    c.bench_function("decide/100-rules-1000-canaries", |b| {
        b.iter(|| {
            idx = (idx + 1) % requests.len();
            now_ms += 1;
            decide(&guard, &requests[idx], &mut state, now_ms)
        })
    });
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
