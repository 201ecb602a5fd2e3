//! MCP `tools/list` result -> a pact skeleton: one action per tool, no rules (deny by default).
//!
//! Accepts a JSON-RPC response (`{"jsonrpc": "2.0", "result": {"tools": [...]}}`) or the bare
//! result (`{"tools": [...]}`), as in MCP schema versions 2025-06-18, 2025-11-25 and 2026-07-28.
//! The mapping is pure: a JSON value in, a [`PactDoc`] and a list of [`ImportNote`]s out.
//!
//! - `inputSchema.properties` become arguments: `string` -> `string` (`enum` of strings and
//!   `const` kept as `enum`), `integer` -> `long` (integral `minimum`/`maximum` kept), `number`
//!   -> `long` with a note (non-integer values will be refused), `boolean` -> `bool`, arrays of
//!   strings or integers -> `set<string>` / `set<long>`, a `type` list with `null` -> the other
//!   type, optional. `required` is honoured. Alternatives under `oneOf`/`anyOf` at the root are
//!   merged as optional arguments; `allOf` parts are merged as they are.
//! - Shapes a pact argument cannot hold (objects, arrays of objects, `$ref`, several types) are
//!   skipped with a note: calls passing them are refused until someone declares them by hand.
//! - Reversibility from `annotations`: `readOnlyHint: true` -> `reversible`; otherwise
//!   `destructiveHint: false` -> `partial`, and `destructiveHint: true` or absent ->
//!   `irreversible`, because MCP's default for `destructiveHint` is true. Annotations are hints
//!   from the server, so the header of the generated pact asks for a review.
//! - The tool's `description` (else its `title`) is kept, and so are argument descriptions.
//!   A string's `maxLength` (characters) becomes `max_bytes` of four times as many bytes, which
//!   never refuses a string the tool accepts.
//! - Besides the two result shapes, a bare list of tools or a single `Tool` object is accepted.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::check::ACTIONS_MAX;
use crate::fmt::{comment_block, to_yaml, FmtError};
use crate::syntax::{ActionDoc, ArgDoc, ArgFull, ArgTypeName, PactDoc, Reversibility, Tier};

/// Largest `tools/list` document accepted, in bytes.
pub const TOOLS_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Identity of the generated pact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    pub pact_id: String,
    pub agent: String,
    pub tier: Tier,
}

/// Something the import could not map exactly, for a person to review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportNote {
    /// The tool it is about, if any.
    pub tool: Option<String>,
    /// The argument it is about, if any.
    pub arg: Option<String>,
    pub message: String,
}

impl fmt::Display for ImportNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.tool, &self.arg) {
            (Some(tool), Some(arg)) => write!(f, "tool `{tool}`, argument `{arg}`: ")?,
            (Some(tool), None) => write!(f, "tool `{tool}`: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// The generated pact and the notes about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub doc: PactDoc,
    pub notes: Vec<ImportNote>,
}

impl Imported {
    /// The pact in the canonical YAML layout, with a header comment that carries the notes.
    pub fn to_yaml(&self) -> Result<String, FmtError> {
        let mut lines = vec![
            "Imported from an MCP `tools/list` result by `pactum pact import-mcp`.".to_string(),
            "There are no rules yet: every call is denied until a rule permits it.".to_string(),
            "Reversibility comes from the tools' annotations, which are hints: review it."
                .to_string(),
        ];
        if !self.notes.is_empty() {
            lines.push("Notes:".to_string());
            lines.extend(self.notes.iter().map(|note| format!("- {note}")));
        }
        to_yaml(&self.doc, &comment_block(&lines))
    }
}

/// Why a document could not be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpImportError {
    /// The input is a JSON-RPC error response.
    #[error("the JSON-RPC response is an error: {0}")]
    Rpc(String),
    /// The input is neither a response with `result.tools` nor an object with `tools`.
    #[error("expected a `tools/list` result: a JSON-RPC response with `result.tools`, or an object with `tools`")]
    NotToolsList,
    /// No tool could be imported.
    #[error("no tools to import")]
    NoTools,
    /// More tools than a catalog may hold.
    #[error("{0} tools; a pact holds at most {ACTIONS_MAX} actions")]
    TooManyTools(usize),
}

/// Maps a `tools/list` result to a pact skeleton.
pub fn import_tools(value: &Value, options: &ImportOptions) -> Result<Imported, McpImportError> {
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string);
        return Err(McpImportError::Rpc(message));
    }
    let result = value.get("result").unwrap_or(value);
    // Besides the two shapes of a `tools/list` result, a bare list of tools or a single tool
    // (as the schema's `Tool` examples are) is accepted.
    let single;
    let tools = match (result.get("tools"), result) {
        (Some(Value::Array(tools)), _) => tools,
        (None, Value::Array(tools)) => tools,
        (None, Value::Object(tool))
            if tool.contains_key("name") && tool.contains_key("inputSchema") =>
        {
            single = vec![result.clone()];
            &single
        }
        _ => return Err(McpImportError::NotToolsList),
    };
    if tools.len() > ACTIONS_MAX {
        return Err(McpImportError::TooManyTools(tools.len()));
    }
    let mut notes = Vec::new();
    if result
        .get("nextCursor")
        .is_some_and(|cursor| !cursor.is_null())
    {
        notes.push(ImportNote {
            tool: None,
            arg: None,
            message: "the result has a `nextCursor`: the server has more tools on later pages, \
                      and only this page was imported"
                .to_string(),
        });
    }
    let mut actions = BTreeMap::new();
    for (tool_idx, tool) in tools.iter().enumerate() {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            notes.push(ImportNote {
                tool: None,
                arg: None,
                message: format!("tool {tool_idx} has no `name`; skipped"),
            });
            continue;
        };
        if name.trim().is_empty() || name == "*" {
            notes.push(ImportNote {
                tool: Some(name.to_string()),
                arg: None,
                message: "this name cannot be an action name; skipped".to_string(),
            });
            continue;
        }
        if actions.contains_key(name) {
            notes.push(ImportNote {
                tool: Some(name.to_string()),
                arg: None,
                message: "listed twice; the first definition was kept".to_string(),
            });
            continue;
        }
        let action = import_tool(name, tool, &mut notes);
        actions.insert(name.to_string(), action);
    }
    if actions.is_empty() {
        return Err(McpImportError::NoTools);
    }
    let doc = PactDoc {
        pact: options.pact_id.clone(),
        version: 1,
        agent: options.agent.clone(),
        owner: None,
        class: None,
        tier: options.tier,
        description: Some(
            "Imported from an MCP tools/list result. Add rules: every call is denied until one permits it."
                .to_string(),
        ),
        actions,
        rules: Vec::new(),
        counters: BTreeMap::new(),
        canaries: Vec::new(),
        authority: None,
        obligations: Vec::new(),
        consequences: Vec::new(),
        recovery: None,
        signals: BTreeMap::new(),
        score: None,
    };
    Ok(Imported { doc, notes })
}

fn note(notes: &mut Vec<ImportNote>, tool: &str, arg: Option<&str>, message: impl Into<String>) {
    notes.push(ImportNote {
        tool: Some(tool.to_string()),
        arg: arg.map(str::to_string),
        message: message.into(),
    });
}

fn import_tool(name: &str, tool: &Value, notes: &mut Vec<ImportNote>) -> ActionDoc {
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .or_else(|| tool.get("title").and_then(Value::as_str))
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let annotations = tool.get("annotations");
    let hint = |key: &str| {
        annotations
            .and_then(|annotations| annotations.get(key))
            .and_then(Value::as_bool)
    };
    let reversibility = match (hint("readOnlyHint"), hint("destructiveHint")) {
        (Some(true), _) => Reversibility::Reversible,
        (_, Some(false)) => Reversibility::Partial,
        (_, Some(true)) => Reversibility::Irreversible,
        (_, None) => {
            note(
                notes,
                name,
                None,
                "no `readOnlyHint` or `destructiveHint`: MCP's default is destructive, so `irreversible`",
            );
            Reversibility::Irreversible
        }
    };
    let mut action = ActionDoc {
        description,
        reversibility,
        ..ActionDoc::default()
    };
    let Some(schema) = tool.get("inputSchema").and_then(Value::as_object) else {
        note(
            notes,
            name,
            None,
            "no `inputSchema` object: imported with no arguments",
        );
        return action;
    };
    let (properties, required) = collect_properties(name, schema, notes);
    for required_name in &required {
        if !properties.contains_key(required_name) {
            note(
                notes,
                name,
                Some(required_name),
                "listed in `required` but not under `properties`; not imported",
            );
        }
    }
    for (arg_name, property) in &properties {
        let is_required = required.contains(arg_name);
        if !is_identifier(arg_name) {
            note(
                notes,
                name,
                Some(arg_name),
                format!(
                    "not an identifier (letters, digits, `_`), so conditions cannot name it; skipped{}",
                    refusal(is_required)
                ),
            );
            continue;
        }
        match import_arg(property) {
            Ok((arg, arg_notes)) => {
                for message in arg_notes {
                    note(notes, name, Some(arg_name), message);
                }
                let mut arg = arg;
                if !is_required {
                    arg.required = false;
                }
                action.args.insert(arg_name.clone(), simplest(arg));
            }
            Err(reason) => note(
                notes,
                name,
                Some(arg_name),
                format!("{reason}; skipped{}", refusal(is_required)),
            ),
        }
    }
    action
}

fn refusal(is_required: bool) -> &'static str {
    if is_required {
        ": it is required, so every call will be refused until it is declared by hand"
    } else {
        ": calls that pass it will be refused until it is declared by hand"
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The properties of an input schema and its required names, merging `allOf` parts as they are
/// and `oneOf`/`anyOf` alternatives as optional properties.
fn collect_properties(
    tool: &str,
    schema: &Map<String, Value>,
    notes: &mut Vec<ImportNote>,
) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut properties = BTreeMap::new();
    let mut required = Vec::new();
    add_properties(schema, &mut properties, Some(&mut required));
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts.iter().filter_map(Value::as_object) {
            add_properties(part, &mut properties, Some(&mut required));
        }
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
            note(
                notes,
                tool,
                None,
                format!("the properties of the `{keyword}` alternatives were merged as optional arguments; add rules for the combinations you allow"),
            );
            for alternative in alternatives.iter().filter_map(Value::as_object) {
                add_properties(alternative, &mut properties, None);
            }
        }
    }
    for keyword in ["$ref", "if", "not", "dependentSchemas", "patternProperties"] {
        if schema.contains_key(keyword) {
            note(
                notes,
                tool,
                None,
                format!("`{keyword}` in the input schema is not imported"),
            );
        }
    }
    (properties, required)
}

fn add_properties(
    schema: &Map<String, Value>,
    properties: &mut BTreeMap<String, Value>,
    required: Option<&mut Vec<String>>,
) {
    if let Some(declared) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in declared {
            properties
                .entry(name.clone())
                .or_insert_with(|| property.clone());
        }
    }
    if let (Some(required), Some(names)) =
        (required, schema.get("required").and_then(Value::as_array))
    {
        for name in names.iter().filter_map(Value::as_str) {
            if !required.iter().any(|known| known == name) {
                required.push(name.to_string());
            }
        }
    }
}

/// The short form (`name: string`) when nothing but the type is set.
fn simplest(arg: ArgFull) -> ArgDoc {
    if arg.required
        && arg.allowed.is_none()
        && arg.max_bytes.is_none()
        && arg.min.is_none()
        && arg.max.is_none()
        && arg.description.is_none()
    {
        ArgDoc::Type(arg.arg_type)
    } else {
        ArgDoc::Full(arg)
    }
}

/// One property schema -> an argument and notes, or why it cannot be one.
fn import_arg(property: &Value) -> Result<(ArgFull, Vec<String>), String> {
    let Some(property) = property.as_object() else {
        return Err("its schema is not an object".to_string());
    };
    let mut arg_notes = Vec::new();
    let mut nullable = false;
    let type_name: Option<&str> = match property.get("type") {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Array(names)) => {
            let non_null: Vec<&str> = names
                .iter()
                .filter_map(Value::as_str)
                .filter(|name| *name != "null")
                .collect();
            nullable = non_null.len() < names.len();
            match non_null.as_slice() {
                [one] => Some(*one),
                _ => return Err(format!("several types ({})", type_list(names))),
            }
        }
        Some(_) => return Err("`type` is neither a name nor a list".to_string()),
        None => None,
    };
    let strings_only = |values: &[Value]| -> Option<Vec<String>> {
        values
            .iter()
            .map(|value| value.as_str().map(str::to_string))
            .collect()
    };
    let enum_values: Option<Vec<Value>> = property
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| property.get("const").map(|value| vec![value.clone()]));
    let type_name = match type_name {
        Some(name) => name,
        None => match enum_values.as_deref().and_then(strings_only) {
            Some(_) => "string",
            None if property.contains_key("$ref") => {
                return Err("`$ref` schemas are not supported".to_string())
            }
            None => return Err("no `type`".to_string()),
        },
    };
    let mut arg = ArgFull {
        arg_type: ArgTypeName::String,
        required: true,
        allowed: None,
        max_bytes: None,
        min: None,
        max: None,
        properties: None,
        items: None,
        description: property
            .get("description")
            .and_then(Value::as_str)
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty()),
    };
    match type_name {
        "string" => {
            // `maxLength` counts characters; a character is at most 4 bytes in UTF-8, so this
            // bound never refuses a string the tool accepts.
            arg.max_bytes = property
                .get("maxLength")
                .and_then(Value::as_u64)
                .and_then(|n_chars| n_chars.checked_mul(4));
            if let Some(values) = &enum_values {
                match strings_only(values) {
                    Some(values) if !values.is_empty() => arg.allowed = Some(values),
                    _ => arg_notes.push("an `enum` with non-string values is not kept".to_string()),
                }
            }
        }
        "integer" | "number" => {
            arg.arg_type = ArgTypeName::Long;
            if type_name == "number" {
                arg_notes.push(
                    "`number` mapped to `long`: calls with non-integer values will be refused"
                        .to_string(),
                );
            }
            arg.min = integral_bound(property, "minimum", "exclusiveMinimum", 1, &mut arg_notes);
            arg.max = integral_bound(property, "maximum", "exclusiveMaximum", -1, &mut arg_notes);
            if enum_values.is_some() {
                arg_notes
                    .push("an `enum` of numbers is not kept (pact enums are strings)".to_string());
            }
        }
        "boolean" => arg.arg_type = ArgTypeName::Bool,
        "array" => {
            let item_type = property
                .get("items")
                .and_then(|items| items.get("type"))
                .and_then(Value::as_str);
            arg.arg_type = match item_type {
                Some("string") => ArgTypeName::SetString,
                Some("integer") => ArgTypeName::SetLong,
                Some("number") => {
                    arg_notes.push(
                        "an array of `number` mapped to `set<long>`: non-integer values will be refused"
                            .to_string(),
                    );
                    ArgTypeName::SetLong
                }
                Some(other) => {
                    return Err(format!(
                        "arrays of `{other}` are not supported (only of strings or integers)"
                    ))
                }
                None => return Err("an array without an `items` type is not supported".to_string()),
            };
            arg_notes.push("an array becomes a set: order and duplicates are not kept".to_string());
        }
        "object" => return Err("objects are not supported as arguments".to_string()),
        other => return Err(format!("type `{other}` is not supported")),
    }
    if nullable {
        arg.required = false;
        arg_notes.push("accepts `null`: imported as optional".to_string());
    }
    Ok((arg, arg_notes))
}

fn type_list(names: &[Value]) -> String {
    names
        .iter()
        .map(|name| format!("`{}`", name.as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An inclusive integer bound from `minimum`/`maximum` or their exclusive forms; `step` turns
/// an exclusive bound into an inclusive one (+1 for minimums, -1 for maximums).
fn integral_bound(
    property: &Map<String, Value>,
    inclusive: &str,
    exclusive: &str,
    step: i64,
    arg_notes: &mut Vec<String>,
) -> Option<i64> {
    let (value, offset, key) = match (property.get(inclusive), property.get(exclusive)) {
        (Some(value), _) => (value, 0, inclusive),
        (None, Some(value)) if value.is_number() => (value, step, exclusive),
        _ => return None,
    };
    let bound = value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|number| number.fract() == 0.0 && number.abs() < 9.0e15)
            .map(|number| number as i64)
    });
    match bound.and_then(|bound| bound.checked_add(offset)) {
        Some(bound) => Some(bound),
        None => {
            arg_notes.push(format!(
                "`{key}` ({value}) is not a whole number and is not kept"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> ImportOptions {
        ImportOptions {
            pact_id: "tools".to_string(),
            agent: "acme/tools".to_string(),
            tier: Tier::Medium,
        }
    }

    #[test]
    fn types_required_and_annotations_map() {
        let tools = json!({"tools": [{
            "name": "refund",
            "description": "Refund an order",
            "annotations": {"destructiveHint": true},
            "inputSchema": {"type": "object", "properties": {
                "order_id": {"type": "string"},
                "amount": {"type": "number", "minimum": 0},
                "count": {"type": "integer", "exclusiveMaximum": 10},
                "notify": {"type": ["boolean", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "reason": {"enum": ["damaged", "late"]},
                "memo": {"type": "string", "maxLength": 10},
                "address": {"type": "object"},
                "bad-name": {"type": "string"}
            }, "required": ["order_id", "amount", "count", "address"]}
        }, {"name": "lookup", "annotations": {"readOnlyHint": true}, "inputSchema": {"type": "object"}},
           {"name": "append", "annotations": {"readOnlyHint": false, "destructiveHint": false}, "inputSchema": {"type": "object"}}]});
        let imported = import_tools(&tools, &options()).unwrap();
        let actions = &imported.doc.actions;
        assert_eq!(actions["lookup"].reversibility, Reversibility::Reversible);
        assert_eq!(actions["append"].reversibility, Reversibility::Partial);
        let refund = &actions["refund"];
        assert_eq!(refund.reversibility, Reversibility::Irreversible);
        assert_eq!(refund.description.as_deref(), Some("Refund an order"));
        assert_eq!(refund.args["order_id"], ArgDoc::Type(ArgTypeName::String));
        let ArgDoc::Full(amount) = &refund.args["amount"] else {
            panic!("amount")
        };
        assert_eq!(
            (amount.arg_type, amount.min, amount.required),
            (ArgTypeName::Long, Some(0), true)
        );
        let ArgDoc::Full(count) = &refund.args["count"] else {
            panic!("count")
        };
        assert_eq!(count.max, Some(9));
        let ArgDoc::Full(notify) = &refund.args["notify"] else {
            panic!("notify")
        };
        assert_eq!(
            (notify.arg_type, notify.required),
            (ArgTypeName::Bool, false)
        );
        let ArgDoc::Full(tags) = &refund.args["tags"] else {
            panic!("tags")
        };
        assert_eq!(tags.arg_type, ArgTypeName::SetString);
        let ArgDoc::Full(reason) = &refund.args["reason"] else {
            panic!("reason")
        };
        assert_eq!(
            reason.allowed,
            Some(vec!["damaged".to_string(), "late".to_string()])
        );
        let ArgDoc::Full(memo) = &refund.args["memo"] else {
            panic!("memo")
        };
        assert_eq!(memo.max_bytes, Some(40));
        assert!(!refund.args.contains_key("address"));
        assert!(!refund.args.contains_key("bad-name"));
        let messages: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|m| m.contains("`address`")
                && m.contains("objects are not supported")
                && m.contains("required")),
            "{messages:?}"
        );
        assert!(messages
            .iter()
            .any(|m| m.contains("`amount`") && m.contains("non-integer")));
        let text = imported.to_yaml().unwrap();
        let checked = crate::check(&text);
        assert!(checked.pact.is_some(), "{text}\n{:?}", checked.diagnostics);
        assert!(text.contains("# - tool `refund`, argument `address`"));
    }

    #[test]
    fn json_rpc_errors_and_wrong_shapes_are_refused() {
        let error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no such method"}});
        assert_eq!(
            import_tools(&error, &options()),
            Err(McpImportError::Rpc("no such method".to_string()))
        );
        assert_eq!(
            import_tools(&json!({"result": 1}), &options()),
            Err(McpImportError::NotToolsList)
        );
        assert_eq!(
            import_tools(&json!({"name": "x"}), &options()),
            Err(McpImportError::NotToolsList)
        );
        let single = json!({"name": "x", "inputSchema": {"type": "object"}});
        assert_eq!(
            import_tools(&single, &options()).map(|imported| imported.doc.actions.len()),
            Ok(1)
        );
        assert_eq!(
            import_tools(&json!({"tools": []}), &options()),
            Err(McpImportError::NoTools)
        );
        assert_eq!(
            import_tools(&json!({"tools": [{"title": "nameless"}]}), &options()),
            Err(McpImportError::NoTools)
        );
    }
}
