//! The guard: `decide(request, pact, state, now) -> verdict`, pure and deterministic.
