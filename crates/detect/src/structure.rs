//! Structural signals that need no vocabulary: chat-template and role markers, hidden text,
//! exfiltration shapes (markdown images and links carrying data), and encoded payloads.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::{Finding, FindingKind, Source};

/// Shortest base64 run treated as a possible encoded payload, in bytes.
pub(crate) const BASE64_RUN_BYTES_MIN: usize = 24;
/// Longest base64 run decoded and rescanned, in bytes; longer runs are reported undecoded.
pub(crate) const BASE64_RUN_BYTES_MAX: usize = 64 * 1024;
/// Most base64 runs decoded per scan.
pub(crate) const BASE64_RUNS_MAX: usize = 8;

/// Characters looked at either side of an invisible character to decide if it sits in a word.
const NEIGHBOUR_CHARS_MAX: usize = 8;
/// Bytes looked at after a hiding style for the hidden element's text.
const HIDDEN_ELEMENT_BYTES_MAX: usize = 1024;
/// Longest markdown URL looked at, in bytes.
const URL_BYTES_MAX: usize = 4096;
/// Bytes looked back from `](` for the start of a markdown link label.
const LINK_LABEL_BYTES_MAX: usize = 512;

/// Special tokens of chat templates: never part of ordinary content.
const TEMPLATE_TOKENS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|endoftext|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|channel|>",
    "<|message|>",
];

/// Pseudo-tags used to make text read as an instruction from the system (MCP tool poisoning
/// hides instructions in `<IMPORTANT>` blocks of tool descriptions).
const AUTHORITY_TAGS: &[&str] = &[
    "<important>",
    "<system>",
    "</system>",
    "<instructions>",
    "<admin>",
    "<sys>",
];

/// Role labels at the start of a line: (label, score). A system label claims the highest authority.
const ROLE_LABELS: &[(&str, f32)] = &[
    ("system:", 0.75),
    ("system prompt:", 0.8),
    ("### system", 0.8),
    ("### instruction", 0.6),
    ("instruction:", 0.55),
    ("instructions:", 0.5),
    ("new instructions:", 0.75),
    ("{system:", 0.8),
    ("[system]", 0.8),
    ("(system)", 0.7),
    ("assistant:", 0.45),
    ("human:", 0.45),
    ("ai:", 0.35),
    ("### response", 0.5),
    ("system message:", 0.8),
    ("admin:", 0.5),
    ("developer:", 0.5),
];

#[derive(Debug, Clone)]
pub(crate) struct Structure {
    template_tokens: AhoCorasick,
}

impl Structure {
    pub fn new() -> Result<Structure, aho_corasick::BuildError> {
        let template_tokens = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(TEMPLATE_TOKENS.iter().chain(AUTHORITY_TAGS))?;
        Ok(Structure { template_tokens })
    }

    pub fn run(&self, text: &str, source: Source, findings: &mut Vec<Finding>) {
        self.role_markers(text, findings);
        hidden_text(text, findings);
        exfiltration_shapes(text, source, findings);
    }

    fn role_markers(&self, text: &str, findings: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        if bytes.contains(&b'<') || bytes.contains(&b'[') {
            for found in self.template_tokens.find_iter(bytes) {
                let template = found.pattern().as_usize() < TEMPLATE_TOKENS.len();
                findings.push(Finding {
                    kind: FindingKind::RoleMarker,
                    rule: if template {
                        "template_token"
                    } else {
                        "authority_tag"
                    },
                    score: if template { 0.9 } else { 0.5 },
                    span: found.start()..found.end(),
                    reason: if template {
                        "contains a chat-template control token".to_string()
                    } else {
                        "wraps text in a pseudo-tag that claims system authority".to_string()
                    },
                });
            }
        }
        let mut line_start = 0;
        let literal_newlines = memchr::memmem::find(text.as_bytes(), b"\\n").is_some();
        for line in text.split_inclusive(['\n']).flat_map(|line| {
            let split_literal = literal_newlines && line.contains("\\n");
            let (whole, parts) = if split_literal {
                (None, Some(line.split_inclusive("\\n")))
            } else {
                (Some(line), None)
            };
            whole.into_iter().chain(parts.into_iter().flatten())
        }) {
            // Every label starts, after the trimmed marks, with one of these letters or marks.
            let first = line
                .bytes()
                .find(|b| !matches!(b, b' ' | b'\t' | b'>' | b'*' | b'"' | b'\'' | b'\\'))
                .map(|b| b.to_ascii_lowercase());
            if !matches!(
                first,
                Some(b's' | b'#' | b'i' | b'n' | b'{' | b'[' | b'(' | b'a' | b'h' | b'd')
            ) {
                line_start += line.len();
                continue;
            }
            let trimmed = line.trim_start_matches([' ', '\t', '>', '*', '#', '"', '\'', '\\', 'n']);
            let offset = line_start + (line.len() - trimmed.len());
            // "### System" keeps its hashes; look at the untrimmed line as well.
            let hashed = line.trim_start_matches([' ', '\t']);
            let hashed_offset = line_start + (line.len() - hashed.len());
            for (label, score) in ROLE_LABELS {
                let (candidate, at) = if label.starts_with('#') {
                    (hashed, hashed_offset)
                } else {
                    (trimmed, offset)
                };
                if candidate.len() >= label.len()
                    && candidate
                        .get(..label.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(label))
                {
                    // `System: Ubuntu 22.04` in a bug report and `Instructions: preheat the oven`
                    // in a recipe are labels too; a role label counts when what follows speaks
                    // to the reader.
                    let rest = text.get(at + label.len()..).unwrap_or_default();
                    let rest: String = rest.chars().take(200).collect();
                    let addressed = rest.split(|c: char| !c.is_alphanumeric()).any(|w| {
                        [
                            "you",
                            "your",
                            "assistant",
                            "must",
                            "ignore",
                            "always",
                            "never",
                            "du",
                            "sie",
                            "ai",
                            "model",
                            "obey",
                            "reveal",
                        ]
                        .iter()
                        .any(|m| w.eq_ignore_ascii_case(m))
                    });
                    findings.push(Finding {
                        kind: FindingKind::RoleMarker,
                        rule: "role_label",
                        score: if addressed { *score } else { score.min(0.3) },
                        span: at..at + label.len(),
                        reason: format!("a line opens with the role label `{label}`"),
                    });
                    break;
                }
            }
            line_start += line.len();
        }
    }
}

/// Invisible and direction-changing characters, and markup that hides text from a human reader.
fn hidden_text(text: &str, findings: &mut Vec<Finding>) {
    // Every character checked below is encoded with one of these lead bytes.
    let bytes = text.as_bytes();
    if memchr::memchr3(0xE2, 0xEF, 0xF3, bytes).is_some() || memchr::memchr(0xE1, bytes).is_some() {
        invisible_chars(text, findings);
    }
    html_hiding(text, findings);
}

fn invisible_chars(text: &str, findings: &mut Vec<Finding>) {
    let mut n_tag_chars = 0usize;
    let mut n_bidi = 0usize;
    let mut n_in_word = 0usize;
    let mut run = 0usize;
    let mut run_max = 0usize;
    let mut n_other = 0usize;
    let mut first: Option<usize> = None;
    let mut last = 0usize;
    let mut prev_end = 0usize;
    // Visit only characters whose lead byte can start an invisible character.
    let bytes = text.as_bytes();
    let mut lead_positions: Vec<usize> = memchr::memchr3_iter(0xE2, 0xEF, 0xF3, bytes).collect();
    if bytes.contains(&0xE1) {
        lead_positions.extend(memchr::memchr_iter(0xE1, bytes));
        lead_positions.sort_unstable();
    }
    let candidates = lead_positions.into_iter().filter_map(|idx| {
        text.get(idx..)
            .and_then(|t| t.chars().next())
            .map(|c| (idx, c))
    });
    for (idx, c) in candidates {
        if idx != prev_end {
            // Visible text lay between this candidate and the previous invisible character.
            run_max = run_max.max(run);
            run = 0;
        }
        let invisible = match c {
            '\u{E0000}'..='\u{E007F}' => {
                n_tag_chars += 1;
                true
            }
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
                n_bidi += 1;
                true
            }
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{180E}' | '\u{FEFF}' => true,
            _ => false,
        };
        if !invisible {
            run_max = run_max.max(run);
            run = 0;
            continue;
        }
        prev_end = idx + c.len_utf8();
        let prev_visible = text
            .get(..idx)
            .unwrap_or_default()
            .chars()
            .rev()
            .take(NEIGHBOUR_CHARS_MAX)
            .find(|c| !is_invisible(*c));
        run += 1;
        first.get_or_insert(idx);
        last = idx + c.len_utf8();
        // Joiners legitimately sit inside emoji sequences and Indic or Arabic words, and
        // Wikipedia separates coordinates with U+FEFF; hidden text sits *inside* Latin words.
        // Look a few characters either way only: a long run of invisible characters must not
        // make this quadratic.
        let next_visible = text
            .get(idx + c.len_utf8()..)
            .unwrap_or_default()
            .chars()
            .take(NEIGHBOUR_CHARS_MAX)
            .find(|c| !is_invisible(*c));
        let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if latin(prev_visible) && latin(next_visible) {
            n_in_word += 1;
        } else {
            n_other += 1;
        }
    }
    run_max = run_max.max(run);
    if let Some(first) = first {
        let (score, reason) = if n_tag_chars > 0 {
            (
                0.95,
                "contains invisible Unicode tag characters (ASCII smuggling)",
            )
        } else if n_bidi > 0 {
            (0.7, "contains bidirectional override characters")
        } else if n_in_word >= 2 || run_max >= 4 {
            (0.7, "contains zero-width characters hidden inside words")
        } else {
            (
                0.1 + 0.0 * n_other as f32,
                "contains a zero-width character",
            )
        };
        findings.push(Finding {
            kind: FindingKind::HiddenText,
            rule: "invisible_chars",
            score,
            span: first..last,
            reason: reason.to_string(),
        });
    }
}

fn html_hiding(text: &str, findings: &mut Vec<Finding>) {
    if !text.contains('<') && !text.contains(':') {
        return;
    }
    // HTML comments: hidden from a rendered page, read by a model.
    let mut search_from = 0;
    while let Some(rel) = text
        .as_bytes()
        .get(search_from..)
        .and_then(|t| memchr::memmem::find(t, b"<!--"))
    {
        let start = search_from + rel;
        let end = text
            .get(start..)
            .and_then(|t| t.find("-->"))
            .map_or(text.len(), |e| start + e + 3);
        let body = text
            .get(start + 4..end.saturating_sub(3).max(start + 4))
            .unwrap_or_default();
        let wordy = body.split_whitespace().count() >= 4;
        findings.push(Finding {
            kind: FindingKind::HiddenText,
            rule: "html_comment",
            score: if wordy { 0.35 } else { 0.1 },
            span: start..end,
            reason: "contains an HTML comment with prose".to_string(),
        });
        search_from = end.max(start + 4);
    }
    hidden_styles(text, findings);
}

/// CSS that hides text: display:none, visibility:hidden, zero or tiny font sizes, zero opacity,
/// and white text (on a page whose background is presumably white).
fn hidden_styles(text: &str, findings: &mut Vec<Finding>) {
    // Every pattern below holds a `:` followed (after optional spaces) by one of these; most
    // texts have none, and squashing is skipped.
    let bytes = text.as_bytes();
    let has_style_property = text.match_indices(':').any(|(idx, _)| {
        let head = bytes.get(..idx).unwrap_or_default();
        let head = head.trim_ascii_end();
        let tail = head
            .get(head.len().saturating_sub(10)..)
            .unwrap_or_default();
        let ends = |word: &[u8]| {
            tail.len() >= word.len()
                && tail
                    .get(tail.len() - word.len()..)
                    .is_some_and(|t| t.eq_ignore_ascii_case(word))
        };
        ends(b"display")
            || ends(b"visibility")
            || ends(b"font-size")
            || ends(b"opacity")
            || ends(b"color")
    });
    if !has_style_property {
        return;
    }
    const STYLES: &[(&str, &str)] = &[
        ("display:none", "display:none"),
        ("visibility:hidden", "visibility:hidden"),
        ("font-size:0", "zero font size"),
        ("font-size:1px", "tiny font size"),
        ("font-size:2px", "tiny font size"),
        ("font-size:0.1", "tiny font size"),
        ("opacity:0;", "zero opacity"),
        ("opacity:0\"", "zero opacity"),
        ("color:white", "white text"),
        ("color:#fff", "white text"),
        ("color:#ffffff", "white text"),
        ("color:rgb(255,255,255)", "white text"),
        ("color:transparent", "transparent text"),
    ];
    // Compare without whitespace and case so `display: none` and `Color: #FFF` match.
    let mut squashed = String::with_capacity(text.len());
    let mut origins = Vec::with_capacity(text.len());
    for (idx, c) in text.char_indices() {
        if !c.is_whitespace() {
            squashed.push(c.to_ascii_lowercase());
            for _ in 0..c.len_utf8() {
                origins.push(idx);
            }
        }
    }
    for (pattern, what) in STYLES {
        let mut from = 0;
        while let Some(rel) = squashed.get(from..).and_then(|s| s.find(pattern)) {
            let at = from + rel;
            // `background-color:white` is a background, not hidden text.
            let is_background = squashed
                .get(..at)
                .is_some_and(|head| head.ends_with("background-") || head.ends_with("background"));
            if !is_background {
                let start = origins.get(at).copied().unwrap_or(0);
                let end = origins
                    .get(at + pattern.len() - 1)
                    .map_or(text.len(), |e| e + 1);
                // Hidden menus and templates are common; hidden *prose* is what a model reads and a
                // person does not.
                let after_end = (end + HIDDEN_ELEMENT_BYTES_MAX).min(text.len());
                let after = text.as_bytes().get(end..after_end).unwrap_or_default();
                let element_text = after.iter().position(|b| *b == b'>').map_or(&[][..], |gt| {
                    let body = after.get(gt + 1..).unwrap_or_default();
                    let lt = body.iter().position(|b| *b == b'<').unwrap_or(body.len());
                    body.get(..lt).unwrap_or_default()
                });
                let n_words = element_text
                    .split(u8::is_ascii_whitespace)
                    .filter(|w| !w.is_empty())
                    .count();
                let prose = n_words >= 6;
                findings.push(Finding {
                    kind: FindingKind::HiddenText,
                    rule: "hidden_style",
                    score: if prose { 0.6 } else { 0.3 },
                    span: start..end,
                    reason: format!("styles text as hidden ({what})"),
                });
            }
            from = at + pattern.len();
        }
    }
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{E0000}'..='\u{E007F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{180E}' | '\u{FEFF}')
}

/// Markdown images and links whose URL carries data in its query: a rendered image fetches the
/// URL with no click, which leaks whatever the reader was told to put there.
fn exfiltration_shapes(text: &str, source: Source, findings: &mut Vec<Finding>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(rel) = text
        .as_bytes()
        .get(from..)
        .and_then(|t| memchr::memmem::find(t, b"]("))
    {
        let paren = from + rel + 2;
        from = paren;
        let url_window_end = (paren + URL_BYTES_MAX).min(text.len());
        let url_end = text
            .as_bytes()
            .get(paren..url_window_end)
            .unwrap_or_default()
            .iter()
            .position(|b| matches!(b, b')' | b' ' | b'\n'))
            .map_or(url_window_end, |e| paren + e);
        let url = text.get(paren..url_end).unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("//")) {
            continue;
        }
        let label_from = (paren - 2).saturating_sub(LINK_LABEL_BYTES_MAX);
        let label_start = bytes
            .get(label_from..paren - 2)
            .and_then(|t| t.iter().rposition(|b| *b == b'['))
            .map_or(paren - 2, |pos| label_from + pos);
        let is_image = label_start > 0 && bytes.get(label_start - 1) == Some(&b'!');
        let Some(query) = url.split_once('?').map(|(_, q)| q) else {
            continue;
        };
        let value_bytes_max = query
            .split('&')
            .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.len()))
            .max()
            .unwrap_or(query.len());
        let templated = query.contains('{')
            || query.contains('$')
            || query.contains("%7B")
            || query.contains('<')
            || query.contains('[');
        // A placeholder for data is an instruction to fill it in, wherever it appears. A long
        // value is only dangerous in what the agent itself writes (a client renders the image
        // and sends the data); in a document it is usually a tracking pixel.
        let output = source == Source::Output;
        let score = match (is_image, templated, value_bytes_max >= 24) {
            (true, true, _) => 0.9,
            (true, false, true) if output => 0.85,
            (true, false, true) => 0.3,
            (true, false, false) if output => 0.35,
            (false, true, _) => 0.7,
            (false, false, true) if output => 0.5,
            _ => 0.0,
        };
        if score > 0.0 {
            findings.push(Finding {
                kind: FindingKind::Exfiltration,
                rule: if is_image {
                    "markdown_image_data"
                } else {
                    "markdown_link_data"
                },
                score,
                span: if is_image {
                    label_start - 1
                } else {
                    label_start
                }..url_end.min(text.len()),
                reason: if templated {
                    "markdown URL with a template placeholder for data in its query".to_string()
                } else {
                    "markdown URL carrying a long value in its query".to_string()
                },
            });
        }
    }
}

/// Runs of base64 long enough to hide a sentence, decoded when they decode to readable text.
/// Fewest single letters in a row, each set off by one space, reported as spaced-out text.
pub(crate) const SPACED_LETTERS_MIN: usize = 10;

/// What one pass over the bytes found: base64 runs long enough to hide a sentence (decoded when
/// they decode to readable text) and runs of spaced-out letters ("S a y t h a t").
#[derive(Debug, Default)]
pub(crate) struct ByteRuns {
    pub base64: Vec<(Range<usize>, Option<String>)>,
    pub spaced_letters: Vec<Range<usize>>,
}

pub(crate) fn byte_runs(text: &str) -> ByteRuns {
    let bytes = text.as_bytes();
    let base64_at = |idx: usize| bytes.get(idx).is_some_and(|b| is_base64_byte(*b));
    let mut out = ByteRuns::default();
    // A run of at least BASE64_RUN_BYTES_MIN bytes that starts in [idx, probe] covers `probe`, so
    // a probe outside the alphabet skips the whole window: ordinary prose is mostly skipped.
    let mut idx = 0usize;
    while out.base64.len() < BASE64_RUNS_MAX {
        let probe = idx + BASE64_RUN_BYTES_MIN - 1;
        if probe >= bytes.len() {
            break;
        }
        if !base64_at(probe) {
            idx = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > idx && base64_at(start - 1) {
            start -= 1;
        }
        let mut end = probe + 1;
        while base64_at(end) {
            end += 1;
        }
        let run_end = end;
        while bytes.get(end) == Some(&b'=') && end - run_end < 2 {
            end += 1;
        }
        let run = bytes.get(start..end).unwrap_or_default();
        let long = run_end - start >= BASE64_RUN_BYTES_MIN;
        let mixed = || {
            run.iter().any(u8::is_ascii_uppercase)
                && run.iter().any(u8::is_ascii_lowercase)
                && run.iter().any(u8::is_ascii_digit)
        };
        if long && mixed() {
            let decoded = if run.len() <= BASE64_RUN_BYTES_MAX {
                decode_base64_text(run)
            } else {
                None
            };
            out.base64.push((start..end, decoded));
        }
        idx = end + 1;
    }
    // Spaced letters ("S a y t h a t"), with the same skipping: a run spans at least
    // `2 * SPACED_LETTERS_MIN - 1` bytes of alternating letter and space.
    let letter_at = |idx: usize| bytes.get(idx).is_some_and(u8::is_ascii_alphabetic);
    let space_at = |idx: usize| bytes.get(idx) == Some(&b' ');
    let span_min = 2 * SPACED_LETTERS_MIN - 1;
    let mut idx = 0usize;
    loop {
        let probe = idx + span_min - 1;
        if probe >= bytes.len() {
            break;
        }
        // Find a single letter at or next to the probe.
        let letter = if letter_at(probe) {
            probe
        } else if space_at(probe) && letter_at(probe + 1) {
            probe + 1
        } else {
            idx = probe + 1;
            continue;
        };
        let single = |at: usize| {
            letter_at(at)
                && (at == 0 || !bytes.get(at - 1).is_some_and(u8::is_ascii_alphanumeric))
                && !bytes.get(at + 1).is_some_and(u8::is_ascii_alphanumeric)
        };
        if !single(letter) {
            idx = probe + 1;
            continue;
        }
        let mut first = letter;
        while first >= 2 && space_at(first - 1) && single(first - 2) {
            first -= 2;
        }
        let mut last = letter;
        while space_at(last + 1) && single(last + 2) {
            last += 2;
        }
        if (last - first) / 2 + 1 >= SPACED_LETTERS_MIN {
            out.spaced_letters.push(first..last + 1);
        }
        idx = (last + 2).max(probe + 1);
    }
    out
}

/// Bytes of the standard and url-safe base64 alphabets (padding aside), as a lookup table.
const BASE64_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'-' || b == b'_';
        byte += 1;
    }
    table
};

fn is_base64_byte(byte: u8) -> bool {
    BASE64_BYTES[usize::from(byte)]
}

/// Decodes standard or url-safe base64 and returns it when it is mostly readable text.
fn decode_base64_text(run: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(run.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n_bits = 0;
    for byte in run {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push(((acc >> n_bits) & 0xff) as u8);
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    let n_chars = decoded.chars().count().max(1);
    let n_readable = decoded
        .chars()
        .filter(|c| c.is_alphabetic() || *c == ' ' || c.is_ascii_punctuation())
        .count();
    let n_spaces = decoded.chars().filter(|c| *c == ' ').count();
    (n_readable * 10 >= n_chars * 9 && n_spaces >= 2).then_some(decoded)
}
