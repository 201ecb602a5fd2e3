//! Detectors: text -> findings (canaries, prompt injection, authority claims).
//!
//! Pure: no IO, clock, threads, environment or randomness. Randomness (for new canaries) comes in
//! as bytes; everything else is a function of its inputs.

pub mod canary;

pub use canary::{new_canary, CanaryEncoding, CanaryError, CanaryHit, CanarySet};
