//! Input distribution shift: texts -> hashed feature histograms -> Jensen-Shannon divergence.
//!
//! The built-in features are word unigrams and character trigrams of the lowercased text
//! (letters and digits; every other run of characters is one space), each hashed with FNV-1a into
//! a fixed number of buckets. Each text adds a distribution that sums to 1, so a long text does
//! not outweigh many short ones. A caller with embeddings can bin them into histograms of its own
//! and call [`jensen_shannon`] directly.

/// Buckets of the built-in feature histogram.
pub const FEATURE_BUCKETS: usize = 2048;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

fn fnv_char(mut hash: u64, c: char) -> u64 {
    let mut buffer = [0u8; 4];
    for byte in c.encode_utf8(&mut buffer).bytes() {
        hash = fnv(hash, byte);
    }
    hash
}

/// Calls `emit` with the hash of every feature of `text`.
fn each_feature(text: &str, mut emit: impl FnMut(u64)) {
    let mut word: Option<u64> = None;
    // The last three normalised characters, `None` before the text starts.
    let mut window: [Option<char>; 3] = [None; 3];
    let mut previous_space = true;
    for raw in text.chars().flat_map(char::to_lowercase) {
        let c = if raw.is_alphanumeric() { raw } else { ' ' };
        if c == ' ' {
            if let Some(hash) = word.take() {
                emit(hash);
            }
            if previous_space {
                continue;
            }
            previous_space = true;
        } else {
            word = Some(fnv_char(word.unwrap_or(fnv(FNV_OFFSET, b'w')), c));
            previous_space = false;
        }
        window = [window[1], window[2], Some(c)];
        if let [Some(a), Some(b), Some(c)] = window {
            let hash = [a, b, c].into_iter().fold(fnv(FNV_OFFSET, b'c'), fnv_char);
            emit(hash);
        }
    }
    if let Some(hash) = word {
        emit(hash);
    }
}

/// Adds the built-in features of `text` to `histogram` (any length; a feature goes to bucket
/// `hash % len`) as a distribution summing to 1. Returns false, adding nothing, when the text
/// has no features (no letters or digits) or the histogram is empty.
pub fn add_text_features(text: &str, histogram: &mut [f64]) -> bool {
    let n_buckets = histogram.len() as u64;
    if n_buckets == 0 {
        return false;
    }
    let mut n_features = 0u64;
    each_feature(text, |_| n_features += 1);
    if n_features == 0 {
        return false;
    }
    let weight = 1.0 / n_features as f64;
    each_feature(text, |hash| {
        if let Some(bucket) = usize::try_from(hash % n_buckets)
            .ok()
            .and_then(|idx| histogram.get_mut(idx))
        {
            *bucket += weight;
        }
    });
    true
}

/// The histogram of the built-in features over `texts`, with [`FEATURE_BUCKETS`] buckets.
pub fn text_histogram<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<f64> {
    let mut histogram = vec![0.0; FEATURE_BUCKETS];
    for text in texts {
        add_text_features(text, &mut histogram);
    }
    histogram
}

/// The Jensen-Shannon divergence (base 2, so in 0..=1) between two histograms of non-negative
/// weights, each normalised to sum to 1. `None` when the lengths differ, a weight is negative or
/// not finite, or either histogram sums to zero.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() {
        return None;
    }
    let valid = |weight: &f64| weight.is_finite() && *weight >= 0.0;
    if !p.iter().all(valid) || !q.iter().all(valid) {
        return None;
    }
    let p_total: f64 = p.iter().sum();
    let q_total: f64 = q.iter().sum();
    if p_total <= 0.0 || q_total <= 0.0 {
        return None;
    }
    // JSD = 1/2 KL(P||M) + 1/2 KL(Q||M), M = (P+Q)/2; terms with a zero weight contribute 0.
    let mut divergence = 0.0;
    for (p_weight, q_weight) in p.iter().zip(q) {
        let p_i = p_weight / p_total;
        let q_i = q_weight / q_total;
        let m_i = (p_i + q_i) / 2.0;
        if p_i > 0.0 {
            divergence += 0.5 * p_i * (p_i / m_i).log2();
        }
        if q_i > 0.0 {
            divergence += 0.5 * q_i * (q_i / m_i).log2();
        }
    }
    Some(divergence.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_diverge_by_zero() {
        assert_eq!(
            jensen_shannon(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]),
            Some(0.0)
        );
        let a = text_histogram(["refund my order please"]);
        assert_eq!(jensen_shannon(&a, &a), Some(0.0));
    }

    #[test]
    fn disjoint_distributions_diverge_by_one() {
        assert_eq!(jensen_shannon(&[1.0, 0.0], &[0.0, 5.0]), Some(1.0));
    }

    #[test]
    fn a_small_case_by_hand() {
        // P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4).
        // KL(P||M) = 1/2 log2(2/3) + 1/2 log2(2) = 0.5 - 0.5 log2(3) + 0.5 = 1 - 0.5 log2 3
        //          = 0.2075187...; KL(Q||M) = log2(4/3) = 0.4150375...
        // JSD = (0.2075187 + 0.4150375) / 2 = 0.3112781...
        let jsd = jensen_shannon(&[1.0, 1.0], &[1.0, 0.0]).unwrap();
        assert!((jsd - 0.311_278_1).abs() < 1e-6, "{jsd}");
    }

    #[test]
    fn bad_histograms_have_no_divergence() {
        assert_eq!(jensen_shannon(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(jensen_shannon(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert_eq!(jensen_shannon(&[-1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(jensen_shannon(&[f64::NAN, 2.0], &[1.0, 2.0]), None);
        assert_eq!(jensen_shannon(&[], &[]), None);
    }

    #[test]
    fn features_of_a_text_by_hand() {
        // "Ab  c!" normalises to "ab c ": words `ab`, `c`; trigrams `ab `, `b c`, ` c `.
        let mut n = 0;
        each_feature("Ab  c!", |_| n += 1);
        assert_eq!(n, 5);
        let mut histogram = vec![0.0; 8];
        assert!(add_text_features("Ab  c!", &mut histogram));
        assert!((histogram.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(!add_text_features("!!  ?", &mut histogram));
        assert!(!add_text_features("abc", &mut []));
        // Case and punctuation do not change the features.
        assert_eq!(
            text_histogram(["Hello, World"]),
            text_histogram(["hello world"])
        );
    }
}
