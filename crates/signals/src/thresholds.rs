//! Thresholds per signal: defaults per risk tier, then the pact's `signals:` overrides.
//!
//! Each [`Setting`] is in its signal's reading unit ([`crate::Unit`]): rates and divergences in
//! basis points, score changes in points, ages and timeouts in milliseconds. A pact writes rates
//! as fractions (`0.02`), score changes as points, the jury ratio as a plain ratio (`2`) and
//! staleness as a duration (`60d`); [`Thresholds::with_overrides`] converts.
//!
//! A signal trips when its value is strictly above (`warning`, `critical`) the bound: "over 2%"
//! means 2% itself is fine.

use pact::syntax::{PactDoc, SignalBound, Tier};

/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// One week, in milliseconds.
pub const WEEK_MS: u64 = 7 * DAY_MS;

/// The bounds and windows of one signal. Fields a signal does not use are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Above this, the signal warns.
    pub warning: i64,
    /// Above this, the signal is critical.
    pub critical: i64,
    /// The window the signal looks at.
    pub window_ms: u64,
    /// Consecutive weeks (or trials) the condition must hold.
    pub periods: u32,
    /// `outcome_missing`: how long an allowed call may go without an outcome.
    pub timeout_ms: u64,
}

impl Setting {
    const fn bounds(warning: i64, critical: i64) -> Setting {
        Setting {
            warning,
            critical,
            window_ms: 0,
            periods: 0,
            timeout_ms: 0,
        }
    }
    const fn window(mut self, window_ms: u64) -> Setting {
        self.window_ms = window_ms;
        self
    }
    const fn periods(mut self, periods: u32) -> Setting {
        self.periods = periods;
        self
    }
}

/// Every signal's setting. [`Thresholds::for_tier`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Score decline, points per week, for `periods` consecutive weeks.
    pub score_velocity: Setting,
    /// Largest change between two consecutive score records within `window_ms`, points.
    pub score_swing: Setting,
    /// Failed share of the newest trial's boundary-integrity cases, bp (any hard failure is
    /// critical whatever the share).
    pub boundary_probe_failure: Setting,
    /// Denied share of verdicts per action category within `window_ms`, bp.
    pub scope_violation_rate: Setting,
    /// Week-over-week rise of that share, bp per week, for `periods` consecutive weeks.
    pub scope_violation_trend: Setting,
    /// Jensen-Shannon divergence of production inputs within `window_ms` from evaluation
    /// inputs, bp.
    pub input_shift: Setting,
    /// Age of the newest complete trial of an obligation's suite, ms (shortened by the
    /// obligation's `freshness`, see [`crate`]).
    pub evaluation_staleness: Setting,
    /// A trial's jury variance over its baseline, as a ratio in bp (20000 = 2x), for `periods`
    /// consecutive trials.
    pub jury_variance: Setting,
    /// Fall of the proxy-truth correlation between the previous and the last `window_ms`, bp
    /// (2000 = 0.2).
    pub proxy_truth_divergence: Setting,
    /// Share of allowed verdicts due within `window_ms` with no outcome after `timeout_ms`, bp.
    pub outcome_missing: Setting,
    /// Rise of `deflection_rate` between the two proxy windows, bp (200 = 2 points), that
    /// warns when the proxy improves meanwhile. Not settable from a pact yet.
    pub deflection_rise_bp: i64,
    /// Fewest samples (verdicts in a category, production texts) before a rate can trip.
    pub samples_min: u64,
    /// How far back `compute` reports the immediate signals.
    pub immediate_window_ms: u64,
}

impl Thresholds {
    /// Defaults for a risk tier. `medium` and `high` use DESIGN.md's defaults from practice;
    /// `low` is looser, `critical` tighter.
    pub fn for_tier(tier: Tier) -> Thresholds {
        // (scope rate warn/crit bp, staleness warn/crit days, velocity warn points, swing points,
        //  input shift warn bp, outcome timeout hours)
        let (scope, staleness_days, velocity, swing, shift, timeout_hours) = match tier {
            Tier::Low => ((300, 800), (90, 120), 75, 250, 3500, 72),
            Tier::Medium | Tier::High => ((200, 500), (60, 90), 50, 200, 3000, 24),
            Tier::Critical => ((100, 300), (30, 60), 30, 150, 2500, 4),
        };
        Thresholds {
            score_velocity: Setting::bounds(velocity, velocity * 2).periods(3),
            score_swing: Setting::bounds(swing, swing * 2).window(WEEK_MS),
            boundary_probe_failure: Setting::bounds(0, 1000),
            scope_violation_rate: Setting::bounds(scope.0, scope.1).window(WEEK_MS),
            scope_violation_trend: Setting::bounds(30, 100).periods(3),
            input_shift: Setting::bounds(shift, shift + 2000).window(WEEK_MS),
            evaluation_staleness: Setting::bounds(
                staleness_days.0 * DAY_MS as i64,
                staleness_days.1 * DAY_MS as i64,
            ),
            jury_variance: Setting::bounds(20_000, 40_000).periods(3),
            proxy_truth_divergence: Setting::bounds(2000, 4000).window(30 * DAY_MS),
            outcome_missing: Setting {
                timeout_ms: timeout_hours * 60 * 60 * 1000,
                ..Setting::bounds(0, 1000).window(WEEK_MS)
            },
            deflection_rise_bp: 200,
            samples_min: 20,
            immediate_window_ms: DAY_MS,
        }
    }

    /// The tier's defaults with the pact's overrides.
    pub fn for_pact(pact: &pact::Pact) -> Thresholds {
        Thresholds::for_tier(pact.tier()).with_overrides(pact.doc())
    }

    /// These thresholds with the `signals:` section of `doc` applied. Values the pact checker
    /// would refuse (a pact that checked cannot hold them) are skipped.
    pub fn with_overrides(mut self, doc: &PactDoc) -> Thresholds {
        for (name, overrides) in &doc.signals {
            let Some((setting, scale)) = self.setting_mut(name) else {
                continue;
            };
            let convert = |bound: &SignalBound| -> Option<i64> {
                match bound {
                    SignalBound::Number(number) if number.is_finite() && *number >= 0.0 => {
                        let scaled = (number * scale).round();
                        (scaled < i64::MAX as f64).then_some(scaled as i64)
                    }
                    SignalBound::Duration(text) => pact::parse_duration_ms(text)
                        .ok()
                        .and_then(|ms| i64::try_from(ms).ok()),
                    SignalBound::Number(_) => None,
                }
            };
            if let Some(warning) = overrides.warning.as_ref().and_then(convert) {
                setting.warning = warning;
            }
            if let Some(critical) = overrides.critical.as_ref().and_then(convert) {
                setting.critical = critical;
            }
            if let Some(window_ms) = overrides
                .window
                .as_deref()
                .and_then(|text| pact::parse_duration_ms(text).ok())
            {
                setting.window_ms = window_ms;
            }
            if let Some(timeout_ms) = overrides
                .timeout
                .as_deref()
                .and_then(|text| pact::parse_duration_ms(text).ok())
            {
                setting.timeout_ms = timeout_ms;
            }
            if let Some(periods) = overrides.periods.filter(|periods| *periods > 0) {
                setting.periods = periods.min(52);
            }
        }
        self
    }

    /// The setting of a signal that has thresholds, and the factor from the pact's number to
    /// the reading unit.
    fn setting_mut(&mut self, name: &str) -> Option<(&mut Setting, f64)> {
        Some(match name {
            "score_velocity" => (&mut self.score_velocity, 1.0),
            "score_swing" => (&mut self.score_swing, 1.0),
            "boundary_probe_failure" => (&mut self.boundary_probe_failure, 10_000.0),
            "scope_violation_rate" => (&mut self.scope_violation_rate, 10_000.0),
            "scope_violation_trend" => (&mut self.scope_violation_trend, 10_000.0),
            "input_shift" => (&mut self.input_shift, 10_000.0),
            "evaluation_staleness" => (&mut self.evaluation_staleness, 1.0),
            "jury_variance" => (&mut self.jury_variance, 10_000.0),
            "proxy_truth_divergence" => (&mut self.proxy_truth_divergence, 10_000.0),
            "outcome_missing" => (&mut self.outcome_missing, 10_000.0),
            _ => return None,
        })
    }
}
