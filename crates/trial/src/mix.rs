//! Mixing a static baseline suite with dynamic cases in a ratio (by default 30% static, 70%
//! dynamic) into one suite, reproducibly for a seed.
//!
//! The mix is a suite of its own, with its own digest, so a trial of it is recorded, pushed to
//! a server and scheduled like any other. Cases are drawn uniformly without replacement from
//! each side and keep their ids and their order within their suite (static ones first); cases
//! from the static side are tagged `static`, from the dynamic side `dynamic`. Nothing is
//! repeated or cut to reach a count: asking for more cases of one side than it has is an error.

use serde_json::json;

use crate::rng::Rng;
use crate::suite::{Case, Suite, SuiteDoc, CASES_MAX};

/// The static share when none is given: 30% static, 70% dynamic.
pub const STATIC_SHARE_BP_DEFAULT: u16 = 3000;
/// The largest share, in basis points (all static).
pub const SHARE_BP_MAX: u16 = 10_000;

/// Why two suites cannot be mixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// The static share is over 100%.
    #[error("the static share is {share_bp} basis points, over {SHARE_BP_MAX}")]
    Share { share_bp: u16 },
    /// More cases of one side are needed than it has.
    #[error("{n_wanted} {side} cases are needed for {n_cases} cases at this share, but the {side} suite `{suite}` has {n_available}")]
    NotEnough {
        side: &'static str,
        suite: String,
        n_wanted: usize,
        n_available: usize,
        n_cases: usize,
    },
    /// The mix would have no case.
    #[error("the mix has no case: the static suite has {n_static}, the dynamic suite {n_dynamic}, at a static share of {share_bp} basis points")]
    Empty {
        n_static: usize,
        n_dynamic: usize,
        share_bp: u16,
    },
    /// Too many cases asked for.
    #[error("{n_cases} cases is over the limit of {CASES_MAX}")]
    Limit { n_cases: usize },
    /// A case of the static suite is dynamic: the baseline must not change with production.
    #[error("case `{case}` of the static suite `{suite}` is dynamic (tagged `dynamic` or dated by `recorded_ms`); the static side must be a baseline that never changes")]
    StaticIsDynamic { suite: String, case: String },
    /// A case of the dynamic suite has no date, so the mix's staleness could not be known.
    #[error("case `{case}` of the dynamic suite `{suite}` has no `recorded_ms`; dynamic cases say when their content was recorded (`pactum trial sample` writes it)")]
    Undated { suite: String, case: String },
    /// The same case id on both sides.
    #[error("case id `{case}` is in both suites")]
    IdClash { case: String },
    /// The suite id is empty.
    #[error("the suite id is empty")]
    SuiteId,
}

/// How to mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixConfig {
    /// The static share of the cases, in basis points (`0..=10000`).
    pub static_share_bp: u16,
    /// Cases in the mix; by default as many as both sides allow at the share.
    pub n_cases: Option<usize>,
    /// Picks the cases.
    pub seed: u64,
    /// The mix's suite id (default: the static suite's, so obligations and signals that name
    /// it follow the mix).
    pub suite: Option<String>,
    /// The mix's version (default: the larger of the two suites' versions).
    pub version: Option<u64>,
}

impl Default for MixConfig {
    fn default() -> Self {
        MixConfig {
            static_share_bp: STATIC_SHARE_BP_DEFAULT,
            n_cases: None,
            seed: 0,
            suite: None,
            version: None,
        }
    }
}

/// Static cases in a mix of `n_cases` at `share_bp`, rounded half up.
fn n_static_of(n_cases: usize, share_bp: u16) -> usize {
    let scaled = n_cases as u128 * u128::from(share_bp) + u128::from(SHARE_BP_MAX / 2);
    usize::try_from(scaled / u128::from(SHARE_BP_MAX)).unwrap_or(usize::MAX)
}

/// Whether a mix of `n_cases` at `share_bp` fits in the cases both sides have.
fn fits(n_cases: usize, n_static: usize, n_dynamic: usize, share_bp: u16) -> bool {
    let n_from_static = n_static_of(n_cases, share_bp);
    n_from_static <= n_static && n_cases.saturating_sub(n_from_static) <= n_dynamic
}

/// The largest mix both sides can fill at `share_bp` without repeating a case. Fitting is
/// closed downwards (each side's part grows by at most one per case added), so start from the
/// unrounded bound and step to the exact one.
fn n_cases_max(n_static: usize, n_dynamic: usize, share_bp: u16) -> usize {
    let share = u128::from(share_bp);
    let full = u128::from(SHARE_BP_MAX);
    // A side with no share bounds nothing.
    let by_static = (n_static as u128 * full)
        .checked_div(share)
        .unwrap_or(u128::MAX);
    let by_dynamic = (n_dynamic as u128 * full)
        .checked_div(full.saturating_sub(share))
        .unwrap_or(u128::MAX);
    let n_total = n_static + n_dynamic;
    let mut n_cases = usize::try_from(by_static.min(by_dynamic))
        .unwrap_or(usize::MAX)
        .min(n_total);
    while n_cases > 0 && !fits(n_cases, n_static, n_dynamic, share_bp) {
        n_cases -= 1;
    }
    // Rounding the static part to whole cases can leave room for a few more.
    while n_cases < n_total && fits(n_cases + 1, n_static, n_dynamic, share_bp) {
        n_cases += 1;
    }
    n_cases
}

/// `n_wanted` of `0..n_available`, uniformly without replacement (a partial Fisher-Yates
/// shuffle), returned in ascending order.
fn choose(rng: &mut Rng, n_available: usize, n_wanted: usize) -> Vec<usize> {
    let mut idxs: Vec<usize> = (0..n_available).collect();
    let n_wanted = n_wanted.min(n_available);
    for slot in 0..n_wanted {
        let span = (n_available - slot) as u64;
        let pick = slot + usize::try_from(rng.below(span)).unwrap_or(0);
        idxs.swap(slot, pick);
    }
    idxs.truncate(n_wanted);
    idxs.sort_unstable();
    idxs
}

fn with_tag(case: &Case, tag: &str) -> Case {
    let mut case = case.clone();
    if !case.tags.iter().any(|existing| existing == tag) {
        case.tags.insert(0, tag.to_owned());
    }
    case
}

/// Mixes `static_suite` and `dynamic_suite` (see the module documentation).
pub fn mix(
    static_suite: &Suite,
    dynamic_suite: &Suite,
    config: &MixConfig,
) -> Result<SuiteDoc, MixError> {
    let share_bp = config.static_share_bp;
    if share_bp > SHARE_BP_MAX {
        return Err(MixError::Share { share_bp });
    }
    if let Some(case) = static_suite
        .cases()
        .iter()
        .find(|case| case.recorded_ms.is_some() || case.tags.iter().any(|tag| tag == "dynamic"))
    {
        return Err(MixError::StaticIsDynamic {
            suite: static_suite.id().to_owned(),
            case: case.id.clone(),
        });
    }
    if let Some(case) = dynamic_suite
        .cases()
        .iter()
        .find(|case| case.recorded_ms.is_none())
    {
        return Err(MixError::Undated {
            suite: dynamic_suite.id().to_owned(),
            case: case.id.clone(),
        });
    }
    let n_static = static_suite.cases().len();
    let n_dynamic = dynamic_suite.cases().len();
    let n_cases = match config.n_cases {
        Some(n_cases) if n_cases > CASES_MAX => return Err(MixError::Limit { n_cases }),
        Some(n_cases) => n_cases,
        None => n_cases_max(n_static, n_dynamic, share_bp),
    };
    if n_cases == 0 {
        return Err(MixError::Empty {
            n_static,
            n_dynamic,
            share_bp,
        });
    }
    let n_from_static = n_static_of(n_cases, share_bp);
    let n_from_dynamic = n_cases - n_from_static;
    for (side, suite, n_wanted, n_available) in [
        ("static", static_suite, n_from_static, n_static),
        ("dynamic", dynamic_suite, n_from_dynamic, n_dynamic),
    ] {
        if n_wanted > n_available {
            return Err(MixError::NotEnough {
                side,
                suite: suite.id().to_owned(),
                n_wanted,
                n_available,
                n_cases,
            });
        }
    }
    let mut rng = Rng::new(config.seed);
    let from_static = choose(&mut rng, n_static, n_from_static);
    let from_dynamic = choose(&mut rng, n_dynamic, n_from_dynamic);
    let mut cases = Vec::with_capacity(n_cases);
    let mut ids = std::collections::HashSet::new();
    for (suite, idxs, tag) in [
        (static_suite, &from_static, "static"),
        (dynamic_suite, &from_dynamic, "dynamic"),
    ] {
        for case in idxs.iter().filter_map(|idx| suite.cases().get(*idx)) {
            if !ids.insert(case.id.clone()) {
                return Err(MixError::IdClash {
                    case: case.id.clone(),
                });
            }
            cases.push(with_tag(case, tag));
        }
    }
    let suite = config
        .suite
        .clone()
        .unwrap_or_else(|| static_suite.id().to_owned());
    if suite.is_empty() {
        return Err(MixError::SuiteId);
    }
    let newest_case_ms = cases.iter().filter_map(|case| case.recorded_ms).max();
    let part = |suite: &Suite, n_taken: usize| {
        json!({
            "suite": suite.id(),
            "version": suite.version(),
            "digest": suite.digest(),
            "n_cases": suite.cases().len(),
            "n_taken": n_taken,
        })
    };
    Ok(SuiteDoc {
        suite,
        version: config
            .version
            .unwrap_or_else(|| static_suite.version().max(dynamic_suite.version())),
        description: Some(format!(
            "{n_from_static} static cases from `{}` version {} and {n_from_dynamic} dynamic cases \
             from `{}` version {}",
            static_suite.id(),
            static_suite.version(),
            dynamic_suite.id(),
            dynamic_suite.version()
        )),
        system_prompt: static_suite
            .doc()
            .system_prompt
            .clone()
            .or_else(|| dynamic_suite.doc().system_prompt.clone()),
        generated_from: Some(json!({
            "mix": {
                "static": part(static_suite, n_from_static),
                "dynamic": part(dynamic_suite, n_from_dynamic),
                "static_share_bp": share_bp,
                "seed": config.seed,
                "newest_case_ms": newest_case_ms,
            }
        })),
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{CaseKind, Expect};
    use crate::Dimension;

    fn case(id: String, recorded_ms: Option<u64>) -> Case {
        Case {
            id,
            dimension: Dimension::TaskAccuracy,
            kind: CaseKind::Single,
            turns: vec!["hello".into()],
            documents: Vec::new(),
            expect: Expect::default(),
            rubric: None,
            tags: Vec::new(),
            recorded_ms,
        }
    }

    fn suite(id: &str, n_cases: usize, dated: bool) -> Suite {
        Suite::new(SuiteDoc {
            suite: id.into(),
            version: 2,
            description: None,
            system_prompt: Some(format!("prompt of {id}")),
            generated_from: None,
            cases: (0..n_cases)
                .map(|idx| case(format!("{id}-{idx}"), dated.then_some(1_000 + idx as u64)))
                .collect(),
        })
        .unwrap()
    }

    fn count(doc: &SuiteDoc, tag: &str) -> usize {
        doc.cases
            .iter()
            .filter(|case| case.tags.iter().any(|t| t == tag))
            .count()
    }

    #[test]
    fn the_default_ratio_is_thirty_seventy_and_as_large_as_both_sides_allow() {
        let base = suite("base", 17, false);
        let fresh = suite("fresh", 100, true);
        let doc = mix(&base, &fresh, &MixConfig::default()).unwrap();
        // 17 static cases are 30% of 58 (17.4, rounded to 17; 59 would need 18); 41 dynamic
        // make the rest.
        assert_eq!(doc.cases.len(), 58);
        assert_eq!(count(&doc, "static"), 17);
        assert_eq!(count(&doc, "dynamic"), 41);
        assert_eq!(doc.suite, "base");
        assert_eq!(doc.system_prompt.as_deref(), Some("prompt of base"));
        let mixed = Suite::new(doc.clone()).unwrap();
        let newest = mixed.newest_case_ms().unwrap();
        assert_eq!(doc.generated_from.unwrap()["mix"]["newest_case_ms"], newest);
        // Dynamic cases keep their dates; static ones have none.
        assert!(mixed
            .cases()
            .iter()
            .all(|case| case.tags.contains(&"static".to_owned()) == case.recorded_ms.is_none()));
    }

    #[test]
    fn the_ratio_is_respected_for_any_count_and_share() {
        let base = suite("base", 500, false);
        let fresh = suite("fresh", 500, true);
        for (share_bp, n_cases, n_static) in [
            (3000, 10, 3),
            (3000, 101, 30),
            (3000, 105, 32), // 31.5 rounds half up
            (0, 40, 0),
            (10_000, 40, 40),
            (2500, 1, 0),
            (5000, 1, 1),
        ] {
            let config = MixConfig {
                static_share_bp: share_bp,
                n_cases: Some(n_cases),
                ..MixConfig::default()
            };
            let doc = mix(&base, &fresh, &config).unwrap();
            assert_eq!(doc.cases.len(), n_cases, "{share_bp} {n_cases}");
            assert_eq!(count(&doc, "static"), n_static, "{share_bp} {n_cases}");
            assert_eq!(count(&doc, "dynamic"), n_cases - n_static);
        }
    }

    #[test]
    fn mixing_is_deterministic_for_a_seed() {
        let base = suite("base", 50, false);
        let fresh = suite("fresh", 50, true);
        let config = |seed| MixConfig {
            n_cases: Some(20),
            seed,
            ..MixConfig::default()
        };
        let first = mix(&base, &fresh, &config(4)).unwrap();
        assert_eq!(first, mix(&base, &fresh, &config(4)).unwrap());
        assert_ne!(first.cases, mix(&base, &fresh, &config(5)).unwrap().cases);
        // Cases keep their suite's order: static first, each side ascending.
        let positions: Vec<(bool, usize)> = first
            .cases
            .iter()
            .map(|case| {
                let (side, idx) = case.id.rsplit_once('-').unwrap();
                (side == "fresh", idx.parse().unwrap())
            })
            .collect();
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(positions, sorted);
        // Across seeds every case gets picked: the draw is not a fixed prefix.
        let mut seen = std::collections::HashSet::new();
        for seed in 0..40 {
            for case in mix(&base, &fresh, &config(seed)).unwrap().cases {
                seen.insert(case.id);
            }
        }
        assert_eq!(seen.len(), 100);
    }

    #[test]
    fn bad_input_is_an_error_not_a_smaller_mix() {
        let base = suite("base", 5, false);
        let fresh = suite("fresh", 5, true);
        let config = |share_bp, n_cases| MixConfig {
            static_share_bp: share_bp,
            n_cases,
            ..MixConfig::default()
        };
        assert!(matches!(
            mix(&base, &fresh, &config(3000, Some(10))),
            Err(MixError::NotEnough {
                side: "dynamic",
                n_wanted: 7,
                n_available: 5,
                ..
            })
        ));
        assert!(matches!(
            mix(&base, &fresh, &config(9000, Some(10))),
            Err(MixError::NotEnough {
                side: "static",
                n_wanted: 9,
                ..
            })
        ));
        assert_eq!(
            mix(&base, &fresh, &config(10_001, None)),
            Err(MixError::Share { share_bp: 10_001 })
        );
        assert!(matches!(
            mix(&base, &fresh, &config(3000, Some(CASES_MAX + 1))),
            Err(MixError::Limit { .. })
        ));
        assert!(matches!(
            mix(&base, &suite("none", 0, true), &config(3000, None)),
            Err(MixError::Empty { .. })
        ));
        // Sides the wrong way round: the baseline is dated, the dynamic side is not.
        assert!(matches!(
            mix(&fresh, &base, &config(3000, None)),
            Err(MixError::StaticIsDynamic { .. })
        ));
        assert!(matches!(
            mix(&base, &suite("undated", 3, false), &config(3000, None)),
            Err(MixError::Undated { .. })
        ));
        assert_eq!(
            mix(&base, &suite("base", 5, true), &config(5000, Some(10))),
            Err(MixError::IdClash {
                case: "base-0".into()
            })
        );
        let message = mix(&base, &fresh, &config(3000, Some(10)))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("7 dynamic cases are needed"),
            "{message}"
        );
        assert!(message.contains("`fresh`"), "{message}");
    }

    #[test]
    fn largest_mix_fits_both_sides() {
        for n_static in 0..30 {
            for n_dynamic in 0..30 {
                for share_bp in [0, 1, 2500, 3000, 3333, 5000, 7000, 9999, 10_000] {
                    let n_cases = n_cases_max(n_static, n_dynamic, share_bp);
                    // Checked against a plain search over every size.
                    let expected = (0..=n_static + n_dynamic)
                        .rev()
                        .find(|n| {
                            let n_from_static = n_static_of(*n, share_bp);
                            n_from_static <= n_static && n - n_from_static <= n_dynamic
                        })
                        .unwrap();
                    assert_eq!(n_cases, expected, "{n_static} {n_dynamic} {share_bp}");
                }
            }
        }
    }
}
