//! MCP `tools/list` result -> a pact skeleton: one action per tool, no rules (deny by default).
//!
//! Accepts a JSON-RPC response (`{"jsonrpc": "2.0", "result": {"tools": [...]}}`) or the bare
//! result (`{"tools": [...]}`), as in MCP schema versions 2025-06-18, 2025-11-25 and 2026-07-28.
//! The mapping is pure: a JSON value in, a [`PactDoc`] and a list of [`ImportNote`]s out.
//!
//! - `inputSchema.properties` become arguments: `string` -> `string` (`enum` of strings and
//!   `const` kept as `enum`), `integer` -> `long` (integral `minimum`/`maximum` kept), `number`
//!   -> `long` with a note (non-integer values will be refused), `boolean` -> `bool`, a `type`
//!   list with `null` -> the other type, optional. `required` is honoured. Alternatives under
//!   `oneOf`/`anyOf` at the root are merged as optional arguments; `allOf` parts are merged as
//!   they are.
//! - A string with `format: uri` or `url` becomes a `url`. A string without `enum` whose name
//!   says it is a file path (`path`, `source`, `destination`, `file`, `filename`, `directory`,
//!   `dir`, or ending in `_path`/`Path`) becomes a `path`, with a note saying it was typed from
//!   its name: the guard refuses relative paths and resolves `..`, which is what a pact meant to
//!   keep a file-system tool inside a folder needs, and what a tool taking other text does not.
//! - Arrays become sets (with a note: order and duplicates are not kept): of strings, integers,
//!   paths or URLs -> `set<string>`, `set<long>`, `set<path>`, `set<url>`; of anything else ->
//!   `{ type: set, items: ... }`. The items of an array named `paths` (or ending in
//!   `_paths`/`Paths`) are paths. Objects with `properties` become `{ type: object, properties:
//!   ... }`, their members imported by the same rules (members not in `required` optional).
//!   Objects and arrays nest at most [`crate::ARG_DEPTH_MAX`] deep.
//! - Shapes a pact argument cannot hold (objects without `properties`, such as maps, `$ref`,
//!   several types, nesting past the limit) are skipped with a note: calls passing them are
//!   refused until someone declares them by hand. A member skipped inside an object is noted
//!   the same way, and `additionalProperties` (other than `false`) is noted as not imported.
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

use crate::check::{ACTIONS_MAX, ARG_DEPTH_MAX};
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
        match import_arg(arg_name, property, 0) {
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

/// The short form (`name: string`) when nothing but the type is set (and it is not `object` or
/// `set` with `items`, which need the full form).
fn simplest(arg: ArgFull) -> ArgDoc {
    if arg.required
        && arg.allowed.is_none()
        && arg.max_bytes.is_none()
        && arg.min.is_none()
        && arg.max.is_none()
        && arg.description.is_none()
        && arg.properties.is_none()
        && arg.items.is_none()
    {
        ArgDoc::Type(arg.arg_type)
    } else {
        ArgDoc::Full(arg)
    }
}

/// Names of string properties that hold a file path: `path`, `source`, `destination`, `file`,
/// `filename`, `directory`, `dir`, and any name ending in `_path` or `Path`.
fn names_a_path(name: &str) -> bool {
    matches!(
        name,
        "path" | "source" | "destination" | "file" | "filename" | "directory" | "dir"
    ) || (name.len() > "_path".len() && (name.ends_with("_path") || name.ends_with("Path")))
}

/// Names of arrays whose items are file paths: `paths`, and names ending in `_paths` or
/// `Paths`.
fn names_paths(name: &str) -> bool {
    name == "paths"
        || (name.len() > "_paths".len() && (name.ends_with("_paths") || name.ends_with("Paths")))
}

/// One property schema (named `name`, inside `depth` objects and arrays) -> an argument and
/// notes, or why it cannot be one.
fn import_arg(
    name: &str,
    property: &Value,
    depth: usize,
) -> Result<(ArgFull, Vec<String>), String> {
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
    if matches!(type_name, "array" | "object") && depth >= ARG_DEPTH_MAX {
        return Err(format!(
            "it nests objects and arrays more than {ARG_DEPTH_MAX} deep, the limit of a pact argument"
        ));
    }
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
            let format = property.get("format").and_then(Value::as_str);
            if let Some(values) = &enum_values {
                match strings_only(values) {
                    Some(values) if !values.is_empty() => arg.allowed = Some(values),
                    _ => arg_notes.push("an `enum` with non-string values is not kept".to_string()),
                }
            } else if matches!(format, Some("uri" | "url")) {
                arg.arg_type = ArgTypeName::Url;
            } else if names_a_path(name) {
                arg.arg_type = ArgTypeName::Path;
                arg_notes.push(PATH_FROM_NAME.to_string());
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
            let Some(items) = property.get("items").filter(|items| items.is_object()) else {
                return Err("an array without an `items` schema is not supported".to_string());
            };
            // The items are named after the array for the path heuristic: `paths` holds paths.
            let item_name = if names_paths(name) { "path" } else { "" };
            let (item, item_notes) = import_arg(item_name, items, depth + 1)
                .map_err(|reason| format!("its items cannot be imported: {reason}"))?;
            for note in item_notes {
                if note == PATH_FROM_NAME {
                    arg_notes.push(PATHS_FROM_NAME.to_string());
                } else {
                    arg_notes.push(format!("items: {note}"));
                }
            }
            set_of(&mut arg, item);
            arg_notes.push("an array becomes a set: order and duplicates are not kept".to_string());
        }
        "object" => {
            let Some(declared) = property.get("properties").and_then(Value::as_object) else {
                return Err(
                    "an object without `properties` (a free-form object or a map) is not supported"
                        .to_string(),
                );
            };
            let required: Vec<&str> = property
                .get("required")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut members = BTreeMap::new();
            for (member_name, member_schema) in declared {
                let is_required = required.contains(&member_name.as_str());
                if !is_identifier(member_name) {
                    arg_notes.push(format!(
                        "member `{member_name}` is not an identifier (letters, digits, `_`); skipped, so calls that pass it will be refused"
                    ));
                    continue;
                }
                match import_arg(member_name, member_schema, depth + 1) {
                    Ok((mut member, member_notes)) => {
                        arg_notes.extend(
                            member_notes
                                .into_iter()
                                .map(|note| format!("member `{member_name}`: {note}")),
                        );
                        if !is_required {
                            member.required = false;
                        }
                        members.insert(member_name.clone(), simplest(member));
                    }
                    Err(reason) => arg_notes.push(format!(
                        "member `{member_name}`: {reason}; skipped, so calls that pass it will be refused{}",
                        if is_required { " (it is required)" } else { "" }
                    )),
                }
            }
            if property
                .get("additionalProperties")
                .is_some_and(|additional| additional != &Value::Bool(false))
            {
                arg_notes.push(
                    "`additionalProperties` is not imported: members not under `properties` will be refused"
                        .to_string(),
                );
            }
            arg.arg_type = ArgTypeName::Object;
            arg.properties = Some(members);
        }
        other => return Err(format!("type `{other}` is not supported")),
    }
    if nullable {
        arg.required = false;
        arg_notes.push("accepts `null`: imported as optional".to_string());
    }
    Ok((arg, arg_notes))
}

/// The note on a string typed `path` from its name.
const PATH_FROM_NAME: &str = "typed `path` from its name (relative paths refused, `..` resolved \
     before rules see it); make it `string` if the tool takes other text";
/// The note on an array whose items are typed `path` from its name.
const PATHS_FROM_NAME: &str = "typed `set<path>` from its name (relative paths refused, `..` \
     resolved before rules see it); make it `set<string>` if the tool takes other text";

/// Makes `arg` a set of `item`: the short names (`set<string>`, `set<path>`, ...) when the item
/// is a bare scalar, else `type: set` with `items`.
fn set_of(arg: &mut ArgFull, item: ArgFull) {
    let item = ArgFull {
        required: true,
        description: None,
        ..item
    };
    let short = match simplest(item.clone()) {
        ArgDoc::Type(ArgTypeName::String) => Some(ArgTypeName::SetString),
        ArgDoc::Type(ArgTypeName::Long) => Some(ArgTypeName::SetLong),
        ArgDoc::Type(ArgTypeName::Path) => Some(ArgTypeName::SetPath),
        ArgDoc::Type(ArgTypeName::Url) => Some(ArgTypeName::SetUrl),
        _ => None,
    };
    match short {
        Some(set_type) => arg.arg_type = set_type,
        None => {
            arg.arg_type = ArgTypeName::Set;
            arg.items = Some(Box::new(simplest(item)));
        }
    }
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
                && m.contains("an object without `properties`")
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

    fn type_of(doc: &ArgDoc) -> ArgTypeName {
        match doc {
            ArgDoc::Full(full) => full.arg_type,
            ArgDoc::Type(arg_type) => *arg_type,
        }
    }

    fn full(doc: &ArgDoc) -> &ArgFull {
        match doc {
            ArgDoc::Full(full) => full,
            ArgDoc::Type(arg_type) => panic!("expected the full form, got {arg_type:?}"),
        }
    }

    #[test]
    fn objects_and_arrays_of_objects_become_objects_and_sets() {
        let tools = json!({"tools": [{
            "name": "edit_file",
            "annotations": {"readOnlyHint": false, "destructiveHint": true},
            "inputSchema": {"type": "object", "properties": {
                "edits": {"type": "array", "items": {"type": "object", "properties": {
                    "oldText": {"type": "string"},
                    "newText": {"type": "string"},
                    "bad-key": {"type": "string"}
                }, "required": ["oldText", "newText"], "additionalProperties": false}},
                "options": {"type": "object", "properties": {
                    "dryRun": {"type": "boolean"},
                    "levels": {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {
                        "deepest": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}
                    }}}}
                }, "additionalProperties": true},
                "flags": {"type": "array", "items": {"type": "boolean"}},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}}
            }, "required": ["edits"]}
        }]});
        let imported = import_tools(&tools, &options()).unwrap();
        let args = &imported.doc.actions["edit_file"].args;
        let edits = full(&args["edits"]);
        assert_eq!((edits.arg_type, edits.required), (ArgTypeName::Set, true));
        let item = full(edits.items.as_deref().unwrap());
        assert_eq!(item.arg_type, ArgTypeName::Object);
        let members = item.properties.as_ref().unwrap();
        assert_eq!(
            members.keys().collect::<Vec<_>>(),
            vec!["newText", "oldText"]
        );
        assert_eq!(members["oldText"], ArgDoc::Type(ArgTypeName::String));
        let options_arg = full(&args["options"]);
        assert_eq!(
            (options_arg.arg_type, options_arg.required),
            (ArgTypeName::Object, false)
        );
        let option_members = options_arg.properties.as_ref().unwrap();
        assert_eq!(
            option_members["dryRun"],
            ArgDoc::Full(ArgFull {
                arg_type: ArgTypeName::Bool,
                required: false,
                allowed: None,
                max_bytes: None,
                min: None,
                max: None,
                properties: None,
                items: None,
                description: None,
            })
        );
        // options (1) > levels (2) > items (3) > object (4) > deepest: one level too many.
        let levels = full(&option_members["levels"]);
        let level_items = full(levels.items.as_deref().unwrap());
        let level_objects = full(level_items.items.as_deref().unwrap());
        assert!(level_objects.properties.as_ref().unwrap().is_empty());
        assert_eq!(type_of(&args["flags"]), ArgTypeName::Set);
        assert!(!args.contains_key("headers"));
        let messages: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
        let noted = |arg: &str, text: &str| {
            messages
                .iter()
                .any(|m| m.contains(&format!("argument `{arg}`")) && m.contains(text))
        };
        assert!(
            noted("edits", "member `bad-key` is not an identifier"),
            "{messages:?}"
        );
        assert!(
            noted("options", "`additionalProperties` is not imported"),
            "{messages:?}"
        );
        assert!(!noted("edits", "`additionalProperties`"), "{messages:?}");
        assert!(
            noted("options", "member `levels`: items: items: member `deepest`: it nests objects and arrays more than 4 deep"),
            "{messages:?}"
        );
        assert!(
            noted("headers", "an object without `properties`"),
            "{messages:?}"
        );
        let text = imported.to_yaml().unwrap();
        let checked = crate::check(&text);
        assert!(checked.pact.is_some(), "{text}\n{:?}", checked.diagnostics);
    }

    #[test]
    fn paths_are_typed_from_names_and_urls_from_formats() {
        let tools = json!({"tools": [{
            "name": "copy",
            "annotations": {"readOnlyHint": true},
            "inputSchema": {"type": "object", "properties": {
                "source": {"type": "string"},
                "destination": {"type": "string", "maxLength": 100},
                "config_path": {"type": "string"},
                "outputPath": {"type": "string"},
                "dir": {"type": ["string", "null"]},
                "paths": {"type": "array", "items": {"type": "string"}},
                "excludePatterns": {"type": "array", "items": {"type": "string"}},
                "callback": {"type": "string", "format": "uri"},
                "mirrors": {"type": "array", "items": {"type": "string", "format": "url"}},
                "file": {"type": "string", "enum": ["a.txt", "b.txt"]},
                "path_": {"type": "string"},
                "Path": {"type": "string"},
                "spec": {"type": "object", "properties": {"filename": {"type": "string"}}, "required": ["filename"]}
            }, "required": ["source", "destination", "config_path", "outputPath", "paths", "callback", "mirrors", "file", "path_", "Path", "spec"]}
        }]});
        let imported = import_tools(&tools, &options()).unwrap();
        let args = &imported.doc.actions["copy"].args;
        for name in ["source", "config_path", "outputPath"] {
            assert_eq!(args[name], ArgDoc::Type(ArgTypeName::Path), "{name}");
        }
        assert_eq!(full(&args["destination"]).arg_type, ArgTypeName::Path);
        assert_eq!(full(&args["destination"]).max_bytes, Some(400));
        assert_eq!(full(&args["dir"]).arg_type, ArgTypeName::Path);
        assert_eq!(type_of(&args["paths"]), ArgTypeName::SetPath);
        assert_eq!(type_of(&args["excludePatterns"]), ArgTypeName::SetString);
        assert_eq!(args["callback"], ArgDoc::Type(ArgTypeName::Url));
        assert_eq!(type_of(&args["mirrors"]), ArgTypeName::SetUrl);
        // An enum stays a string; names that merely contain `path` stay strings.
        assert_eq!(full(&args["file"]).arg_type, ArgTypeName::String);
        assert_eq!(args["path_"], ArgDoc::Type(ArgTypeName::String));
        assert_eq!(args["Path"], ArgDoc::Type(ArgTypeName::String));
        let spec = full(&args["spec"]);
        assert_eq!(
            spec.properties.as_ref().unwrap()["filename"],
            ArgDoc::Type(ArgTypeName::Path)
        );
        let messages: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
        for name in ["source", "destination", "config_path", "outputPath", "dir"] {
            assert!(
                messages
                    .iter()
                    .any(|m| m.contains(&format!("argument `{name}`: typed `path` from its name"))),
                "{name}: {messages:?}"
            );
        }
        assert!(messages
            .iter()
            .any(|m| m.contains("argument `paths`: typed `set<path>` from its name")));
        assert!(messages
            .iter()
            .any(|m| m.contains("argument `spec`: member `filename`: typed `path` from its name")));
        assert!(!messages.iter().any(|m| m.contains("argument `callback`")));
        let text = imported.to_yaml().unwrap();
        let checked = crate::check(&text);
        assert!(checked.pact.is_some(), "{text}\n{:?}", checked.diagnostics);
    }
}
