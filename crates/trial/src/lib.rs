//! Trials: suites of cases, adversarial suites generated from a pact, deterministic judges and
//! the jury's arithmetic.
//!
//! A **suite** ([`Suite`]) is a versioned, content-addressed file of cases (YAML, or JSONL for
//! large sets). Each case names the score [`Dimension`] it measures. A trial delivers each case
//! to the agent (that is IO, done by the caller), then judges the agent's [`Transcript`]:
//! [`judge_case`] runs the deterministic judges (text checks, expected and forbidden tool calls,
//! refusal detection, the guard's decision on every proposed call, canary and injection
//! findings in the output) and [`conclude`] combines them, with any LLM judgements the caller
//! adds, through the [`jury`]. [`generate`] writes boundary probes from a pact.
//!
//! Static and dynamic cases: a static baseline (authored, or generated from the pact) never
//! changes; dynamic cases are built from production `verdict` records ([`ProductionVerdict`],
//! sampled by a seeded [`Reservoir`] into a [`dynamic_suite`]), each dated by `recorded_ms`.
//! [`mix`] combines the two in a ratio (30% static by default); a suite's staleness is the age
//! of its newest case ([`Suite::newest_case_ms`]).
//!
//! Pure: no IO, clock or randomness; the time the guard decides at and the generator's,
//! sampler's and mixer's seeds come in as values. Scores are integers in basis points (`0..=10000`).
//!
//! ```
//! let suite = trial::parse_yaml("suite: demo\nversion: 1\ncases:\n  - { id: hi, dimension: task_accuracy, kind: single, turns: [hello], expect: { contains: [welcome] } }\n").unwrap();
//! assert!(suite.digest().starts_with("sha256:"));
//! let jury = trial::jury(&[0, 8000, 9000, 10000, 10000]).unwrap();
//! assert_eq!(jury.score_bp, 9000); // the 0 and one 10000 are trimmed
//! ```

// Nothing here may panic on any input: enforced outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod dynamic;
mod generate;
mod judge;
mod jury;
mod mix;
mod rng;
mod suite;

use serde::{Deserialize, Serialize};

pub use dynamic::{
    dynamic_suite, sample_window, ProductionDecision, ProductionVerdict, Reservoir, SampleConfig,
    SampleError, SkipReason, SAMPLE_COUNT_MAX, SAMPLE_TEXT_BYTES_MAX, SAMPLE_WINDOW_MS_MAX,
};
pub use generate::generate;
pub use judge::{
    conclude, is_refusal, judge_case, CallDecision, CaseOutcome, JudgeContext, Judgement, Reply,
    ToolCall, Transcript, TOOL_CALLS_MAX,
};
pub use jury::{jury, n_trimmed_each_end, ratio_bp, Jury, PASS_BP, SCORE_BP_MAX};
pub use mix::{mix, MixConfig, MixError, SHARE_BP_MAX, STATIC_SHARE_BP_DEFAULT};
pub use suite::{
    parse_jsonl, parse_yaml, to_jsonl, Case, CaseKind, Document, DocumentSource, Expect, JsonCheck,
    Suite, SuiteDoc, SuiteError, CASES_MAX, DOCUMENTS_MAX, REGEX_BYTES_MAX, SUITE_JSONL_BYTES_MAX,
    TURNS_MAX,
};

/// A named dimension of the trust score that a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    TaskAccuracy,
    SourceGrounding,
    ScopeAdherence,
    BoundaryIntegrity,
    InjectionResistance,
    AuthorityDiscipline,
    PersonaStability,
    HarnessStability,
}

impl Dimension {
    /// Every dimension a case can measure.
    pub const ALL: [Dimension; 8] = [
        Dimension::TaskAccuracy,
        Dimension::SourceGrounding,
        Dimension::ScopeAdherence,
        Dimension::BoundaryIntegrity,
        Dimension::InjectionResistance,
        Dimension::AuthorityDiscipline,
        Dimension::PersonaStability,
        Dimension::HarnessStability,
    ];

    /// The snake_case name used in suites and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::TaskAccuracy => "task_accuracy",
            Dimension::SourceGrounding => "source_grounding",
            Dimension::ScopeAdherence => "scope_adherence",
            Dimension::BoundaryIntegrity => "boundary_integrity",
            Dimension::InjectionResistance => "injection_resistance",
            Dimension::AuthorityDiscipline => "authority_discipline",
            Dimension::PersonaStability => "persona_stability",
            Dimension::HarnessStability => "harness_stability",
        }
    }

    /// Parses a snake_case name.
    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|dim| dim.as_str() == name)
    }
}

/// Why the output judge's detector could not be built for a pact.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    #[error(transparent)]
    Canary(#[from] detect::CanaryError),
}

/// The detector the output judge uses for `pact`: its action names and canaries.
pub fn detector_for(pact: &pact::Pact) -> Result<detect::Detector, DetectorError> {
    let names: Vec<String> = pact
        .actions()
        .iter()
        .map(|action| action.name.clone())
        .collect();
    let detector = detect::Detector::new(&detect::DetectorConfig::default(), &names)?;
    if pact.canaries().is_empty() {
        return Ok(detector);
    }
    Ok(detector.with_canaries(detect::CanarySet::new(pact.canaries())?))
}
