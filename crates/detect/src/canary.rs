//! Canary tokens: generating them and finding them in text, plain or disguised.
//!
//! A [`CanarySet`] is built once per pact version. It compiles every token and its encoded forms
//! into one Aho-Corasick automaton that runs over a *folded* view of the text: ASCII letters and
//! digits only, lowercased. Folding makes one pattern cover the exact token, a case-changed copy,
//! and a copy split by whitespace or punctuation (`pct canary 1f2e ...`, `p-c-t-c-a-n-a-r-y...`).
//! Hex (either case, with or without separators) is the folded hex of the token's bytes. Base64
//! (standard and url-safe, which differ only in punctuation that folding drops) is covered at any
//! alignment by the stable middle of the three shifted encodings. URL (percent) encoding, whole or
//! mixed, is covered by a second pass over the percent-decoded text, run only when the text has a
//! `%`. The scan allocates one buffer the size of the text and walks it once per pass.

use std::ops::Range;

use aho_corasick::AhoCorasick;

/// The fixed, rare prefix of tokens made by [`new_canary`].
pub const CANARY_PREFIX: &str = "pct-canary-";
/// Fewest ASCII letters and digits a token may have: shorter tokens would match benign text.
pub const TOKEN_ALNUM_CHARS_MIN: usize = 12;
/// Longest token accepted, in bytes.
pub const TOKEN_BYTES_MAX: usize = 256;
/// Bytes of each pattern's start used by the prefilter.
const PREFILTER_PREFIX_BYTES: usize = 8;
/// Most distinct pattern starts for which the prefilter is built.
const PREFILTER_PREFIXES_MAX: usize = 32;
/// Most automaton matches looked at per pass of one scan. A text stuffed with canaries is
/// reported by its first matches (any one hit decides); the cap keeps such a text from costing
/// quadratic time in the hit bookkeeping.
pub const CANARY_HITS_MAX: usize = 1024;
/// Most tokens one set may hold.
pub const TOKENS_MAX: usize = 100_000;

/// Why a set of canary tokens was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanaryError {
    /// A token has too few letters and digits to be told apart from ordinary text.
    #[error("canary token `{token}` has {n_alnum_chars} letters and digits; at least {TOKEN_ALNUM_CHARS_MIN} are needed")]
    TooShort { token: String, n_alnum_chars: usize },
    /// A token is longer than [`TOKEN_BYTES_MAX`].
    #[error("canary token number {token_idx} is {token_bytes} bytes; the limit is {TOKEN_BYTES_MAX} bytes")]
    TooLong {
        token_idx: usize,
        token_bytes: usize,
    },
    /// A token contains a character outside ASCII.
    #[error("canary token `{token}` contains a character outside ASCII")]
    NotAscii { token: String },
    /// More than [`TOKENS_MAX`] tokens were given.
    #[error("{n_tokens} canary tokens given; the limit is {TOKENS_MAX}")]
    TooMany { n_tokens: usize },
    /// The automaton could not be built (it would exceed the matcher's own size limits).
    #[error("canary automaton could not be built: {message}")]
    Automaton { message: String },
}

/// How a canary appeared in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CanaryEncoding {
    /// Byte for byte.
    Exact,
    /// Same letters, different case.
    CaseChanged,
    /// Broken up (or rejoined) by whitespace or punctuation.
    Split,
    /// Inside base64, standard or url-safe, at any alignment.
    Base64,
    /// As hex bytes, either case.
    Hex,
    /// Percent-encoded, wholly or partly.
    Url,
}

impl CanaryEncoding {
    /// A stable lowercase name for reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryEncoding::Exact => "exact",
            CanaryEncoding::CaseChanged => "case_changed",
            CanaryEncoding::Split => "split",
            CanaryEncoding::Base64 => "base64",
            CanaryEncoding::Hex => "hex",
            CanaryEncoding::Url => "url",
        }
    }
}

/// One canary found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryHit {
    /// Index of the token in the order given to [`CanarySet::new`].
    pub token_idx: usize,
    /// The token itself.
    pub token: String,
    /// How it appeared.
    pub encoding: CanaryEncoding,
    /// Byte range in the scanned text (for base64, the part of the blob that encodes the token).
    pub span: Range<usize>,
}

/// What one automaton pattern stands for.
#[derive(Debug, Clone, Copy)]
struct PatternMeaning {
    token_idx: usize,
    form: Form,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Hex,
    Base64,
}

/// A compiled set of canary tokens. Cheap to share; scanning does not mutate it.
#[derive(Debug, Clone)]
pub struct CanarySet {
    tokens: Vec<String>,
    patterns: Vec<PatternMeaning>,
    automaton: Option<AhoCorasick>,
    /// The distinct first bytes of every pattern, when there are few: tokens made by
    /// [`new_canary`] share a prefix, so their five forms start in a handful of ways and a small
    /// SIMD-friendly automaton rules out most texts before the big one runs.
    prefilter: Option<Prefilter>,
}

/// A SIMD substring searcher over the few distinct pattern starts, or an automaton where SIMD is
/// not available.
#[derive(Debug, Clone)]
enum Prefilter {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Prefilter {
    fn new(prefixes: &[&[u8]]) -> Option<Prefilter> {
        let mut builder = aho_corasick::packed::Config::new().builder();
        builder.extend(prefixes);
        match builder.build() {
            Some(searcher) => Some(Prefilter::Packed(searcher)),
            None => AhoCorasick::new(prefixes).ok().map(Prefilter::Automaton),
        }
    }

    fn is_match(&self, haystack: &[u8]) -> bool {
        match self {
            Prefilter::Packed(searcher) => searcher.find(haystack).is_some(),
            Prefilter::Automaton(automaton) => automaton.is_match(haystack),
        }
    }
}

impl CanarySet {
    /// Compiles `tokens`. Each must be ASCII, at most [`TOKEN_BYTES_MAX`] bytes, with at least
    /// [`TOKEN_ALNUM_CHARS_MIN`] letters and digits. An empty set is allowed and never matches.
    pub fn new<I, S>(tokens: I) -> Result<CanarySet, CanaryError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut token_list = Vec::new();
        for (token_idx, token) in tokens.into_iter().enumerate() {
            if token_idx >= TOKENS_MAX {
                return Err(CanaryError::TooMany {
                    n_tokens: token_idx + 1,
                });
            }
            let token = token.as_ref();
            if token.len() > TOKEN_BYTES_MAX {
                return Err(CanaryError::TooLong {
                    token_idx,
                    token_bytes: token.len(),
                });
            }
            if !token.is_ascii() {
                return Err(CanaryError::NotAscii {
                    token: token.to_string(),
                });
            }
            let n_alnum_chars = token.bytes().filter(u8::is_ascii_alphanumeric).count();
            if n_alnum_chars < TOKEN_ALNUM_CHARS_MIN {
                return Err(CanaryError::TooShort {
                    token: token.to_string(),
                    n_alnum_chars,
                });
            }
            token_list.push(token.to_string());
        }

        let mut pattern_bytes: Vec<Vec<u8>> = Vec::new();
        let mut patterns = Vec::new();
        for (token_idx, token) in token_list.iter().enumerate() {
            let bytes = token.as_bytes();
            let mut push = |form: Form, raw: Vec<u8>| {
                let folded = fold(&raw);
                // Very short stable parts would be too loose to trust; the plain form always stays.
                if form == Form::Plain || folded.len() >= TOKEN_ALNUM_CHARS_MIN {
                    pattern_bytes.push(folded);
                    patterns.push(PatternMeaning { token_idx, form });
                }
            };
            push(Form::Plain, bytes.to_vec());
            push(Form::Hex, hex_lower(bytes));
            for shift in 0..3 {
                push(Form::Base64, base64_stable_middle(bytes, shift));
            }
        }
        let automaton = if pattern_bytes.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .build(&pattern_bytes)
                    .map_err(|error| CanaryError::Automaton {
                        message: error.to_string(),
                    })?,
            )
        };
        let mut prefixes: Vec<&[u8]> = pattern_bytes
            .iter()
            .map(|p| p.get(..PREFILTER_PREFIX_BYTES).unwrap_or(p))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let prefilter = if !prefixes.is_empty() && prefixes.len() <= PREFILTER_PREFIXES_MAX {
            Prefilter::new(&prefixes)
        } else {
            None
        };
        Ok(CanarySet {
            tokens: token_list,
            patterns,
            automaton,
            prefilter,
        })
    }

    /// True when the set holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Number of tokens in the set.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The tokens, in the order given.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Every canary present in `text`: exact, case-changed, split by whitespace or punctuation,
    /// base64 (standard and url-safe, any alignment), hex (either case) and percent-encoded
    /// (wholly or partly). Hits are ordered by span start; one hit per token and place. At most
    /// [`CANARY_HITS_MAX`] automaton matches per pass are examined.
    pub fn scan(&self, text: &str) -> Vec<CanaryHit> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        let bytes = text.as_bytes();

        let folded = fold(bytes);
        let may_match =
            |haystack: &[u8]| self.prefilter.as_ref().is_none_or(|p| p.is_match(haystack));
        let found_iter = may_match(&folded).then(|| automaton.find_overlapping_iter(&folded));
        let raw: Vec<_> = found_iter
            .into_iter()
            .flatten()
            .take(CANARY_HITS_MAX)
            .collect();
        if !raw.is_empty() {
            // Where each folded byte came from: built only when something matched.
            let origins: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|(_, byte)| byte.is_ascii_alphanumeric())
                .map(|(idx, _)| idx)
                .collect();
            for found in raw {
                let Some(meaning) = self.patterns.get(found.pattern().as_usize()) else {
                    continue;
                };
                let (Some(start), Some(last)) = (
                    origins.get(found.start()).copied(),
                    origins.get(found.end().saturating_sub(1)).copied(),
                ) else {
                    continue;
                };
                let span = start..last + 1;
                let encoding = match meaning.form {
                    Form::Hex => CanaryEncoding::Hex,
                    Form::Base64 => CanaryEncoding::Base64,
                    Form::Plain => self.classify_plain(meaning.token_idx, bytes, &span),
                };
                self.push_hit(&mut hits, meaning.token_idx, encoding, span);
            }
        }

        if bytes.contains(&b'%') {
            let (decoded_folded, origins) = percent_decode_folded(bytes);
            let found_iter = may_match(&decoded_folded)
                .then(|| automaton.find_overlapping_iter(&decoded_folded));
            for found in found_iter.into_iter().flatten().take(CANARY_HITS_MAX) {
                let Some(meaning) = self.patterns.get(found.pattern().as_usize()) else {
                    continue;
                };
                let (Some(start), Some(end_origin)) = (
                    origins.get(found.start()).copied(),
                    origins.get(found.end().saturating_sub(1)).copied(),
                ) else {
                    continue;
                };
                let span = start.0..end_origin.1;
                // A percent-encoded token decodes to the plain token; a hex or base64 form that
                // only shows up after decoding was percent-encoded too.
                self.push_hit(&mut hits, meaning.token_idx, CanaryEncoding::Url, span);
            }
        }

        hits.sort_by(|a, b| {
            (a.span.start, a.token_idx, a.encoding).cmp(&(b.span.start, b.token_idx, b.encoding))
        });
        hits
    }

    fn classify_plain(
        &self,
        token_idx: usize,
        bytes: &[u8],
        span: &Range<usize>,
    ) -> CanaryEncoding {
        let token = self
            .tokens
            .get(token_idx)
            .map(String::as_bytes)
            .unwrap_or_default();
        let found = bytes.get(span.clone()).unwrap_or_default();
        // The folded match spans letters and digits only; widen by the token's own leading and
        // trailing punctuation so `pct-canary-...` compares whole.
        let lead = token
            .iter()
            .take_while(|b| !b.is_ascii_alphanumeric())
            .count();
        let trail = token
            .iter()
            .rev()
            .take_while(|b| !b.is_ascii_alphanumeric())
            .count();
        let wide = span
            .start
            .checked_sub(lead)
            .and_then(|start| bytes.get(start..span.end + trail));
        let candidates = [Some(found), wide];
        if candidates.iter().flatten().any(|c| *c == token) {
            CanaryEncoding::Exact
        } else if candidates
            .iter()
            .flatten()
            .any(|c| c.eq_ignore_ascii_case(token))
        {
            CanaryEncoding::CaseChanged
        } else {
            CanaryEncoding::Split
        }
    }

    fn push_hit(
        &self,
        hits: &mut Vec<CanaryHit>,
        token_idx: usize,
        encoding: CanaryEncoding,
        span: Range<usize>,
    ) {
        // One hit per token and place: a URL hit found after decoding replaces a hex or plain hit
        // over the same bytes (`%70%63...` folds to hex), otherwise the first hit stands.
        if let Some(existing) = hits
            .iter_mut()
            .find(|hit| hit.token_idx == token_idx && overlaps(&hit.span, &span))
        {
            if encoding == CanaryEncoding::Url && existing.encoding != CanaryEncoding::Url {
                existing.encoding = CanaryEncoding::Url;
                existing.span = span;
            }
            return;
        }
        let token = self.tokens.get(token_idx).cloned().unwrap_or_default();
        hits.push(CanaryHit {
            token_idx,
            token,
            encoding,
            span,
        });
    }
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Per byte: its lowercase form when it is an ASCII letter or digit, else 0.
const FOLD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() {
            table[byte] = b.to_ascii_lowercase();
        }
        byte += 1;
    }
    table
};

/// ASCII letters and digits of `bytes`, lowercased, everything else dropped. Written without a
/// branch on the byte so it runs at about a byte per cycle: this is the canary scan's fixed cost.
fn fold(bytes: &[u8]) -> Vec<u8> {
    let mut folded = vec![0u8; bytes.len()];
    let mut n_kept = 0usize;
    for byte in bytes {
        let value = FOLD[usize::from(*byte)];
        if let Some(slot) = folded.get_mut(n_kept) {
            *slot = value;
        }
        n_kept += usize::from(value != 0);
    }
    folded.truncate(n_kept);
    folded
}

/// Percent-decodes `bytes` and folds the result; each folded byte carries the original byte range
/// it came from.
fn percent_decode_folded(bytes: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut folded = Vec::with_capacity(bytes.len());
    let mut origins = Vec::with_capacity(bytes.len());
    let mut byte_idx = 0;
    while let Some(&byte) = bytes.get(byte_idx) {
        let escaped = if byte == b'%' {
            match (
                bytes.get(byte_idx + 1).and_then(|b| hex_value(*b)),
                bytes.get(byte_idx + 2).and_then(|b| hex_value(*b)),
            ) {
                (Some(high), Some(low)) => Some(high << 4 | low),
                _ => None,
            }
        } else {
            None
        };
        let (decoded, n_bytes) = match escaped {
            Some(decoded) => (decoded, 3),
            None => (byte, 1),
        };
        if decoded.is_ascii_alphanumeric() {
            folded.push(decoded.to_ascii_lowercase());
            origins.push((byte_idx, byte_idx + n_bytes));
        }
        byte_idx += n_bytes;
    }
    (folded, origins)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.extend([
            HEX_DIGITS[usize::from(byte >> 4)],
            HEX_DIGITS[usize::from(byte & 0x0f)],
        ]);
    }
    out
}

/// The base64 characters that encode `bytes` whatever precedes them, when they start at offset
/// `shift` (0, 1 or 2) within a 3-byte group: only groups made wholly of token bytes are kept.
fn base64_stable_middle(bytes: &[u8], shift: usize) -> Vec<u8> {
    let skip = (3 - shift % 3) % 3;
    let mut out = Vec::new();
    for group in bytes.get(skip..).unwrap_or_default().chunks_exact(3) {
        if let [a, b, c] = group {
            let n = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
            for shift_bits in [18u32, 12, 6, 0] {
                out.push(BASE64_ALPHABET[((n >> shift_bits) & 0x3f) as usize]);
            }
        }
    }
    out
}

/// A new canary token: [`CANARY_PREFIX`] followed by the 16 lowercase hex digits of `random`.
/// The caller supplies the randomness (this crate has none of its own).
pub fn new_canary(random: [u8; 8]) -> String {
    let mut token = String::with_capacity(CANARY_PREFIX.len() + 16);
    token.push_str(CANARY_PREFIX);
    for byte in hex_lower(&random) {
        token.push(char::from(byte));
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8], url_safe: bool) -> String {
        let mut out = String::new();
        for group in bytes.chunks(3) {
            let mut padded = [0u8; 3];
            padded[..group.len()].copy_from_slice(group);
            let n = u32::from(padded[0]) << 16 | u32::from(padded[1]) << 8 | u32::from(padded[2]);
            let n_chars = group.len() + 1;
            for (char_idx, shift_bits) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if char_idx < n_chars {
                    let mut c = BASE64_ALPHABET[((n >> shift_bits) & 0x3f) as usize];
                    if url_safe {
                        c = match c {
                            b'+' => b'-',
                            b'/' => b'_',
                            other => other,
                        };
                    }
                    out.push(char::from(c));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn set() -> (CanarySet, String) {
        let token = new_canary([0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67]);
        let mut tokens: Vec<String> = (0u8..50).map(|i| new_canary([i; 8])).collect();
        tokens.push(token.clone());
        (CanarySet::new(&tokens).unwrap(), token)
    }

    fn only_hit(set: &CanarySet, text: &str) -> CanaryHit {
        let hits = set.scan(text);
        assert_eq!(hits.len(), 1, "{text}: {hits:?}");
        hits.into_iter().next().unwrap()
    }

    #[test]
    fn new_canary_has_prefix_and_hex() {
        assert_eq!(new_canary([0xab; 8]), "pct-canary-abababababababab");
    }

    #[test]
    fn exact_case_and_split() {
        let (set, token) = set();
        let hit = only_hit(&set, &format!("the key is {token}."));
        assert_eq!(hit.encoding, CanaryEncoding::Exact);
        assert_eq!(&format!("the key is {token}.")[hit.span.clone()], token);
        assert_eq!(hit.token_idx, 50);

        let upper = token.to_uppercase();
        assert_eq!(
            only_hit(&set, &format!("x {upper} y")).encoding,
            CanaryEncoding::CaseChanged
        );

        let spaced: String = token.chars().flat_map(|c| [c, ' ']).collect();
        assert_eq!(only_hit(&set, &spaced).encoding, CanaryEncoding::Split);
        let dotted = token.replace('-', ".");
        assert_eq!(only_hit(&set, &dotted).encoding, CanaryEncoding::Split);
    }

    #[test]
    fn base64_every_alignment_both_alphabets() {
        let (set, token) = set();
        for prefix in ["", "a", "ab", "abc", "secret: "] {
            for url_safe in [false, true] {
                let payload = format!("{prefix}{token} trailing");
                let text = format!("data={}", b64(payload.as_bytes(), url_safe));
                assert_eq!(
                    only_hit(&set, &text).encoding,
                    CanaryEncoding::Base64,
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn hex_both_cases_and_separated() {
        let (set, token) = set();
        let lower = String::from_utf8(hex_lower(token.as_bytes())).unwrap();
        assert_eq!(only_hit(&set, &lower).encoding, CanaryEncoding::Hex);
        assert_eq!(
            only_hit(&set, &lower.to_uppercase()).encoding,
            CanaryEncoding::Hex
        );
        let colon: Vec<String> = token.bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            only_hit(&set, &colon.join(":")).encoding,
            CanaryEncoding::Hex
        );
    }

    #[test]
    fn url_encoded_whole_and_mixed() {
        let (set, token) = set();
        let whole: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
        let text = format!("https://x.example/?q={whole}");
        let hit = only_hit(&set, &text);
        assert_eq!(hit.encoding, CanaryEncoding::Url);
        assert_eq!(&text[hit.span.clone()], whole);
        let mixed: String = token
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 3 == 0 {
                    format!("%{b:02x}")
                } else {
                    char::from(b).to_string()
                }
            })
            .collect();
        assert_eq!(only_hit(&set, &mixed).encoding, CanaryEncoding::Url);
    }

    #[test]
    fn benign_text_never_matches() {
        let (set, _) = set();
        for text in [
            "",
            "Please refund order 1234 for the customer.",
            "pct-canary- is our prefix, but no token follows",
            "%41%42%43 deadbeef 0123456789abcdef SGVsbG8gd29ybGQ=",
            "ünïcödé text ✓ with emoji 🌳 and % signs %",
        ] {
            assert!(set.scan(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn several_tokens_reported_in_order() {
        let tokens = [new_canary([1; 8]), new_canary([2; 8])];
        let set = CanarySet::new(&tokens).unwrap();
        let text = format!("{} and {}", tokens[1], tokens[0]);
        let hits = set.scan(&text);
        let idxs: Vec<usize> = hits.iter().map(|h| h.token_idx).collect();
        assert_eq!(idxs, vec![1, 0]);
    }

    #[test]
    fn text_stuffed_with_canaries_stays_cheap() {
        let (set, token) = set();
        let text = format!("{token} ").repeat(40_000);
        let started = std::time::Instant::now();
        let hits = set.scan(&text);
        assert!(!hits.is_empty() && hits.len() <= CANARY_HITS_MAX);
        assert_eq!(&text[hits[0].span.clone()], token);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn rejects_bad_tokens() {
        assert!(matches!(
            CanarySet::new(["short-1"]),
            Err(CanaryError::TooShort { .. })
        ));
        assert!(matches!(
            CanarySet::new(["é-long-enough-token-1234"]),
            Err(CanaryError::NotAscii { .. })
        ));
        let long = "a".repeat(TOKEN_BYTES_MAX + 1);
        assert!(matches!(
            CanarySet::new([long]),
            Err(CanaryError::TooLong { .. })
        ));
        let empty = CanarySet::new(Vec::<String>::new()).unwrap();
        assert!(empty.is_empty());
        assert!(empty.scan("anything").is_empty());
    }
}
