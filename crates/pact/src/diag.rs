//! Diagnostics: every problem found in a pact, with a code, a message and a place.

use std::fmt;

use serde::Serialize;

/// A line (1-based) and column (1-based, in characters) in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

impl Position {
    /// The first character of the file.
    pub fn start() -> Position {
        Position { line: 1, col: 1 }
    }
}

/// How bad a diagnostic is. Only errors make a pact invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in a pact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, kebab-case code (`unknown-action`, `cedar-type`, ...).
    pub code: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub position: Position,
    /// The JSON pointer of the node the diagnostic is about, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, position: Position) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            position,
            path: String::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>, position: Position) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, position)
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// `file:line:col: error[code]: message`, the format editors and CI logs understand.
    /// Control and bidirectional-formatting characters from the file are escaped (`\u{202e}`),
    /// so a message cannot break the line or reorder what a terminal shows.
    pub fn render(&self, file: &str) -> String {
        format!(
            "{}:{}:{}: {}[{}]: {}",
            printable(file),
            self.position.line,
            self.position.col,
            self.severity,
            self.code,
            printable(&self.message)
        )
    }
}

/// Escapes control characters and Unicode bidirectional controls.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether any diagnostic in the list is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|diagnostic| diagnostic.severity == Severity::Error)
}
