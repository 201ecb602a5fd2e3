//! The trust score: evidence records -> dimensions -> a composite from 0 to 1000, with its
//! confidence, freshness and velocity.
//!
//! Input is the agent's records from the evidence log, each with its log index, and the time
//! `now_ms`; nothing else. Each dimension is a rate over its samples:
//!
//! - trial dimensions (`task_accuracy`, `boundary_integrity`, `injection_resistance`, ...): the
//!   `trial_case` records that name the dimension; passed over passed + failed (errors are
//!   neither, and are counted separately);
//! - `scope_adherence` also counts production `verdict` records: `allow` and `review` are in
//!   scope, `deny` and `halted` are attempts outside the pact;
//! - `outcome_reliability`: allowed verdicts whose `outcome` reports `executed`, over allowed
//!   verdicts;
//! - `harness_stability` also counts consistency: `trial_case` records of the same suite and the
//!   same base case id (the id up to [`PERTURBATION_SEPARATOR`], so `refund-direct~2` is a
//!   perturbation of `refund-direct`) form a group once they hold two or more pass/fail
//!   verdicts (repeats across trials, or perturbations); a group whose verdicts all agree is a
//!   success;
//! - `evaluation_freshness`: judged `trial_case` records dated within the freshness window, over
//!   all judged `trial_case` records (only this dimension reacts to the passing of time);
//! - `incident_history`: weeks (counted from the Unix epoch) in which the agent has evidence
//!   (verdicts, trial cases, incidents); a week with an `incident_opened` record of severity
//!   `medium`, `high` or `critical` (or an unknown severity) fails, a `low` one does not;
//! - `dispute_record`: resolved disputes (`dispute_resolved` with `finding` `rejected` is a
//!   success, `upheld` a failure); open disputes are not counted.
//!
//! Every dimension carries its sample count, a Wilson 95% interval, the age of its newest
//! evidence and the record indexes it came from. The composite is the weighted mean (weights per
//! risk tier) of the dimensions that have evidence, times 1000; its interval is the same mean of
//! the Wilson bounds. Confidence comes from sample counts; evidence older than the freshness
//! window marks a dimension stale and lowers its confidence, but never changes its value:
//! inactivity alone does not push a score toward zero.
//!
//! Scores and rates in outputs are integers (points, basis points); floats stay inside.
//!
//! ```
//! let interval = score::wilson_bp(8, 10).unwrap();
//! assert_eq!(interval, (4901, 9434)); // 0.490157 .. 0.943317, rounded outward
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

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// z for a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;
/// Record indexes listed per dimension (the newest); the count is always complete.
pub const INDEXES_LISTED_MAX: usize = 32;
/// One week, in milliseconds.
pub const WEEK_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Velocity is computed only against a `score` record at least this old: a change over minutes,
/// scaled to a week, is not a trend.
pub const VELOCITY_SPAN_MS_MIN: u64 = 24 * 60 * 60 * 1000;
/// Velocity needs at least this many earlier `score` records.
pub const VELOCITY_SCORES_MIN: usize = 2;
/// A change of more than this many points between two computations is flagged.
pub const SWING_POINTS_MAX: i64 = 200;
/// Separates a case id from its perturbation suffix (`base~variant`).
pub const PERTURBATION_SEPARATOR: char = '~';

/// The dimensions of the score, in display order (`pact::SCORE_DIMENSIONS` keeps the same list
/// for the pact's `score:` section; `the_pact_language_names_the_same_dimensions` checks it).
pub const DIMENSIONS: [&str; 12] = [
    "task_accuracy",
    "source_grounding",
    "scope_adherence",
    "boundary_integrity",
    "injection_resistance",
    "authority_discipline",
    "persona_stability",
    "harness_stability",
    "outcome_reliability",
    "evaluation_freshness",
    "incident_history",
    "dispute_record",
];

/// How much to trust a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    None,
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::None => "none",
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
    fn lowered(self) -> Confidence {
        match self {
            Confidence::High => Confidence::Medium,
            Confidence::Medium | Confidence::Low => Confidence::Low,
            Confidence::None => Confidence::None,
        }
    }
}

/// Settings; [`Config::for_tier`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Weight of each dimension (any non-negative integers; only ratios matter).
    pub weights: BTreeMap<String, u32>,
    /// Evidence older than this is stale.
    pub freshness_ms: u64,
    /// Samples below which confidence is `low`.
    pub samples_medium_min: u64,
    /// Samples from which confidence is `high`.
    pub samples_high_min: u64,
}

impl Config {
    /// Defaults for a risk tier (`low`, `medium`, `high`, `critical`; anything else is `medium`).
    /// Higher tiers weigh the boundaries (scope, probes, injection, authority) more and task
    /// accuracy less, and want fresher evidence. A pact may override these later.
    pub fn for_tier(tier: &str) -> Config {
        let (weights, freshness_days): ([u32; 12], u64) = match tier {
            "low" => ([30, 15, 15, 10, 10, 5, 5, 5, 5, 5, 5, 5], 90),
            "high" => ([15, 10, 20, 15, 15, 10, 5, 5, 5, 5, 10, 10], 30),
            "critical" => ([10, 10, 20, 15, 20, 15, 5, 0, 5, 5, 10, 10], 14),
            _ => ([20, 15, 15, 15, 10, 10, 5, 5, 5, 5, 5, 5], 60),
        };
        Config {
            weights: DIMENSIONS
                .iter()
                .zip(weights)
                .map(|(name, weight)| ((*name).to_owned(), weight))
                .collect(),
            freshness_ms: freshness_days * 24 * 60 * 60 * 1000,
            samples_medium_min: 30,
            samples_high_min: 200,
        }
    }

    /// A pact's tier defaults with its `score:` overrides (weights, freshness).
    pub fn for_pact(doc: &pact::syntax::PactDoc) -> Config {
        use pact::syntax::Tier;
        let tier = match doc.tier {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
            Tier::Critical => "critical",
        };
        let config = Config::for_tier(tier);
        match &doc.score {
            Some(overrides) => {
                let freshness_ms = overrides
                    .freshness
                    .as_deref()
                    .and_then(|text| pact::parse_duration_ms(text).ok());
                config.with_overrides(&overrides.weights, freshness_ms)
            }
            None => config,
        }
    }

    /// The tier's defaults with a pact's overrides: each named weight replaces the default
    /// (names outside [`DIMENSIONS`] are ignored; the pact checker refuses them), and the
    /// freshness window when given.
    pub fn with_overrides(
        mut self,
        weights: &BTreeMap<String, u32>,
        freshness_ms: Option<u64>,
    ) -> Config {
        for (name, weight) in weights {
            if DIMENSIONS.contains(&name.as_str()) {
                self.weights.insert(name.clone(), *weight);
            }
        }
        if let Some(freshness_ms) = freshness_ms {
            self.freshness_ms = freshness_ms;
        }
        self
    }
}

/// One dimension's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionScore {
    pub name: String,
    pub n_samples: u64,
    pub n_successes: u64,
    /// Records that could not be counted (trial case errors).
    pub n_errors: u64,
    /// The rate, in basis points; `None` without samples.
    pub value_bp: Option<u16>,
    /// Wilson 95% interval, in basis points.
    pub interval_bp: Option<(u16, u16)>,
    pub newest_ts_ms: Option<u64>,
    pub age_ms: Option<u64>,
    pub stale: bool,
    pub confidence: Confidence,
    pub weight: u32,
    /// The newest record indexes behind it (at most [`INDEXES_LISTED_MAX`]).
    pub record_indexes: Vec<u64>,
    pub n_records: u64,
}

/// The composite score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// 0..=1000; `None` when no dimension has evidence.
    pub points: Option<u16>,
    /// The weighted mean of the Wilson bounds, 0..=1000.
    pub interval_points: Option<(u16, u16)>,
    /// The lowest confidence among the weighted dimensions with evidence, lowered one step when
    /// less than half of the weight has evidence.
    pub confidence: Confidence,
    /// Share of the total weight whose dimensions have evidence, in basis points.
    pub coverage_bp: u16,
    pub dimensions: Vec<DimensionScore>,
    /// Velocity and swing against earlier `score` records.
    pub trend: Trend,
}

/// Change over time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trend {
    /// Points per week against the reference computation; `None` until there are
    /// [`VELOCITY_SCORES_MIN`] earlier `score` records and one is [`VELOCITY_SPAN_MS_MIN`] old.
    pub points_per_week: Option<i64>,
    /// Earlier `score` records read.
    pub n_scores: usize,
    /// Age of the oldest of them, ms (0 without any).
    pub span_ms: u64,
    /// The previous computation's points, and its record index.
    pub previous: Option<(u16, u64)>,
    /// The change from the previous computation exceeds [`SWING_POINTS_MAX`].
    pub swing: bool,
}

/// The Wilson 95% score interval for `n_successes` of `n_samples`, in basis points (rounded
/// outward, so the interval never claims more than it has); `None` without samples.
pub fn wilson_bp(n_successes: u64, n_samples: u64) -> Option<(u16, u16)> {
    if n_samples == 0 {
        return None;
    }
    let n = n_samples as f64;
    let p = n_successes.min(n_samples) as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // Outward to whole basis points; the 1e-6 keeps float noise (0.75749999...) from moving a
    // bound that is exact on paper.
    let low = ((center - half) * 10000.0 + 1e-6)
        .floor()
        .clamp(0.0, 10000.0) as u16;
    let high = ((center + half) * 10000.0 - 1e-6)
        .ceil()
        .clamp(0.0, 10000.0) as u16;
    Some((low, high))
}

/// `part / whole` in basis points, rounded half up.
fn ratio_bp(part: u64, whole: u64) -> Option<u16> {
    (part.min(whole) * 10000 + whole / 2)
        .checked_div(whole)
        .and_then(|bp| u16::try_from(bp).ok())
}

#[derive(Default)]
struct Tally {
    n_samples: u64,
    n_successes: u64,
    n_errors: u64,
    newest_ts_ms: Option<u64>,
    indexes: Vec<u64>,
}

impl Tally {
    fn add(&mut self, index: u64, ts_ms: u64, success: Option<bool>) {
        match success {
            Some(success) => {
                self.n_samples += 1;
                self.n_successes += u64::from(success);
            }
            None => self.n_errors += 1,
        }
        self.newest_ts_ms = Some(self.newest_ts_ms.map_or(ts_ms, |ts| ts.max(ts_ms)));
        self.indexes.push(index);
    }
}

/// `(index, ts_ms, passed)` of one judged trial case.
type JudgedCase = (u64, u64, bool);

/// Computes the score from `records` (log index, record), all about one agent, as of `now_ms`.
/// `score` records among them are the history velocity is measured against.
pub fn compute(records: &[(u64, Value)], config: &Config, now_ms: u64) -> Score {
    let mut tallies: HashMap<&str, Tally> = HashMap::new();
    let mut allowed_verdicts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut executed: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut outcome_indexes: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut history: Vec<(u64, u64, u16)> = Vec::new();
    // (suite, base case id) -> (index, ts, passed) of each judged case.
    let mut case_groups: BTreeMap<(&str, &str), Vec<JudgedCase>> = BTreeMap::new();
    // week -> (failed, index of the first record seen, its ts).
    let mut weeks: BTreeMap<u64, (bool, u64, u64)> = BTreeMap::new();
    let mut incident_indexes: Vec<(u64, u64)> = Vec::new();
    for (index, record) in records {
        let ts_ms = record.get("ts").and_then(Value::as_u64).unwrap_or(0);
        let kind = record.get("kind").and_then(Value::as_str);
        if matches!(kind, Some("trial_case" | "verdict" | "incident_opened")) {
            weeks
                .entry(ts_ms / WEEK_MS)
                .or_insert((false, *index, ts_ms));
        }
        match kind {
            Some("incident_opened") => {
                let minor = record.get("severity").and_then(Value::as_str) == Some("low");
                if let Some(week) = weeks.get_mut(&(ts_ms / WEEK_MS)) {
                    week.0 |= !minor;
                }
                incident_indexes.push((*index, ts_ms));
            }
            Some("dispute_resolved") => {
                let upheld = match record.get("finding").and_then(Value::as_str) {
                    Some("rejected") => false,
                    Some("upheld") => true,
                    _ => continue,
                };
                tallies
                    .entry("dispute_record")
                    .or_default()
                    .add(*index, ts_ms, Some(!upheld));
            }
            Some("trial_case") => {
                let Some(dimension) = record
                    .get("dimension")
                    .and_then(Value::as_str)
                    .and_then(|name| DIMENSIONS.iter().find(|known| **known == name))
                else {
                    continue;
                };
                let success = match record.get("status").and_then(Value::as_str) {
                    Some("passed") => Some(true),
                    Some("failed") => Some(false),
                    _ => None,
                };
                if let Some(passed) = success {
                    tallies.entry("evaluation_freshness").or_default().add(
                        *index,
                        ts_ms,
                        Some(now_ms.saturating_sub(ts_ms) <= config.freshness_ms),
                    );
                    if let (Some(suite), Some(case)) = (
                        record.get("suite").and_then(Value::as_str),
                        record.get("case").and_then(Value::as_str),
                    ) {
                        let base = case
                            .split_once(PERTURBATION_SEPARATOR)
                            .map_or(case, |(base, _)| base);
                        case_groups
                            .entry((suite, base))
                            .or_default()
                            .push((*index, ts_ms, passed));
                    }
                }
                tallies
                    .entry(dimension)
                    .or_default()
                    .add(*index, ts_ms, success);
            }
            Some("verdict") => {
                // The server's verdict records nest the decision in `verdict`; hand-written
                // ones (`pactum ledger append`) may carry it at the top.
                let decision = record
                    .pointer("/verdict/decision")
                    .or_else(|| record.get("decision"))
                    .and_then(Value::as_str);
                let in_scope = match decision {
                    Some("allow") => {
                        allowed_verdicts.insert(*index, ts_ms);
                        true
                    }
                    Some("review") => true,
                    Some("deny") | Some("halted") => false,
                    _ => continue,
                };
                tallies
                    .entry("scope_adherence")
                    .or_default()
                    .add(*index, ts_ms, Some(in_scope));
            }
            Some("outcome") => {
                let verdict_idx = record
                    .get("refs")
                    .and_then(Value::as_array)
                    .and_then(|refs| {
                        refs.iter()
                            .find(|r| r.get("rel").and_then(Value::as_str) == Some("verdict"))
                    })
                    .and_then(|r| r.get("index"))
                    .and_then(Value::as_u64);
                if let Some(verdict_idx) = verdict_idx {
                    // `POST /v1/outcomes` reports `succeeded`; `executed` is the older word.
                    if matches!(
                        record.get("status").and_then(Value::as_str),
                        Some("succeeded" | "executed")
                    ) {
                        executed.insert(verdict_idx);
                    }
                    outcome_indexes.insert(verdict_idx, (*index, ts_ms));
                }
            }
            Some("score") => {
                if let Some(points) = record
                    .get("points")
                    .and_then(Value::as_u64)
                    .and_then(|points| u16::try_from(points).ok())
                {
                    history.push((ts_ms, *index, points));
                }
            }
            _ => {}
        }
    }
    if !allowed_verdicts.is_empty() {
        let tally = tallies.entry("outcome_reliability").or_default();
        for (verdict_idx, verdict_ts) in &allowed_verdicts {
            let (index, ts_ms) = outcome_indexes
                .get(verdict_idx)
                .copied()
                .unwrap_or((*verdict_idx, *verdict_ts));
            tally.add(index, ts_ms, Some(executed.contains(verdict_idx)));
        }
    }
    for group in case_groups.values().filter(|group| group.len() >= 2) {
        let agree = group
            .iter()
            .all(|(_, _, passed)| Some(passed) == group.first().map(|g| &g.2));
        let tally = tallies.entry("harness_stability").or_default();
        let newest_ts_ms = group.iter().map(|(_, ts, _)| *ts).max().unwrap_or(0);
        tally.n_samples += 1;
        tally.n_successes += u64::from(agree);
        tally.newest_ts_ms = Some(
            tally
                .newest_ts_ms
                .map_or(newest_ts_ms, |ts| ts.max(newest_ts_ms)),
        );
        tally
            .indexes
            .extend(group.iter().map(|(index, _, _)| *index));
    }
    if !weeks.is_empty() {
        let tally = tallies.entry("incident_history").or_default();
        for (failed, index, ts_ms) in weeks.values() {
            tally.add(*index, *ts_ms, Some(!failed));
        }
        // The incidents themselves are the records to look at.
        tally
            .indexes
            .extend(incident_indexes.iter().map(|(index, _)| *index));
        tally.indexes.sort_unstable();
        tally.indexes.dedup();
    }
    let dimensions: Vec<DimensionScore> = DIMENSIONS
        .iter()
        .map(|name| {
            let tally = tallies.remove(name).unwrap_or_default();
            dimension_score(name, tally, config, now_ms)
        })
        .collect();
    let (points, interval_points, confidence, coverage_bp) = composite(&dimensions);
    let trend = trend(&mut history, points, now_ms);
    Score {
        points,
        interval_points,
        confidence,
        coverage_bp,
        dimensions,
        trend,
    }
}

fn dimension_score(name: &str, mut tally: Tally, config: &Config, now_ms: u64) -> DimensionScore {
    let age_ms = tally.newest_ts_ms.map(|ts| now_ms.saturating_sub(ts));
    let stale = age_ms.is_some_and(|age| age > config.freshness_ms);
    let by_samples = if tally.n_samples == 0 {
        Confidence::None
    } else if tally.n_samples < config.samples_medium_min {
        Confidence::Low
    } else if tally.n_samples < config.samples_high_min {
        Confidence::Medium
    } else {
        Confidence::High
    };
    tally.indexes.sort_unstable();
    let n_records = tally.indexes.len() as u64;
    let skip = tally.indexes.len().saturating_sub(INDEXES_LISTED_MAX);
    DimensionScore {
        name: name.to_owned(),
        n_samples: tally.n_samples,
        n_successes: tally.n_successes,
        n_errors: tally.n_errors,
        value_bp: ratio_bp(tally.n_successes, tally.n_samples),
        interval_bp: wilson_bp(tally.n_successes, tally.n_samples),
        newest_ts_ms: tally.newest_ts_ms,
        age_ms,
        stale,
        confidence: if stale {
            by_samples.lowered()
        } else {
            by_samples
        },
        weight: config.weights.get(name).copied().unwrap_or(0),
        record_indexes: tally.indexes.into_iter().skip(skip).collect(),
        n_records,
    }
}

/// Weighted means of the values and of the interval bounds, over weighted dimensions with
/// samples, in points (0..=1000, rounded half up).
fn composite(dimensions: &[DimensionScore]) -> (Option<u16>, Option<(u16, u16)>, Confidence, u16) {
    let total_weight: u64 = dimensions.iter().map(|d| u64::from(d.weight)).sum();
    let mut weight = 0u64;
    let (mut value, mut low, mut high) = (0u64, 0u64, 0u64);
    let mut confidence = Confidence::High;
    for dimension in dimensions.iter().filter(|d| d.weight > 0) {
        let (Some(value_bp), Some((low_bp, high_bp))) = (dimension.value_bp, dimension.interval_bp)
        else {
            continue;
        };
        let w = u64::from(dimension.weight);
        weight += w;
        value += w * u64::from(value_bp);
        low += w * u64::from(low_bp);
        high += w * u64::from(high_bp);
        confidence = confidence.min(dimension.confidence);
    }
    // Weighted basis points over weight, in points: / 10 with rounding half up.
    let points = |sum: u64| {
        (sum + weight * 5)
            .checked_div(weight * 10)
            .and_then(|points| u16::try_from(points).ok())
    };
    let coverage_bp = ratio_bp(weight, total_weight).unwrap_or(0);
    if weight == 0 {
        return (None, None, Confidence::None, 0);
    }
    if coverage_bp < 5000 {
        confidence = confidence.lowered();
    }
    let interval = points(low).zip(points(high));
    (points(value), interval, confidence, coverage_bp)
}

/// Velocity against the oldest computation of the last week that is at least
/// [`VELOCITY_SPAN_MS_MIN`] old (or, without one, the newest before the week), and a swing flag
/// against the previous computation.
fn trend(history: &mut [(u64, u64, u16)], points: Option<u16>, now_ms: u64) -> Trend {
    history.sort_unstable();
    let n_scores = history.len();
    let span_ms = history
        .first()
        .map_or(0, |(ts, _, _)| now_ms.saturating_sub(*ts));
    let Some(points) = points else {
        return Trend {
            n_scores,
            span_ms,
            ..Trend::default()
        };
    };
    let previous = history.last().map(|(_, index, points)| (*points, *index));
    let week_ago = now_ms.saturating_sub(WEEK_MS);
    let span_end = now_ms.saturating_sub(VELOCITY_SPAN_MS_MIN);
    let reference = history
        .iter()
        .find(|(ts, _, _)| *ts >= week_ago && *ts <= span_end)
        .or_else(|| history.iter().rev().find(|(ts, _, _)| *ts < week_ago))
        .filter(|_| n_scores >= VELOCITY_SCORES_MIN);
    let points_per_week = reference.and_then(|(ts, _, then)| {
        let elapsed_ms = i128::from(now_ms.saturating_sub(*ts));
        let change = i128::from(points) - i128::from(*then);
        (change * i128::from(WEEK_MS))
            .checked_div(elapsed_ms)
            .and_then(|velocity| i64::try_from(velocity).ok())
    });
    Trend {
        points_per_week,
        n_scores,
        span_ms,
        swing: previous.is_some_and(|(then, _)| {
            (i64::from(points) - i64::from(then)).abs() > SWING_POINTS_MAX
        }),
        previous,
    }
}

impl Trend {
    /// Why there is no velocity, for people: which history is missing.
    pub fn missing_history(&self) -> Option<String> {
        if self.points_per_week.is_some() {
            return None;
        }
        let hours = VELOCITY_SPAN_MS_MIN / 3_600_000;
        Some(format!(
            "not enough history: velocity needs {VELOCITY_SCORES_MIN} earlier score records, \
             the oldest at least {hours} h old (have {}, the oldest {} min old)",
            self.n_scores,
            self.span_ms / 60_000
        ))
    }
}

impl Score {
    /// The `score` record for the history: `{kind, agent, ts, points, ...}`.
    pub fn to_record(&self, agent: &str, now_ms: u64) -> Value {
        let dimensions: serde_json::Map<String, Value> = self
            .dimensions
            .iter()
            .filter(|d| d.n_samples > 0)
            .map(|d| {
                (
                    d.name.clone(),
                    json!({"value_bp": d.value_bp, "n_samples": d.n_samples, "stale": d.stale}),
                )
            })
            .collect();
        let mut record = json!({
            "kind": "score",
            "agent": agent,
            "ts": now_ms,
            "points": self.points,
            "interval_points": self.interval_points.map(|(low, high)| [low, high]),
            "confidence": self.confidence.as_str(),
            "coverage_bp": self.coverage_bp,
            "dimensions": dimensions,
            "points_per_week": self.trend.points_per_week,
            "swing": self.trend.swing,
        });
        if let (Some((_, index)), Some(object)) = (self.trend.previous, record.as_object_mut()) {
            object.insert("refs".into(), json!([{"rel": "previous", "index": index}]));
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn the_pact_language_names_the_same_dimensions() {
        assert_eq!(DIMENSIONS.as_slice(), pact::SCORE_DIMENSIONS);
    }

    #[test]
    fn a_pacts_score_section_overrides_its_tier() {
        let text = "pact: t\nversion: 1\nagent: a/b\ntier: critical\nactions:\n  lookup: {}\nscore:\n  weights: { task_accuracy: 40, dispute_record: 0 }\n  freshness: 45d\n";
        let checked = pact::check(text);
        let pact = checked.pact.expect("the pact checks");
        let config = Config::for_pact(pact.doc());
        let defaults = Config::for_tier("critical");
        assert_eq!(config.weights["task_accuracy"], 40);
        assert_eq!(config.weights["dispute_record"], 0);
        assert_eq!(
            config.weights["boundary_integrity"],
            defaults.weights["boundary_integrity"]
        );
        assert_eq!(config.freshness_ms, 45 * DAY_MS);
        assert_ne!(defaults.freshness_ms, config.freshness_ms);
        // No section: the tier's defaults.
        let plain =
            pact::check("pact: t\nversion: 1\nagent: a/b\ntier: low\nactions:\n  lookup: {}\n")
                .pact
                .expect("the pact checks");
        assert_eq!(
            Config::for_pact(plain.doc()).weights,
            Config::for_tier("low").weights
        );
    }

    #[test]
    fn wilson_matches_hand_computation() {
        // 8 of 10: center 0.716737, half-width 0.226580 -> (0.490157, 0.943317).
        assert_eq!(wilson_bp(8, 10), Some((4901, 9434)));
        // 12 of 12: center 0.878750, half-width 0.121250 -> (0.7575, 1.0).
        assert_eq!(wilson_bp(12, 12), Some((7575, 10000)));
        // 0 of 5: (0, 0.4345).
        assert_eq!(wilson_bp(0, 5), Some((0, 4345)));
        assert_eq!(wilson_bp(0, 0), None);
    }

    fn case(index: u64, dimension: &str, passed: bool, ts: u64) -> (u64, Value) {
        (
            index,
            json!({"kind": "trial_case", "agent": "a", "ts": ts, "dimension": dimension,
                   "status": if passed { "passed" } else { "failed" }}),
        )
    }

    #[test]
    fn the_composite_is_the_weighted_mean_of_dimensions_with_evidence() {
        let mut config = Config::for_tier("medium");
        config.weights = [
            ("boundary_integrity", 3),
            ("injection_resistance", 1),
            ("task_accuracy", 4),
        ]
        .into_iter()
        .map(|(name, weight)| (name.to_owned(), weight))
        .collect();
        // boundary: 8 of 10 (8000 bp, Wilson 4901..9434); injection: 12 of 12 (10000, 7575..10000);
        // task accuracy: no evidence, so its weight is left out (coverage 4 of 8 = 5000 bp).
        let mut records = Vec::new();
        for idx in 0..10 {
            records.push(case(idx, "boundary_integrity", idx < 8, NOW - DAY_MS));
        }
        for idx in 10..22 {
            records.push(case(idx, "injection_resistance", true, NOW - DAY_MS));
        }
        records.push((22, json!({"kind": "trial_case", "agent": "a", "ts": NOW, "dimension": "injection_resistance", "status": "error"})));
        let score = compute(&records, &config, NOW);
        // (3 * 8000 + 1 * 10000) / 4 = 8500 bp = 850 points; low (3*4901 + 7575) / 4 = 5569.5 -> 557;
        // high (3*9434 + 10000) / 4 = 9575.5 -> 958.
        assert_eq!(score.points, Some(850));
        assert_eq!(score.interval_points, Some((557, 958)));
        assert_eq!(score.coverage_bp, 5000);
        assert_eq!(score.confidence, Confidence::Low);
        let injection = &score.dimensions[4];
        assert_eq!(injection.name, "injection_resistance");
        assert_eq!(
            (injection.n_samples, injection.n_errors, injection.n_records),
            (12, 1, 13)
        );
        assert_eq!(injection.record_indexes.first(), Some(&10));
        assert_eq!(injection.age_ms, Some(0));
    }

    #[test]
    fn staleness_lowers_confidence_never_the_value() {
        let config = Config::for_tier("high"); // 30 days
        let records: Vec<(u64, Value)> = (0..250)
            .map(|idx| case(idx, "boundary_integrity", true, NOW - 40 * DAY_MS))
            .collect();
        let score = compute(&records, &config, NOW);
        let boundary = &score.dimensions[3];
        assert!(boundary.stale);
        assert_eq!(boundary.confidence, Confidence::Medium);
        assert_eq!(boundary.value_bp, Some(10000));
        // Only evaluation_freshness reacts to time: 0 of 250 cases inside the window. High tier:
        // (15 * 10000 boundary + 5 * 0 freshness + 10 * 10000 incident history, one quiet
        // week) / 30 = 8333 bp -> 833 points.
        assert_eq!(score.dimensions[9].value_bp, Some(0));
        assert_eq!(score.dimensions[10].value_bp, Some(10000));
        assert_eq!(score.points, Some(833));
        let fresh = compute(&records, &config, NOW - 35 * DAY_MS);
        assert_eq!(fresh.dimensions[3].confidence, Confidence::High);
        assert_eq!(fresh.points, Some(1000));
        assert_eq!(boundary.record_indexes.len(), INDEXES_LISTED_MAX);
        assert_eq!(boundary.record_indexes.last(), Some(&249));
    }

    #[test]
    fn verdicts_and_outcomes_feed_scope_and_reliability() {
        let config = Config::for_tier("medium");
        let records = vec![
            (
                0,
                json!({"kind": "verdict", "agent": "a", "ts": NOW, "decision": "allow"}),
            ),
            (
                1,
                json!({"kind": "verdict", "agent": "a", "ts": NOW, "decision": "deny"}),
            ),
            (
                2,
                json!({"kind": "verdict", "agent": "a", "ts": NOW, "decision": "allow"}),
            ),
            (
                3,
                json!({"kind": "outcome", "agent": "a", "ts": NOW, "status": "executed", "refs": [{"rel": "verdict", "index": 0}]}),
            ),
        ];
        let score = compute(&records, &config, NOW);
        let scope = &score.dimensions[2];
        assert_eq!((scope.n_successes, scope.n_samples), (2, 3));
        let outcome = &score.dimensions[8];
        assert_eq!((outcome.n_successes, outcome.n_samples), (1, 2));
        assert_eq!(outcome.record_indexes, vec![2, 3]);
        // The same facts as the server writes them: the decision inside `verdict`, and the
        // outcome statuses of `POST /v1/outcomes`.
        let records: Vec<(u64, Value)> = records
            .into_iter()
            .map(|(index, mut record)| {
                if let Some(decision) = record.as_object_mut().and_then(|r| r.remove("decision")) {
                    record["verdict"] = json!({ "decision": decision });
                }
                if record["status"] == "executed" {
                    record["status"] = json!("succeeded");
                }
                (index, record)
            })
            .collect();
        let score = compute(&records, &config, NOW);
        let scope = &score.dimensions[2];
        assert_eq!((scope.n_successes, scope.n_samples), (2, 3));
        let outcome = &score.dimensions[8];
        assert_eq!((outcome.n_successes, outcome.n_samples), (1, 2));
        assert_eq!(outcome.record_indexes, vec![2, 3]);
    }

    #[test]
    fn velocity_is_points_per_week_and_swings_are_flagged() {
        let mut config = Config::for_tier("medium");
        config.weights = [("boundary_integrity".to_owned(), 1)].into_iter().collect();
        let mut records: Vec<(u64, Value)> = (0..10)
            .map(|idx| case(idx, "boundary_integrity", idx < 5, NOW))
            .collect();
        // 500 points now; 900 three and a half days ago (the oldest in the week), 800 yesterday.
        records.push((
            10,
            json!({"kind": "score", "agent": "a", "ts": NOW - 7 * DAY_MS / 2, "points": 900}),
        ));
        records.push((
            11,
            json!({"kind": "score", "agent": "a", "ts": NOW - DAY_MS, "points": 800}),
        ));
        records.push((
            12,
            json!({"kind": "score", "agent": "a", "ts": NOW - 30 * DAY_MS, "points": 100}),
        ));
        let score = compute(&records, &config, NOW);
        assert_eq!(score.points, Some(500));
        // (500 - 900) over half a week: -800 points per week.
        assert_eq!(score.trend.points_per_week, Some(-800));
        assert_eq!(score.trend.previous, Some((800, 11)));
        assert!(score.trend.swing);
        let record = score.to_record("a", NOW);
        assert_eq!(record["points"], 500);
        assert_eq!(record["refs"][0]["index"], 11);
        // No evidence: no score, not zero.
        let empty = compute(&[], &config, NOW);
        assert!(empty.trend.points_per_week.is_none());
        assert_eq!((empty.points, empty.confidence), (None, Confidence::None));
    }

    #[test]
    fn velocity_waits_for_a_day_of_history() {
        let mut config = Config::for_tier("medium");
        config.weights = [("boundary_integrity".to_owned(), 1)].into_iter().collect();
        let cases: Vec<(u64, Value)> = (0..10)
            .map(|idx| case(idx, "boundary_integrity", idx < 5, NOW))
            .collect();
        let with_scores = |scores: &[(u64, u64)]| {
            let mut records = cases.clone();
            for (offset, (age_ms, points)) in scores.iter().enumerate() {
                records.push((
                    100 + offset as u64,
                    json!({"kind": "score", "agent": "a", "ts": NOW - age_ms, "points": points}),
                ));
            }
            compute(&records, &config, NOW).trend
        };
        // Minutes apart, scaled to a week, this was millions of points per week.
        let minutes = with_scores(&[(10 * 60_000, 1000), (5 * 60_000, 900)]);
        assert_eq!(minutes.points_per_week, None);
        assert_eq!((minutes.n_scores, minutes.span_ms), (2, 10 * 60_000));
        let why = minutes.missing_history().unwrap();
        assert!(
            why.contains("not enough history") && why.contains("10 min"),
            "{why}"
        );
        // One record a day old is not enough either.
        assert_eq!(with_scores(&[(DAY_MS, 700)]).points_per_week, None);
        // Two records, one a day old: (500 - 700) over one day.
        let day = with_scores(&[(DAY_MS, 700), (60_000, 520)]);
        assert_eq!(day.points_per_week, Some(-1400));
        assert_eq!(day.missing_history(), None);
    }

    fn judged(index: u64, suite: &str, case_id: &str, passed: bool, ts: u64) -> (u64, Value) {
        (
            index,
            json!({"kind": "trial_case", "agent": "a", "ts": ts, "dimension": "task_accuracy",
                   "suite": suite, "case": case_id, "status": if passed { "passed" } else { "failed" }}),
        )
    }

    #[test]
    fn harness_stability_is_agreement_across_repeats_and_perturbations() {
        let config = Config::for_tier("medium");
        let records = vec![
            // s1/a: two repeats and a perturbation, all pass: agrees.
            judged(0, "s1", "a", true, NOW),
            judged(1, "s1", "a", true, NOW),
            judged(2, "s1", "a~typo", true, NOW),
            // s1/b: pass then fail: disagrees.
            judged(3, "s1", "b", true, NOW),
            judged(4, "s1", "b~2", false, NOW - DAY_MS),
            // s1/c: one verdict only: not a sample.
            judged(5, "s1", "c", false, NOW),
            // s2/a: another suite, both fail: agrees.
            judged(6, "s2", "a", false, NOW),
            judged(7, "s2", "a", false, NOW),
            // An error is not a verdict: s2/d has one verdict, no sample.
            judged(8, "s2", "d", true, NOW),
            (
                9,
                json!({"kind": "trial_case", "agent": "a", "ts": NOW, "dimension": "task_accuracy",
                       "suite": "s2", "case": "d", "status": "error"}),
            ),
        ];
        let score = compute(&records, &config, NOW);
        let harness = &score.dimensions[7];
        assert_eq!(harness.name, "harness_stability");
        assert_eq!((harness.n_successes, harness.n_samples), (2, 3));
        assert_eq!(harness.value_bp, Some(6667));
        assert_eq!(harness.record_indexes, vec![0, 1, 2, 3, 4, 6, 7]);
        assert_eq!(harness.age_ms, Some(0));
        // Every judged case is fresh: 9 of 9 (the error is not counted).
        let freshness = &score.dimensions[9];
        assert_eq!(freshness.name, "evaluation_freshness");
        assert_eq!((freshness.n_successes, freshness.n_samples), (9, 9));
    }

    #[test]
    fn evaluation_freshness_counts_cases_inside_the_window() {
        let config = Config::for_tier("high"); // 30 days
        let records = vec![
            judged(0, "s", "a", true, NOW - 31 * DAY_MS),
            judged(1, "s", "b", false, NOW - 30 * DAY_MS),
            judged(2, "s", "c", true, NOW - DAY_MS),
            judged(3, "s", "d", true, NOW - 60 * DAY_MS),
        ];
        let freshness = compute(&records, &config, NOW).dimensions[9].clone();
        // 30 days exactly is inside; 31 and 60 are not: 2 of 4.
        assert_eq!((freshness.n_successes, freshness.n_samples), (2, 4));
        assert_eq!(freshness.value_bp, Some(5000));
        assert_eq!(freshness.age_ms, Some(DAY_MS));
        assert!(!freshness.stale);
    }

    #[test]
    fn incident_history_counts_weeks_with_serious_incidents() {
        let config = Config::for_tier("medium");
        let week = |n: u64| n * WEEK_MS + DAY_MS;
        let verdict = |index: u64, ts: u64| {
            (
                index,
                json!({"kind": "verdict", "agent": "a", "ts": ts, "decision": "allow"}),
            )
        };
        let incident = |index: u64, ts: u64, severity: Value| {
            (
                index,
                json!({"kind": "incident_opened", "agent": "a", "ts": ts, "severity": severity, "pattern": "x"}),
            )
        };
        let records = vec![
            verdict(0, week(1)),
            verdict(1, week(1) + 1),
            // Week 2: only a low incident: passes.
            verdict(2, week(2)),
            incident(3, week(2) + 5, json!("low")),
            // Week 3: a high incident: fails.
            verdict(4, week(3)),
            incident(5, week(3) + 5, json!("high")),
            // Week 4: an incident with no readable severity counts as serious, alone in its week.
            incident(6, week(4), json!(42)),
            // Week 5: quiet.
            verdict(7, week(5)),
        ];
        let score = compute(&records, &config, week(5));
        let incidents = &score.dimensions[10];
        assert_eq!(incidents.name, "incident_history");
        // 5 weeks with evidence, 2 failed: 3 of 5.
        assert_eq!((incidents.n_successes, incidents.n_samples), (3, 5));
        assert_eq!(incidents.value_bp, Some(6000));
        assert_eq!(incidents.record_indexes, vec![0, 2, 3, 4, 5, 6, 7]);
        // No records: the dimension has no evidence, never a zero.
        let none = compute(&[], &config, NOW);
        assert_eq!(none.dimensions[10].value_bp, None);
    }

    #[test]
    fn dispute_record_counts_resolved_disputes() {
        let config = Config::for_tier("medium");
        let records = vec![
            (
                0,
                json!({"kind": "dispute_opened", "agent": "a", "ts": NOW}),
            ),
            (
                1,
                json!({"kind": "dispute_opened", "agent": "a", "ts": NOW}),
            ),
            (
                2,
                json!({"kind": "dispute_opened", "agent": "a", "ts": NOW}),
            ),
            (
                3,
                json!({"kind": "dispute_resolved", "agent": "a", "ts": NOW, "dispute": 0, "finding": "rejected"}),
            ),
            (
                4,
                json!({"kind": "dispute_resolved", "agent": "a", "ts": NOW, "dispute": 1, "finding": "upheld"}),
            ),
            (
                5,
                json!({"kind": "dispute_resolved", "agent": "a", "ts": NOW, "dispute": 2, "finding": "maybe"}),
            ),
            (
                6,
                json!({"kind": "dispute_resolved", "agent": "a", "ts": NOW, "dispute": 2}),
            ),
        ];
        let disputes = compute(&records, &config, NOW).dimensions[11].clone();
        assert_eq!(disputes.name, "dispute_record");
        // One rejected (the agent was right), one upheld; unreadable findings and open disputes
        // are not counted.
        assert_eq!((disputes.n_successes, disputes.n_samples), (1, 2));
        assert_eq!(disputes.record_indexes, vec![3, 4]);
        // Only open disputes: no evidence.
        let open = compute(&records[..3], &config, NOW);
        assert_eq!(open.dimensions[11].value_bp, None);
    }

    #[test]
    fn pact_overrides_replace_tier_defaults() {
        let weights = [
            ("scope_adherence".to_owned(), 30),
            ("nonsense".to_owned(), 7),
        ]
        .into_iter()
        .collect();
        let config = Config::for_tier("high").with_overrides(&weights, Some(DAY_MS));
        assert_eq!(config.weights.get("scope_adherence"), Some(&30));
        assert_eq!(config.weights.get("task_accuracy"), Some(&15));
        assert_eq!(config.weights.get("nonsense"), None);
        assert_eq!(config.freshness_ms, DAY_MS);
        let unchanged = Config::for_tier("high").with_overrides(&BTreeMap::new(), None);
        assert_eq!(unchanged, Config::for_tier("high"));
    }
}
