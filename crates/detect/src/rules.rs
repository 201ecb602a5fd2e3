//! Phrase rules: injection and authority findings from the order and distance of lexicon concepts.
//!
//! A single word proves nothing ("ignore this warning" is a question about a compiler). The rules
//! ask for structure: an override verb *followed by* a reference to earlier instructions within the
//! same clause, an edit verb aimed at *the reader's own* response, a claimed role right after
//! "I'm from". Each rule's score says how strongly its shape alone indicates an attack; weak
//! shapes stay below the default threshold and only flag in combination.

use std::ops::Range;

use crate::lexicon::concept::*;
use crate::lexicon::Hit;
use crate::{Finding, FindingKind, Source};

/// Longest clause or sentence looked at around a hit, in bytes: bounds every backward and
/// forward scan so a text without punctuation costs linear time, not quadratic.
const CLAUSE_BYTES_MAX: usize = 400;
/// Bytes an override verb may be from the instructions it discards ("ignore all of the above
/// instructions" spans about 30).
const OVERRIDE_GAP_BYTES_MAX: usize = 48;

pub(crate) struct RuleInput<'a> {
    pub text: &'a str,
    pub hits: &'a [Hit],
    pub source: Source,
}

impl RuleInput<'_> {
    fn word(&self, hit: &Hit) -> &str {
        self.text.get(hit.start..hit.end).unwrap_or_default()
    }

    fn is_word(&self, hit: &Hit, words: &[&str]) -> bool {
        let word = self.word(hit);
        words.iter().any(|w| word.eq_ignore_ascii_case(w))
    }

    /// True when a clause break ('.', '!', '?', newline) lies in `range`.
    fn clause_break(&self, range: Range<usize>) -> bool {
        self.text
            .as_bytes()
            .get(range)
            .unwrap_or_default()
            .iter()
            .any(|b| matches!(b, b'.' | b'!' | b'?' | b'\n'))
    }

    /// The first hit after `from_idx` carrying `mask`, starting at most `gap_bytes_max` bytes
    /// after `anchor_end`, with no clause break in between.
    fn next(
        &self,
        from_idx: usize,
        anchor_end: usize,
        mask: u64,
        gap_bytes_max: usize,
    ) -> Option<usize> {
        for (idx, hit) in self.hits.iter().enumerate().skip(from_idx + 1) {
            if hit.start > anchor_end + gap_bytes_max {
                return None;
            }
            if hit.concepts & mask != 0 {
                if self.clause_break(anchor_end..hit.start) {
                    return None;
                }
                return Some(idx);
            }
        }
        None
    }

    fn any_between(&self, from_idx: usize, to_idx: usize, mask: u64) -> bool {
        self.hits
            .get(from_idx + 1..to_idx)
            .unwrap_or_default()
            .iter()
            .any(|hit| hit.concepts & mask != 0)
    }

    /// Start of the clause holding byte `at`.
    fn clause_start(&self, at: usize) -> usize {
        let from = at.saturating_sub(CLAUSE_BYTES_MAX);
        let bytes = self.text.as_bytes().get(from..at).unwrap_or_default();
        bytes
            .iter()
            .rposition(|b| matches!(b, b'.' | b'!' | b'?' | b'\n' | b':' | b'"' | b'(' | b'-'))
            .map_or(from, |pos| from + pos + 1)
    }

    /// Start of the sentence holding byte `at` (at most [`CLAUSE_BYTES_MAX`] back).
    fn sentence_start(&self, at: usize) -> usize {
        let from = at.saturating_sub(CLAUSE_BYTES_MAX);
        let bytes = self.text.as_bytes().get(from..at).unwrap_or_default();
        bytes
            .iter()
            .rposition(|b| matches!(b, b'.' | b'!' | b'?' | b'\n'))
            .map_or(from, |pos| from + pos + 1)
    }

    /// End of the sentence holding byte `at`, just after its final punctuation (at most
    /// [`CLAUSE_BYTES_MAX`] ahead).
    fn sentence_end(&self, at: usize) -> usize {
        let to = (at + CLAUSE_BYTES_MAX).min(self.text.len());
        let bytes = self.text.as_bytes().get(at..to).unwrap_or_default();
        bytes
            .iter()
            .position(|b| matches!(b, b'.' | b'!' | b'?' | b'\n'))
            .map_or(to, |pos| (at + pos + 1).min(self.text.len()))
    }

    /// The hits that lie wholly within `range` (hits are sorted by start).
    fn hits_within(&self, range: Range<usize>) -> &[Hit] {
        let first = self.hits.partition_point(|h| h.start < range.start);
        let rest = self.hits.get(first..).unwrap_or_default();
        let n = rest.partition_point(|h| h.start < range.end);
        rest.get(..n).unwrap_or_default()
    }

    /// True when the hit opens its clause (after at most a "please" or similar softener), which is
    /// what makes a verb an imperative rather than part of a description.
    fn opens_clause(&self, hit: &Hit) -> bool {
        let start = self.clause_start(hit.start);
        let lead = self.text.get(start..hit.start).unwrap_or_default().trim();
        let lead = lead.trim_matches(|c: char| !c.is_alphanumeric());
        lead.is_empty()
            || [
                "please", "kindly", "also", "and", "now", "then", "bitte", "so", "finally",
            ]
            .iter()
            .any(|w| lead.eq_ignore_ascii_case(w))
    }

    fn indirect(&self) -> bool {
        matches!(self.source, Source::Tool | Source::Document)
    }
}

fn finding(
    kind: FindingKind,
    rule: &'static str,
    score: f32,
    span: Range<usize>,
    reason: &str,
) -> Finding {
    Finding {
        kind,
        rule,
        score,
        span,
        reason: reason.to_string(),
    }
}

const EVERYTHING: &[&str] = &[
    "everything",
    "alles",
    "todo",
    "tout",
    "sve",
    "все",
    "all",
    "所有",
];

/// Runs every phrase rule and appends its findings.
pub(crate) fn run(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    override_rules(input, findings);
    leak_rules(input, findings);
    persona_rules(input, findings);
    output_rules(input, findings);
    invocation_rules(input, findings);
    authority_rules(input, findings);
}

fn override_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & OVERRIDE != 0 {
            // "ignore (all) (the) previous/your instructions", "drop all your instructions".
            if let Some(directive_idx) = input.next(idx, hit.end, DIRECTIVE, OVERRIDE_GAP_BYTES_MAX)
            {
                let directive = input.hits.get(directive_idx).copied().unwrap_or(*hit);
                let qualified = hit.concepts & PRIOR != 0
                    || directive.concepts & PRIOR_STRONG != 0
                    || input.any_between(idx, directive_idx, PRIOR | YOUR)
                    || input
                        .next(directive_idx, directive.end, PRIOR, 24)
                        .is_some_and(|after| {
                            input
                                .hits
                                .get(after)
                                .is_some_and(|h| h.concepts & PRIOR_STRONG != 0)
                        });
                let told = input.is_word(
                    &directive,
                    &[
                        "you were told",
                        "you've been told",
                        "you have been told",
                        "what you were told",
                    ],
                );
                if !qualified
                    && !told
                    && input.opens_clause(hit)
                    && input.is_word(
                        &directive,
                        &["articles", "documents", "context", "instructions", "rules"],
                    )
                {
                    findings.push(finding(
                        FindingKind::Injection,
                        "override",
                        0.6,
                        hit.start..directive.end,
                        "tells the reader to disregard the content it was given",
                    ));
                    continue;
                }
                if qualified || told {
                    findings.push(finding(
                        FindingKind::Injection,
                        "override",
                        0.92,
                        hit.start..directive.end,
                        "tells the reader to discard its earlier instructions",
                    ));
                    continue;
                }
            }
            // "ignore above", "forget everything above", "vergiss alles davor".
            if let Some(prior_idx) = input.next(idx, hit.end, PRIOR, 5) {
                if let Some(prior) = input.hits.get(prior_idx) {
                    let rest = input.text.get(prior.end..).unwrap_or_default().trim_start();
                    let ends = rest.is_empty()
                        || rest.starts_with([',', '.', '!', ';', ':', '-'])
                        || rest.get(..4).is_some_and(|w| {
                            w.eq_ignore_ascii_case("and ") || w.eq_ignore_ascii_case("und ")
                        });
                    if prior.concepts & PRIOR_STRONG != 0 && ends {
                        findings.push(finding(
                            FindingKind::Injection,
                            "override",
                            0.8,
                            hit.start..prior.end,
                            "tells the reader to ignore what came before",
                        ));
                        continue;
                    }
                }
            }
            // "forget everything (before that)", "vergiss alles".
            if let Some(all_idx) = input.next(idx, hit.end, PRIOR, 12) {
                if let Some(all) = input.hits.get(all_idx) {
                    if input.is_word(all, EVERYTHING) {
                        let tail = input.next(all_idx, all.end, PRIOR, 12);
                        let strong = input
                            .is_word(all, &["everything", "alles", "todo", "tout", "sve", "все"]);
                        let score = if tail.is_some() || strong { 0.8 } else { 0.35 };
                        findings.push(finding(
                            FindingKind::Injection,
                            "override",
                            score,
                            hit.start..all.end,
                            "tells the reader to forget everything so far",
                        ));
                        continue;
                    }
                }
            }
        }
        // "Die obigen Ausführungen ignorieren", "previous instructions are void".
        if hit.concepts & PRIOR_STRONG != 0 {
            if let Some(directive_idx) = input.next(idx, hit.end, DIRECTIVE, 24) {
                let directive = input.hits.get(directive_idx).copied().unwrap_or(*hit);
                if let Some(verb_idx) =
                    input.next(directive_idx, directive.end, OVERRIDE | NULLIFY, 40)
                {
                    let verb = input.hits.get(verb_idx).copied().unwrap_or(directive);
                    findings.push(finding(
                        FindingKind::Injection,
                        "override",
                        0.85,
                        hit.start..verb.end,
                        "declares the reader's earlier instructions void",
                    ));
                }
            }
        }
        if hit.concepts & SWITCH != 0 {
            let strong = input.is_word(
                hit,
                &[
                    "additional instruction",
                    "now focus on",
                    "now concentrate on",
                    "instead output",
                    "instead print",
                    "instead say",
                ],
            );
            findings.push(finding(
                FindingKind::Injection,
                "task_switch",
                if strong { 0.55 } else { 0.35 },
                hit.start..hit.end,
                "switches the reader to a new task or mode",
            ));
        }
        if hit.concepts & NEW != 0 {
            if let Some(directive_idx) = input.next(idx, hit.end, DIRECTIVE, 8) {
                let directive = input.hits.get(directive_idx).copied().unwrap_or(*hit);
                if !input.is_word(
                    &directive,
                    &[
                        "information",
                        "informationen",
                        "context",
                        "documents",
                        "articles",
                        "training",
                        "programming",
                    ],
                ) {
                    findings.push(finding(
                        FindingKind::Injection,
                        "task_switch",
                        0.4,
                        hit.start..directive.end,
                        "announces new instructions for the reader",
                    ));
                }
            }
        }
        if hit.concepts & STOP != 0
            && input.is_word(hit, &["stop", "stopp"])
            && input.opens_clause(hit)
        {
            let after = input.text.get(hit.end..).unwrap_or_default().trim_start();
            if after.starts_with(['-', ':', ',', '!']) {
                findings.push(finding(
                    FindingKind::Injection,
                    "task_switch",
                    0.4,
                    hit.start..hit.end,
                    "breaks off the conversation with a stop marker",
                ));
            }
        }
        if hit.concepts & PWNED != 0 {
            findings.push(finding(
                FindingKind::Injection,
                "pwned_marker",
                0.7,
                hit.start..hit.end,
                "contains a prompt-injection proof marker",
            ));
        }
    }
}

fn leak_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & LEAK_VERB != 0 {
            if let Some(object_idx) = input.next(idx, hit.end, LEAK_OBJECT | DIRECTIVE, 40) {
                let object = input.hits.get(object_idx).copied().unwrap_or(*hit);
                let is_prompt = object.concepts & LEAK_OBJECT != 0
                    && !input.is_word(&object, &["password", "passwords"]);
                let owned = input
                    .hits
                    .get(idx + 1..object_idx)
                    .unwrap_or_default()
                    .iter()
                    .any(|h| h.concepts & YOUR != 0 || h.concepts & PRIOR_STRONG != 0)
                    || input
                        .next(object_idx, object.end, PRIOR, 16)
                        .is_some_and(|after| {
                            input
                                .hits
                                .get(after)
                                .is_some_and(|h| h.concepts & PRIOR_STRONG != 0)
                        });
                let directive_word = input.is_word(
                    &object,
                    &[
                        "instructions",
                        "instruction",
                        "prompt",
                        "prompts",
                        "rules",
                        "guidelines",
                        "anweisungen",
                        "prompt text",
                        "prompt texts",
                        "system prompt",
                        "directives",
                    ],
                );
                if (is_prompt
                    && (owned
                        || input.is_word(
                            &object,
                            &[
                                "system prompt",
                                "prompt text",
                                "prompt texts",
                                "initial instructions",
                                "hidden instructions",
                                "secret word",
                            ],
                        )
                        || object.end - object.start > 12))
                    || (owned && directive_word)
                {
                    findings.push(finding(
                        FindingKind::Injection,
                        "prompt_leak",
                        0.85,
                        hit.start..object.end,
                        "asks the reader to disclose its prompt or instructions",
                    ));
                }
            }
        }
        if hit.concepts & ABOVE_TEXT != 0 {
            let strong = !input.is_word(hit, &["in the prompt", "this prompt"]);
            findings.push(finding(
                FindingKind::Injection,
                "prompt_leak",
                if strong { 0.7 } else { 0.35 },
                hit.start..hit.end,
                "asks about text that came before in the reader's prompt",
            ));
        }
    }
}

fn persona_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & JAILBREAK != 0 {
            findings.push(finding(
                FindingKind::Injection,
                "jailbreak",
                0.85,
                hit.start..hit.end,
                "invokes a known jailbreak persona or mode",
            ));
        } else if hit.concepts & UNRESTRICTED != 0 {
            findings.push(finding(
                FindingKind::Injection,
                "jailbreak",
                0.45,
                hit.start..hit.end,
                "asks the reader to act without its restrictions",
            ));
        } else if hit.concepts & LOCK != 0 {
            findings.push(finding(
                FindingKind::Injection,
                "roleplay_lock",
                0.5,
                hit.start..hit.end,
                "locks the reader into a role it must not leave",
            ));
        } else if hit.concepts & PERSONA != 0 {
            // "Pretend you are an evil AI" commands a persona; "can you pretend to be a tour
            // guide" asks for one. Only the command counts for much.
            let clause = input
                .text
                .get(input.clause_start(hit.start)..hit.start)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let asked = [
                "can you",
                "could you",
                "would you",
                "will you",
                "können sie",
                "kannst du",
            ]
            .iter()
            .any(|q| clause.contains(q));
            let commanding = input.is_word(
                hit,
                &[
                    "ich möchte, dass sie als",
                    "ich möchte, dass du als",
                    "i want you to act",
                    "you are now",
                    "now you are",
                    "jetzt bist du",
                    "nun bist du",
                    "du bist jetzt",
                    "you are going to act",
                    "you will be called",
                ],
            );
            // A role assigned outright ("I want you to act as", "you are now") is the classic
            // jailbreak opener; a document or tool result assigning one to its reader is worse.
            let score = if asked {
                0.25
            } else if commanding && input.indirect() {
                0.65
            } else if commanding {
                0.55
            } else if input.opens_clause(hit) {
                0.45
            } else {
                0.3
            };
            findings.push(finding(
                FindingKind::Injection,
                "persona",
                score,
                hit.start..hit.end,
                "sets up a role for the reader to play",
            ));
        }
        if hit.concepts & PRAISE != 0 {
            // "Well done! ... Now focus on your new task": closing one task to open another.
            let now = input
                .hits
                .iter()
                .skip(idx + 1)
                .take_while(|h| h.start <= hit.end + 120)
                .find(|h| h.concepts & NOW != 0);
            if let Some(now) = now {
                let closure = input.is_word(
                    hit,
                    &[
                        "that is enough",
                        "that's enough",
                        "that is done",
                        "das genügt",
                        "das ist erledigt",
                    ],
                );
                findings.push(finding(
                    FindingKind::Injection,
                    "task_switch",
                    if closure { 0.5 } else { 0.4 },
                    hit.start..now.end,
                    "closes the current task with praise and opens another",
                ));
            }
        }
        if hit.concepts & NEXT_TASK != 0 {
            // "Your new task is ...": assigning the reader a task outright.
            let assigned = idx > 0
                && input
                    .hits
                    .get(idx - 1)
                    .is_some_and(|h| h.concepts & YOUR != 0 && h.end + 1 >= hit.start);
            findings.push(finding(
                FindingKind::Injection,
                "next_task",
                if assigned { 0.5 } else { 0.3 },
                hit.start..hit.end,
                "announces another task for the reader",
            ));
        }
        if hit.concepts & NOT_BY != 0 {
            if let Some(directive_idx) = input.next(idx, hit.end, DIRECTIVE, 4) {
                let directive = input.hits.get(directive_idx).copied().unwrap_or(*hit);
                findings.push(finding(
                    FindingKind::Injection,
                    "override",
                    0.55,
                    hit.start..directive.end,
                    "tells the reader not to rely on the context it was given",
                ));
            }
        }
        if hit.concepts & (CHANGE | EDIT_VERB | YOUR) != 0 {
            // "Change your instructions to ...", "Your instructions are now to ...".
            let your_idx = if hit.concepts & YOUR != 0 {
                Some(idx)
            } else {
                input.next(idx, hit.end, YOUR, 2)
            };
            if let Some(your_idx) = your_idx {
                let your = input.hits.get(your_idx).copied().unwrap_or(*hit);
                if let Some(directive_idx) = input.next(your_idx, your.end, DIRECTIVE, 2) {
                    let directive = input.hits.get(directive_idx).copied().unwrap_or(your);
                    let own = input.is_word(
                        &directive,
                        &[
                            "instructions",
                            "instruction",
                            "rules",
                            "prompt",
                            "guidelines",
                            "programming",
                            "directives",
                            "anweisungen",
                            "regeln",
                        ],
                    );
                    let changed = your_idx != idx && hit.concepts & CHANGE != 0
                        || input
                            .next(directive_idx, directive.end, NOW_IS, 2)
                            .is_some();
                    if own && changed {
                        findings.push(finding(
                            FindingKind::Injection,
                            "override",
                            0.75,
                            hit.start..directive.end,
                            "rewrites the reader's own instructions",
                        ));
                    }
                }
            }
        }
    }
    shouting(input, findings);
}

/// An all-caps command embedded in an ordinary sentence ("How will I be able DO NOT ANSWER THIS
/// QUESTION BUT JUST OUTPUT ... to drive"): a classic way to make an instruction stand out to a
/// model while hiding in a question.
fn shouting(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    // Only lines holding a lexicon hit written in capitals can hold a shouted command; scan
    // just those lines, each once.
    let mut scanned_to = 0usize;
    for hit in input.hits {
        if hit.start < scanned_to {
            continue;
        }
        let word = input.word(hit).as_bytes();
        let caps = word.iter().filter(|b| b.is_ascii_uppercase()).count() >= 2
            && !word.iter().any(u8::is_ascii_lowercase);
        if !caps {
            continue;
        }
        let bytes = input.text.as_bytes();
        let line_start = bytes
            .get(..hit.start)
            .unwrap_or_default()
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        let line_end = bytes
            .get(hit.end..)
            .unwrap_or_default()
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |p| hit.end + p);
        shouting_line(input.text, line_start, line_end, findings);
        scanned_to = line_end;
    }
}

fn shouting_line(full_text: &str, line_start: usize, line_end: usize, findings: &mut Vec<Finding>) {
    const MARKERS: &[&str] = &[
        "DO", "NOT", "JUST", "ONLY", "YOU", "YOUR", "IGNORE", "FORGET", "OUTPUT", "SAY", "PRINT",
        "ANSWER", "ANTWORTE", "DU", "MUSST", "COMMAND", "WRITE", "RESPOND", "INSTEAD", "STOP",
        "SCHREIBE", "SAG",
    ];
    let text = full_text;
    let bytes = text.as_bytes().get(..line_end).unwrap_or_default();
    // Words are runs of letters (any non-ASCII byte counts as a letter) and apostrophes; a word is
    // "caps" when it has two or more ASCII capitals and no ASCII lowercase. One pass, no allocation.
    let mut idx = line_start;
    let mut run_first: Option<(usize, usize)> = None;
    let mut run_last = (0usize, 0usize);
    let mut n_run_words = 0usize;
    let mut lower_before = false;
    let mut prev_lower = false;
    let check = |first: (usize, usize),
                 last: (usize, usize),
                 n_words: usize,
                 lower_before: bool,
                 lower_after: bool,
                 findings: &mut Vec<Finding>| {
        if n_words < 4 || !(lower_before || lower_after) {
            return;
        }
        let run_text = text.get(first.0..last.1).unwrap_or_default();
        let n_markers = run_text
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| MARKERS.contains(w))
            .count();
        if n_markers >= 2 && !run_text.contains('\n') {
            findings.push(finding(
                FindingKind::Injection,
                "shouted_command",
                0.55,
                first.0..last.1,
                "an all-caps command is embedded in ordinary text",
            ));
        }
    };
    while idx <= bytes.len() {
        let is_letter = |b: u8| b.is_ascii_alphabetic() || b >= 0x80 || b == b'\'';
        if bytes.get(idx).is_some_and(|b| is_letter(*b)) {
            let start = idx;
            let mut n_upper = 0usize;
            let mut n_lower = 0usize;
            while let Some(b) = bytes.get(idx).copied().filter(|b| is_letter(*b)) {
                n_upper += usize::from(b.is_ascii_uppercase());
                n_lower += usize::from(b.is_ascii_lowercase());
                idx += 1;
            }
            let caps = n_upper >= 2 && n_lower == 0;
            let newline_before = bytes
                .get(run_last.1..start)
                .is_some_and(|gap| gap.contains(&b'\n'));
            if caps && !(newline_before && run_first.is_some()) {
                if run_first.is_none() {
                    run_first = Some((start, idx));
                    lower_before = prev_lower;
                }
                run_last = (start, idx);
                n_run_words += 1;
            } else {
                if let Some(first) = run_first.take() {
                    check(
                        first,
                        run_last,
                        n_run_words,
                        lower_before,
                        n_lower > 0,
                        findings,
                    );
                }
                n_run_words = 0;
                if caps {
                    run_first = Some((start, idx));
                    run_last = (start, idx);
                    n_run_words = 1;
                    lower_before = false;
                }
            }
            prev_lower = n_lower > 0;
        } else {
            idx += 1;
        }
    }
    if let Some(first) = run_first {
        check(first, run_last, n_run_words, lower_before, false, findings);
    }
}

/// First words of a sentence that make it a statement or a thank-you rather than a command.
const NOT_IMPERATIVE: &[&str] = &[
    "i", "we", "you", "he", "she", "they", "it", "this", "that", "the", "a", "an", "thanks",
    "thank", "our", "my", "his", "her", "their", "there", "here", "if", "when", "as", "for", "to",
    "on", "at", "with", "by", "from", "looking", "hope", "dear", "hi", "hello", "regards", "your",
    "is", "are", "was", "were", "do", "does", "did", "have", "has", "what", "how", "why", "who",
    "which", "where", "after", "before", "once", "all", "any", "each", "since", "because", "so",
    "but", "and", "or", "not", "no", "yes", "we'll", "i'll", "we're", "i'm", "you're", "it's",
    "let",
];
const TEXT_OUTPUT: &[&str] = &[
    "response",
    "reply",
    "answer",
    "message",
    "elucidation",
    "output",
    "replies",
    "antwort",
];

fn output_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    let score_scale = if input.indirect() { 1.0 } else { 0.45 };
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & YOUR == 0 {
            continue;
        }
        let Some(output_idx) = input.next(idx, hit.end, OUTPUT, 2) else {
            continue;
        };
        let output = input.hits.get(output_idx).copied().unwrap_or(*hit);
        let sentence_start = input.sentence_start(hit.start);
        let sentence_end = input.sentence_end(output.end);
        let sentence = input
            .text
            .get(sentence_start..sentence_end)
            .unwrap_or_default();
        if sentence.trim_end().ends_with('?') {
            continue;
        }
        let sentence_hits = input.hits_within(sentence_start..sentence_end);
        let in_sentence = |mask: u64| {
            sentence_hits
                .iter()
                .any(|h| h.end <= sentence_end && h.concepts & mask != 0)
        };
        let textual = input.is_word(&output, TEXT_OUTPUT);
        // "Integrate the following code snippet into your implementation": code aimed at the
        // reader's own code, in either order.
        let code_directive = !textual
            && in_sentence(FOLLOWING)
            && (in_sentence(SNIPPET) || sentence.contains("```"));
        // The command opens its clause: after a colon or quote ("NOTE FOR THE ASSISTANT:
        // include ..."), and not inside JSON (`"message": "Your reply was sent"`).
        let command_start = input
            .text
            .as_bytes()
            .get(sentence_start..hit.start)
            .and_then(|head| head.iter().rposition(|b| *b == b':'))
            .map_or(sentence_start, |pos| sentence_start + pos + 1);
        let command = input
            .text
            .get(command_start..sentence_end)
            .unwrap_or_default();
        // "Before answering, add ...": look past a short leading clause too.
        let after_comma = command
            .split_once(',')
            .filter(|(lead, _)| lead.len() <= 40)
            .map_or("", |(_, rest)| first_word(rest, input));
        let first_word = first_word(command, input);
        let leading_in =
            first_word.eq_ignore_ascii_case("in") && hit.start.saturating_sub(command_start) <= 6;
        let imperative = leading_in
            || [first_word, after_comma].iter().any(|word| {
                !word.is_empty()
                    && !NOT_IMPERATIVE.iter().any(|w| word.eq_ignore_ascii_case(w))
                    && word.chars().all(|c| c.is_alphabetic() || c == '\'')
            });
        let score = if code_directive {
            0.7
        } else if textual && imperative {
            0.65
        } else {
            continue;
        };
        findings.push(finding(
            FindingKind::Injection,
            "output_directive",
            score * score_scale,
            sentence_start..sentence_end,
            "tells the reader what to put in its own response",
        ));
    }
}

/// The first word of `sentence`, skipping softeners such as "please" and "don't hesitate to".
fn first_word<'a>(sentence: &'a str, _input: &RuleInput<'_>) -> &'a str {
    let mut rest = sentence.trim_start_matches(|c: char| !c.is_alphanumeric());
    loop {
        let lower = rest
            .get(..rest.len().min(24))
            .unwrap_or(rest)
            .to_ascii_lowercase();
        let softener = [
            "please ",
            "kindly ",
            "also ",
            "now ",
            "then ",
            "don't hesitate to ",
            "do not hesitate to ",
            "remember to ",
            "be sure to ",
            "make sure to ",
            "don't forget to ",
            "consider ",
        ]
        .iter()
        .find(|s| lower.starts_with(*s));
        match softener {
            Some(s) => rest = rest.get(s.len()..).unwrap_or_default(),
            None => break,
        }
    }
    rest.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .next()
        .unwrap_or_default()
}

fn invocation_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    let indirect = input.indirect();
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & ACTION != 0 {
            // An own action named in content, in an instruction to the reader.
            let window = input.clause_start(hit.start);
            let instructed = input
                .hits
                .get(..idx)
                .unwrap_or_default()
                .iter()
                .rev()
                .take_while(|h| h.start >= window)
                .any(|h| h.concepts & (INVOKE_VERB | MODAL | SEND_VERB | READER) != 0)
                || input.opens_clause(hit);
            if instructed {
                findings.push(finding(
                    FindingKind::ToolInvocation,
                    "tool_invocation",
                    if indirect { 0.88 } else { 0.3 },
                    hit.start..hit.end,
                    "tells the reader to call one of the agent's own actions",
                ));
            }
        }
        if hit.concepts & INVOKE_VERB != 0 && !input.is_word(hit, &["use"]) {
            if let Some(callable_idx) = input.next(idx, hit.end, CALLABLE, 30) {
                let callable = input.hits.get(callable_idx).copied().unwrap_or(*hit);
                if input.opens_clause(hit)
                    || input
                        .hits
                        .get(idx.saturating_sub(1))
                        .is_some_and(|h| h.concepts & MODAL != 0)
                {
                    findings.push(finding(
                        FindingKind::ToolInvocation,
                        "tool_invocation",
                        if indirect { 0.45 } else { 0.25 },
                        hit.start..callable.end,
                        "tells the reader to call a tool or run a command",
                    ));
                }
            }
        }
        if hit.concepts & SEND_VERB != 0 {
            if let Some(secret_idx) = input.next(idx, hit.end, SECRET, 60) {
                let secret = input.hits.get(secret_idx).copied().unwrap_or(*hit);
                let window_end = (secret.end + 160).min(input.text.len());
                let window = input
                    .text
                    .as_bytes()
                    .get(secret.end..window_end)
                    .unwrap_or_default();
                let clause_end = window
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(window_end, |pos| secret.end + pos);
                let tail = input.text.get(secret.end..clause_end).unwrap_or_default();
                let destination = tail.contains("http://")
                    || tail.contains("https://")
                    || tail.contains('@')
                    || tail.contains("www.");
                let score = match (destination, indirect) {
                    (true, true) => 0.85,
                    (true, false) => 0.6,
                    (false, true) => 0.45,
                    (false, false) => 0.2,
                };
                findings.push(finding(
                    FindingKind::Exfiltration,
                    "exfiltration_instruction",
                    score,
                    hit.start..secret.end,
                    "tells the reader to send sensitive data somewhere",
                ));
            }
        }
        if hit.concepts & CONCEAL != 0 {
            findings.push(finding(
                FindingKind::Injection,
                "concealment",
                if indirect { 0.6 } else { 0.3 },
                hit.start..hit.end,
                "tells the reader to hide what it does from its user",
            ));
        }
        if hit.concepts & READER != 0 && indirect {
            let near = input
                .hits
                .iter()
                .skip(idx + 1)
                .take_while(|h| h.start <= hit.end + 80)
                .any(|h| {
                    h.concepts & (MODAL | OVERRIDE | INVOKE_VERB | EDIT_VERB | SEND_VERB | ACTION)
                        != 0
                });
            findings.push(finding(
                FindingKind::Injection,
                "reader_address",
                if near { 0.6 } else { 0.3 },
                hit.start..hit.end,
                "content addresses the AI reading it",
            ));
        }
    }
}

fn authority_rules(input: &RuleInput<'_>, findings: &mut Vec<Finding>) {
    for (idx, hit) in input.hits.iter().enumerate() {
        if hit.concepts & (I_AM | AS_THE) != 0 {
            if let Some(role_idx) = input.next(idx, hit.end, ROLE, 14) {
                let role = input.hits.get(role_idx).copied().unwrap_or(*hit);
                // "IT" must be written as the acronym, not the pronoun "it".
                let acronym_ok =
                    !input.word(&role).eq_ignore_ascii_case("it") || input.word(&role) == "IT";
                if acronym_ok {
                    let claimed = hit.concepts & I_AM != 0;
                    findings.push(finding(
                        FindingKind::AuthorityClaim,
                        "role_claim",
                        if claimed { 0.7 } else { 0.55 },
                        hit.start..role.end,
                        "claims a role or authority in text",
                    ));
                }
            }
        }
        if hit.concepts & (SUPERIOR | ROLE) != 0 && !input.word(hit).eq_ignore_ascii_case("it") {
            if let Some(approved_idx) = input.next(idx, hit.end, APPROVED, 40) {
                let approved = input.hits.get(approved_idx).copied().unwrap_or(*hit);
                findings.push(finding(
                    FindingKind::AuthorityClaim,
                    "prior_approval",
                    0.75,
                    hit.start..approved.end,
                    "claims someone with authority already approved this",
                ));
            }
        }
        if hit.concepts & ROUTINE != 0 {
            findings.push(finding(
                FindingKind::AuthorityClaim,
                "routine_check",
                0.45,
                hit.start..hit.end,
                "presents the request as a routine check",
            ));
        }
        if hit.concepts & EXEMPT != 0 {
            findings.push(finding(
                FindingKind::AuthorityClaim,
                "exemption",
                0.65,
                hit.start..hit.end,
                "claims an exemption from verification or approval",
            ));
        }
        if hit.concepts & PRINCIPAL != 0 {
            findings.push(finding(
                FindingKind::AuthorityClaim,
                "principal_impersonation",
                if input.indirect() { 0.75 } else { 0.3 },
                hit.start..hit.end,
                "content claims to speak for the agent's principal",
            ));
        }
    }
}
