//! The canonical text layout of a pact, for `pactum pact fmt` and for generated pacts.
//!
//! The layout is a function of the parsed document alone, never of how the input was laid out,
//! so formatting twice gives the same text and formatting never changes the pact's digest:
//!
//! - fields in the order of the [`crate::syntax`] structs, map keys (action, argument, counter
//!   names) sorted; optional fields left out when absent or at their default, except an
//!   action's `reversibility` and `sensitivity`, which are always written so a reader sees them;
//! - block style for the document and its sections; a map or list inside a section is written in
//!   flow style (`{ a: b }`, `[a, b]`) when it fits on one line of [`LINE_CHARS_MAX`] characters
//!   and holds no multi-line string; a top-level section holding only scalars (`canaries`,
//!   `recovery`) too;
//! - strings plain when that is unambiguous, else double-quoted; multi-line strings (PEM keys) as
//!   literal blocks (`|`);
//! - a blank line before each top-level section written as a block.
//!
//! Comments: the leading comment block of the file (the `#` lines and blank lines before the
//! first field) is kept verbatim. Other comments cannot be kept by re-emitting the document, so
//! they are dropped, and [`Formatted::n_comments_dropped`] counts them so the caller can say so
//! (`pactum pact fmt --write` refuses to drop them without `--drop-comments`). Only full-line
//! comments are counted; a comment at the end of a line is dropped without being counted.
//!
//! Before returning, the output is parsed back and compared with the input document: a layout
//! bug shows up as [`FmtError::RoundTrip`], never as a silently different pact.

use serde_json::Value;

use crate::check::parse_doc;
use crate::diag::Diagnostic;
use crate::syntax::PactDoc;

/// Widest line the layout puts a flow collection on, in characters.
pub const LINE_CHARS_MAX: usize = 100;

/// Which text form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The canonical YAML layout described in the module docs.
    Yaml,
    /// Pretty-printed JSON (two-space indent), fields in the same order.
    Json,
}

/// The formatted text of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    pub text: String,
    /// Full-line comments after the leading comment block, which formatting drops.
    pub n_comments_dropped: usize,
}

/// Why a source could not be formatted.
#[derive(Debug, thiserror::Error)]
pub enum FmtError {
    /// The source is not a well-shaped pact; the diagnostics say where.
    #[error("the file has {} shape errors; fix them before formatting", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// The document could not be turned into a JSON value.
    #[error("the document cannot be encoded: {0}")]
    Encode(String),
    /// The formatted text does not parse back to the same document.
    #[error("the formatted text does not read back as the same pact (a bug in fmt); nothing was changed")]
    RoundTrip,
}

/// Formats a pact source. Only the shape must be valid (see [`crate::parse_doc`]).
pub fn format(text: &str, layout: Layout) -> Result<Formatted, FmtError> {
    let doc = parse_doc(text).map_err(FmtError::Invalid)?;
    match layout {
        Layout::Json => {
            let value =
                serde_json::to_value(&doc).map_err(|err| FmtError::Encode(err.to_string()))?;
            let mut out = serde_json::to_string_pretty(&value)
                .map_err(|err| FmtError::Encode(err.to_string()))?;
            out.push('\n');
            verify(&doc, &out)?;
            Ok(Formatted {
                text: out,
                n_comments_dropped: 0,
            })
        }
        Layout::Yaml => {
            let (header, rest) = split_header(text);
            let n_comments_dropped = rest
                .lines()
                .filter(|line| line.trim_start().starts_with('#'))
                .count();
            Ok(Formatted {
                text: to_yaml(&doc, &header)?,
                n_comments_dropped,
            })
        }
    }
}

/// Writes a document in the canonical YAML layout, after `header` (comment lines, kept as
/// given; an empty string for none).
pub fn to_yaml(doc: &PactDoc, header: &str) -> Result<String, FmtError> {
    let value = serde_json::to_value(doc).map_err(|err| FmtError::Encode(err.to_string()))?;
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Value::Object(map) = &value {
        for (idx, (key, item)) in map.iter().enumerate() {
            let block =
                flow(item, 1).is_none_or(|text| key.len() + 2 + text.len() > LINE_CHARS_MAX);
            if idx > 0 && block && matches!(item, Value::Object(_) | Value::Array(_)) {
                out.push('\n');
            }
            map_entry(key, item, 0, 1, &mut out);
        }
    }
    verify(doc, &out)?;
    Ok(out)
}

fn verify(doc: &PactDoc, text: &str) -> Result<(), FmtError> {
    match parse_doc(text) {
        Ok(reparsed) if &reparsed == doc => Ok(()),
        _ => Err(FmtError::RoundTrip),
    }
}

/// Splits the leading comment block (comment and blank lines, trailing blank lines dropped)
/// from the rest of the text.
fn split_header(text: &str) -> (String, &str) {
    let mut header_bytes = 0;
    let mut kept_bytes = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            header_bytes += line.len();
            kept_bytes = header_bytes;
        } else if trimmed.is_empty() {
            header_bytes += line.len();
        } else {
            break;
        }
    }
    let header = text.get(..kept_bytes).unwrap_or("").to_string();
    (header, text.get(header_bytes..).unwrap_or(""))
}

fn indent(n_spaces: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n_spaces));
}

/// `key: value` at `n_spaces` of indentation; `depth` is the value's depth (the root is 0).
fn map_entry(key: &str, value: &Value, n_spaces: usize, depth: usize, out: &mut String) {
    indent(n_spaces, out);
    out.push_str(&scalar_string(key));
    out.push(':');
    node_after_indicator(value, n_spaces, depth, n_spaces + key.len() + 2, out);
}

/// Writes a value after `key:` or `-`: inline if it is a scalar or fits in flow style, else as
/// an indented block on the following lines.
fn node_after_indicator(
    value: &Value,
    n_spaces: usize,
    depth: usize,
    used_chars: usize,
    out: &mut String,
) {
    if let Value::String(text) = value {
        if let Some(block) = literal_block(text, n_spaces + 2) {
            out.push_str(" |");
            out.push_str(&block);
            return;
        }
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            if let Some(text) =
                flow(value, depth).filter(|text| used_chars + 1 + text.len() <= LINE_CHARS_MAX)
            {
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
                return;
            }
            out.push('\n');
            for (key, item) in map {
                map_entry(key, item, n_spaces + 2, depth + 1, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if let Some(text) =
                flow(value, depth).filter(|text| used_chars + 1 + text.len() <= LINE_CHARS_MAX)
            {
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
                return;
            }
            out.push('\n');
            for item in items {
                seq_item(item, n_spaces + 2, depth + 1, out);
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&flow_scalar(scalar));
            out.push('\n');
        }
    }
}

/// `- item` at `n_spaces` of indentation. A block map's first entry goes on the dash's line.
fn seq_item(value: &Value, n_spaces: usize, depth: usize, out: &mut String) {
    if let Value::Object(map) = value {
        let fits =
            flow(value, depth).is_some_and(|text| n_spaces + 2 + text.len() <= LINE_CHARS_MAX);
        if !map.is_empty() && !fits {
            let mut block = String::new();
            for (key, item) in map {
                map_entry(key, item, n_spaces + 2, depth + 1, &mut block);
            }
            indent(n_spaces, out);
            out.push_str("- ");
            out.push_str(block.get(n_spaces + 2..).unwrap_or(""));
            return;
        }
    }
    indent(n_spaces, out);
    out.push('-');
    node_after_indicator(value, n_spaces, depth, n_spaces + 1, out);
}

/// The flow form of a value, if it may be written in flow style at `depth`: always for
/// scalars; for collections below the sections, and for sections holding only scalars.
fn flow(value: &Value, depth: usize) -> Option<String> {
    match value {
        Value::Object(map) => {
            if depth < 2 && map.values().any(|item| item.is_object() || item.is_array()) {
                return None;
            }
            if map.is_empty() {
                return Some("{}".to_string());
            }
            let entries: Option<Vec<String>> = map
                .iter()
                .map(|(key, item)| {
                    Some(format!(
                        "{}: {}",
                        scalar_string(key),
                        flow(item, depth + 1)?
                    ))
                })
                .collect();
            Some(format!("{{ {} }}", entries?.join(", ")))
        }
        Value::Array(items) => {
            if depth < 2 && items.iter().any(|item| item.is_object() || item.is_array()) {
                return None;
            }
            let items: Option<Vec<String>> =
                items.iter().map(|item| flow(item, depth + 1)).collect();
            Some(format!("[{}]", items?.join(", ")))
        }
        Value::String(text) if text.contains('\n') => None,
        scalar => Some(flow_scalar(scalar)),
    }
}

fn flow_scalar(value: &Value) -> String {
    match value {
        Value::String(text) => scalar_string(text),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// A string as a YAML scalar: plain when unambiguous, else double-quoted.
fn scalar_string(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else {
        double_quoted(text)
    }
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !(first.is_alphanumeric() || first == '_' || first == '/') {
        return false;
    }
    if text.ends_with(' ') || text.ends_with(':') {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    for (idx, c) in chars.iter().enumerate() {
        let allowed = c.is_alphanumeric()
            || matches!(
                c,
                ' ' | '_'
                    | '-'
                    | '.'
                    | '/'
                    | '@'
                    | '+'
                    | '='
                    | '<'
                    | '>'
                    | '('
                    | ')'
                    | ';'
                    | '$'
                    | '%'
                    | '^'
                    | '~'
                    | '?'
            )
            || (*c == ':'
                && chars
                    .get(idx + 1)
                    .is_some_and(|next| next.is_alphanumeric() || *next == '/'));
        if !allowed || (c.is_whitespace() && *c != ' ') {
            return false;
        }
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
    ) {
        return false;
    }
    // Numbers, and things YAML 1.1 tools read as numbers, times or dates, stay quoted.
    if first.is_ascii_digit() {
        let numeric_looking = text.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '_' | ' ' | 'T' | 'Z' | '+')
        });
        if numeric_looking
            || text.parse::<f64>().is_ok()
            || lower.starts_with("0x")
            || lower.starts_with("0o")
            || lower.starts_with("0b")
        {
            return false;
        }
    }
    true
}

/// A YAML double-quoted scalar; every character YAML does not print is escaped.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lines of a literal block scalar (`|` or `|-`, starting with a newline), when the text
/// can be written as one: it has a line break, no other control characters, no line of only
/// spaces and no leading space (which would need an indentation indicator).
fn literal_block(text: &str, n_spaces: usize) -> Option<String> {
    if !text.contains('\n') || text.starts_with(' ') || text.starts_with('\n') {
        return None;
    }
    let (body, chomp) = match text.strip_suffix('\n') {
        Some(body) if !body.ends_with('\n') => (body, ""),
        Some(_) => return None,
        None => (text, "-"),
    };
    if body
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
    {
        return None;
    }
    let mut out = String::from(chomp);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() && line.trim().is_empty() {
            return None;
        }
        if !line.is_empty() {
            indent(n_spaces, &mut out);
            out.push_str(line);
        }
        out.push('\n');
    }
    Some(out)
}

/// Lines as a `#` comment block, for headers of generated pacts.
pub(crate) fn comment_block(lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        for part in line.split('\n') {
            out.push('#');
            if !part.is_empty() {
                out.push(' ');
                out.push_str(part.trim_end());
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/support-agent/pact.yaml");

    #[test]
    fn formatting_is_idempotent_and_keeps_the_digest() {
        let once = format(EXAMPLE, Layout::Yaml).unwrap();
        let twice = format(&once.text, Layout::Yaml).unwrap();
        assert_eq!(once.text, twice.text);
        let before = crate::check(EXAMPLE).pact.unwrap();
        let after = crate::check(&once.text).pact.unwrap();
        assert_eq!(before.digest(), after.digest());
        assert!(once.text.starts_with("# A customer-support agent"));
    }

    #[test]
    fn json_layout_round_trips() {
        let json = format(EXAMPLE, Layout::Json).unwrap();
        let again = format(&json.text, Layout::Json).unwrap();
        assert_eq!(json.text, again.text);
        let yaml = format(&json.text, Layout::Yaml).unwrap();
        assert_eq!(
            crate::check(&yaml.text).pact.unwrap().digest(),
            crate::check(EXAMPLE).pact.unwrap().digest()
        );
    }

    #[test]
    fn awkward_strings_survive() {
        for text in [
            "true",
            "null",
            "1.5",
            "0x1f",
            "2026-01-01",
            "12:30",
            "- x",
            "a: b",
            "a #b",
            "#x",
            "",
            " lead",
            "trail ",
            "quote\"d",
            "back\\slash",
            "tab\there",
            "line\nbreak\n",
            "no final break\nx",
            "two\n\n",
            "del\u{7f}",
            "bom\u{feff}",
            "{x}",
            "[x]",
            "a,b",
            "https://idp.acme.example",
            "ünïcödé",
            "*star",
            "&amp",
            "!tag",
            "%p",
            "@at",
            "`tick",
            "|pipe",
            ">gt",
            "?q",
            "'single'",
        ] {
            let mut doc = parse_doc(EXAMPLE).unwrap();
            doc.description = Some(text.to_string());
            doc.owner = Some(text.to_string());
            doc.canaries = vec![format!("canary-{text}")];
            let out = to_yaml(&doc, "").unwrap_or_else(|err| panic!("{text:?}: {err}"));
            assert_eq!(parse_doc(&out).unwrap(), doc, "{text:?}");
        }
    }

    #[test]
    fn leading_comments_are_kept_and_others_counted() {
        let source = "# keep me\n\n# and me\n\npact: x # trailing\n# dropped\nversion: 1\nagent: a\ntier: low\nactions: { a: {} }\n";
        let formatted = format(source, Layout::Yaml).unwrap();
        assert!(formatted
            .text
            .starts_with("# keep me\n\n# and me\npact: x\n"));
        assert_eq!(formatted.n_comments_dropped, 1);
    }

    #[test]
    fn shape_errors_are_reported_not_formatted() {
        match format("pact: x\nversion: one\n", Layout::Yaml) {
            Err(FmtError::Invalid(diagnostics)) => assert!(!diagnostics.is_empty()),
            other => panic!("expected shape errors, got {other:?}"),
        }
    }
}
