//! Jury arithmetic: a 20% trimmed mean of the judges' scores, their variance and agreement.
//!
//! Scores are integers in basis points (`0..=10000`). With `n` valid scores, `floor(n * 0.2)`
//! are dropped from each end (so juries of 1 to 4 judges drop nothing, 5 to 9 drop one from each
//! end, 10 to 14 two); the rest are averaged and rounded half up. The variance is the population
//! variance of all valid scores (before trimming, because disagreement is what it tracks), in
//! basis points squared, rounded half up. Agreement is the share of judges on the same side of
//! [`PASS_BP`] as the jury's score, in basis points.

/// A score at or above this passes.
pub const PASS_BP: u16 = 5000;
/// The largest score.
pub const SCORE_BP_MAX: u16 = 10000;

/// What a jury concluded about one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jury {
    /// The trimmed mean.
    pub score_bp: u16,
    /// Valid scores it was built from.
    pub n_scores: usize,
    /// Scores dropped from each end.
    pub n_trimmed_each_end: usize,
    /// Population variance of all valid scores, in basis points squared.
    pub variance_bp2: u64,
    /// Share of judges agreeing with the jury on pass or fail, in basis points.
    pub agreement_bp: u16,
}

/// Scores dropped from each end of a jury of `n_scores`: `floor(n * 0.2)`.
pub fn n_trimmed_each_end(n_scores: usize) -> usize {
    n_scores / 5
}

/// The jury's verdict over `scores_bp` (each clamped to [`SCORE_BP_MAX`]); `None` without scores.
pub fn jury(scores_bp: &[u16]) -> Option<Jury> {
    if scores_bp.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = scores_bp
        .iter()
        .map(|score| u64::from((*score).min(SCORE_BP_MAX)))
        .collect();
    sorted.sort_unstable();
    let n_scores = sorted.len();
    let trim = n_trimmed_each_end(n_scores);
    let kept = sorted.get(trim..n_scores - trim).unwrap_or(&[]);
    let n_kept = kept.len() as u64;
    let score_bp = (kept.iter().sum::<u64>() + n_kept / 2)
        .checked_div(n_kept)
        .unwrap_or(0);
    // n·Σx² − (Σx)² over n², in integers: exact, then rounded half up.
    let n = n_scores as u128;
    let sum: u128 = sorted.iter().map(|x| u128::from(*x)).sum();
    let sum_sq: u128 = sorted.iter().map(|x| u128::from(*x) * u128::from(*x)).sum();
    let numerator = n * sum_sq - sum * sum;
    let denominator = n * n;
    let variance_bp2 =
        u64::try_from((numerator + denominator / 2) / denominator).unwrap_or(u64::MAX);
    let jury_passes = score_bp >= u64::from(PASS_BP);
    let n_agreeing = sorted
        .iter()
        .filter(|score| (**score >= u64::from(PASS_BP)) == jury_passes)
        .count() as u64;
    let agreement_bp = (n_agreeing * 10000 + n_scores as u64 / 2) / n_scores as u64;
    Some(Jury {
        score_bp: u16::try_from(score_bp).unwrap_or(SCORE_BP_MAX),
        n_scores,
        n_trimmed_each_end: trim,
        variance_bp2,
        agreement_bp: u16::try_from(agreement_bp).unwrap_or(SCORE_BP_MAX),
    })
}

/// A fraction `part / whole` in basis points, rounded half up; 0 when `whole` is 0.
pub fn ratio_bp(part: usize, whole: usize) -> u16 {
    if whole == 0 {
        return 0;
    }
    let bp = (part.min(whole) as u64 * 10000 + whole as u64 / 2) / whole as u64;
    u16::try_from(bp).unwrap_or(SCORE_BP_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_judges_drop_one_from_each_end() {
        // Sorted: 0, 8000, 9000, 10000, 10000. Dropped: 0 and one 10000. Mean of the rest: 9000.
        // Mean of all: 7400; squared deviations 54.76e6 + 0.36e6 + 2.56e6 + 6.76e6 + 6.76e6 =
        // 71.2e6; / 5 = 14_240_000. Four of five judges pass, like the jury: 8000 bp.
        let jury = jury(&[10000, 0, 9000, 8000, 10000]).unwrap();
        assert_eq!(
            jury,
            Jury {
                score_bp: 9000,
                n_scores: 5,
                n_trimmed_each_end: 1,
                variance_bp2: 14_240_000,
                agreement_bp: 8000,
            }
        );
    }

    #[test]
    fn small_juries_drop_nothing_and_round_half_up() {
        assert_eq!(n_trimmed_each_end(4), 0);
        assert_eq!(n_trimmed_each_end(9), 1);
        assert_eq!(n_trimmed_each_end(10), 2);
        // (0 + 1) / 2 = 0.5 -> 1; variance 0.25 -> 0; one judge below, one... both below 5000.
        let jury = jury(&[0, 1]).unwrap();
        assert_eq!(
            (jury.score_bp, jury.variance_bp2, jury.agreement_bp),
            (1, 0, 10000)
        );
        // Three judges: 10000, 10000, 0 -> mean 6666.67 -> 6667; variance: mean 6666.67, deviations
        // 3333.33, 3333.33, -6666.67: (11.11e6 * 2 + 44.44e6) / 3 = 22_222_222.2 -> 22_222_222.
        let jury = super::jury(&[10000, 10000, 0]).unwrap();
        assert_eq!(
            (jury.score_bp, jury.variance_bp2, jury.agreement_bp),
            (6667, 22_222_222, 6667)
        );
    }

    #[test]
    fn ten_judges_drop_two_from_each_end() {
        let scores = [0, 0, 5000, 5000, 5000, 5000, 5000, 5000, 10000, 10000];
        let jury = jury(&scores).unwrap();
        assert_eq!(jury.n_trimmed_each_end, 2);
        assert_eq!(jury.score_bp, 5000);
        // Mean 5000; four deviations of 5000 squared = 100e6; / 10 = 10_000_000.
        assert_eq!(jury.variance_bp2, 10_000_000);
        // The jury passes (5000); the two zeros disagree: 8 of 10.
        assert_eq!(jury.agreement_bp, 8000);
        assert!(super::jury(&[]).is_none());
    }

    #[test]
    fn ratios_round_half_up() {
        assert_eq!(ratio_bp(1, 3), 3333);
        assert_eq!(ratio_bp(2, 3), 6667);
        assert_eq!(ratio_bp(0, 0), 0);
        assert_eq!(ratio_bp(5, 4), 10000);
    }
}
