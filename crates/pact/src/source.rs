//! Source text -> a JSON value plus the line and column of every node, so that every diagnostic
//! can point at the place in the file it is about.
//!
//! YAML and JSON both go through the YAML 1.2 parser (JSON is a subset of YAML 1.2). Anchors and
//! aliases are refused: a pact is small, and aliases are how a few bytes expand into gigabytes.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use crate::diag::{Diagnostic, Position};

/// Largest pact source accepted, in bytes.
pub const PACT_BYTES_MAX: usize = 1024 * 1024;
/// Deepest nesting accepted in a pact document.
pub const DEPTH_MAX: usize = 64;

/// A parsed document: its value and where each node sits.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    pub value: Value,
    pub spans: Spans,
}

/// JSON-pointer path -> position of the node's value (and, for map entries, of the key).
#[derive(Debug, Clone, Default)]
pub struct Spans {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl Spans {
    /// The position of the node at `path`, or of its nearest ancestor that has one.
    pub fn value_at(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return *position;
            }
            match path.rfind('/') {
                Some(idx) => path = path.get(..idx).unwrap_or_default(),
                None => return Position::start(),
            }
        }
    }

    /// The position of the key of the map entry at `path`, falling back to its value.
    pub fn key_at(&self, path: &str) -> Position {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value_at(path))
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Parses YAML or JSON text.
pub fn parse(text: &str) -> Result<SourceDoc, Diagnostic> {
    if text.len() > PACT_BYTES_MAX {
        return Err(Diagnostic::error(
            "too-large",
            format!(
                "the file is {} bytes; the limit is {PACT_BYTES_MAX} bytes",
                text.len()
            ),
            Position::start(),
        ));
    }
    refuse_aliases(text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(|err| {
        let marker = err.marker();
        Diagnostic::error(
            "yaml",
            err.info().to_string(),
            Position {
                line: marker.line().max(1),
                col: marker.col() + 1,
            },
        )
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(Diagnostic::error(
            "empty",
            "the file holds no document",
            Position::start(),
        ));
    };
    if let Some(extra) = docs.next() {
        return Err(Diagnostic::error(
            "yaml",
            "the file holds more than one document; a pact is one document",
            position_of(&extra),
        ));
    }
    let mut spans = Spans::default();
    let value = convert(&doc, String::new(), 0, &mut spans)?;
    Ok(SourceDoc { value, spans })
}

/// Refuses aliases before anything is loaded: the loader expands them into copies, which is
/// how a few bytes become gigabytes. Syntax errors are left for the loader to report.
fn refuse_aliases(text: &str) -> Result<(), Diagnostic> {
    for event in saphyr_parser::Parser::new_from_str(text) {
        match event {
            Ok((saphyr_parser::Event::Alias(_), span)) => {
                return Err(Diagnostic::error(
                    "yaml",
                    "aliases are not allowed in a pact",
                    Position {
                        line: span.start.line().max(1),
                        col: span.start.col() + 1,
                    },
                ))
            }
            Ok((saphyr_parser::Event::StreamEnd, _)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

fn position_of(node: &MarkedYaml<'_>) -> Position {
    Position {
        line: node.span.start.line().max(1),
        col: node.span.start.col() + 1,
    }
}

fn convert(
    node: &MarkedYaml<'_>,
    path: String,
    depth: usize,
    spans: &mut Spans,
) -> Result<Value, Diagnostic> {
    let position = position_of(node);
    if depth > DEPTH_MAX {
        return Err(Diagnostic::error(
            "too-deep",
            format!("nesting deeper than {DEPTH_MAX} levels"),
            position,
        ));
    }
    spans.values.insert(path.clone(), position);
    let value = match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar, position)?,
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (idx, item) in items.iter().enumerate() {
                out.push(convert(item, format!("{path}/{idx}"), depth + 1, spans)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (key, item) in entries {
                let key_text = match &key.data {
                    YamlData::Value(Scalar::String(text)) => text.to_string(),
                    YamlData::Value(Scalar::Integer(number)) => number.to_string(),
                    YamlData::Value(Scalar::Boolean(flag)) => flag.to_string(),
                    _ => {
                        return Err(Diagnostic::error(
                            "yaml",
                            "map keys must be plain strings",
                            position_of(key),
                        ))
                    }
                };
                let item_path = format!("{path}/{}", pointer_segment(&key_text));
                spans.keys.insert(item_path.clone(), position_of(key));
                let item_value = convert(item, item_path, depth + 1, spans)?;
                out.insert(key_text, item_value);
            }
            Value::Object(out)
        }
        YamlData::Tagged(_, inner) => convert(inner, path, depth, spans)?,
        YamlData::Alias(_) => {
            return Err(Diagnostic::error(
                "yaml",
                "aliases are not allowed in a pact",
                position,
            ))
        }
        YamlData::BadValue => {
            return Err(Diagnostic::error("yaml", "invalid value", position));
        }
    };
    Ok(value)
}

fn scalar_value(scalar: &Scalar<'_>, position: Position) -> Result<Value, Diagnostic> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(flag) => Value::Bool(*flag),
        Scalar::Integer(number) => Value::Number((*number).into()),
        Scalar::FloatingPoint(number) => match Number::from_f64(number.into_inner()) {
            Some(number) => Value::Number(number),
            None => {
                return Err(Diagnostic::error(
                    "yaml",
                    "numbers must be finite",
                    position,
                ))
            }
        },
        Scalar::String(text) => Value::String(text.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_values_and_keys() {
        let doc = parse("a: 1\nrules:\n  - id: x\n    when: \"true\"\n").unwrap();
        assert_eq!(
            doc.spans.value_at("/rules/0/when"),
            Position { line: 4, col: 11 }
        );
        assert_eq!(
            doc.spans.key_at("/rules/0/when"),
            Position { line: 4, col: 5 }
        );
        assert_eq!(
            doc.spans.value_at("/rules/0/missing"),
            Position { line: 3, col: 5 }
        );
    }

    #[test]
    fn json_is_accepted() {
        let doc = parse("{\"a\": [1, 2.5, \"x\", null, true]}").unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"a": [1, 2.5, "x", null, true]})
        );
    }

    #[test]
    fn bad_yaml_reports_where() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.code, "yaml");
        assert!(err.position.line >= 1);
    }

    #[test]
    fn aliases_and_oversize_are_refused() {
        let alias = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(alias.code, "yaml");
        assert_eq!(alias.position, Position { line: 2, col: 4 });
        let bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n";
        assert_eq!(
            parse(bomb).unwrap_err().message,
            "aliases are not allowed in a pact"
        );
        let big = "a: ".to_string() + &"x".repeat(PACT_BYTES_MAX);
        assert_eq!(parse(&big).unwrap_err().code, "too-large");
    }
}
