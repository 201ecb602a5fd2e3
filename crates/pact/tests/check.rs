//! Integration tests of the pact language: data-driven diagnostics (`test_data/*.yaml` with the
//! expected rendering in `*.expected`, rewritten when `PACTUM_BLESS=1`), robustness on garbled
//! input, the JSON Schema, formatting round trips, and the MCP import on the schema examples.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

const EXAMPLE: &str = include_str!("../../../examples/support-agent/pact.yaml");

fn test_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// Every `test_data` input, sorted by name.
fn test_data_inputs() -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(test_data_dir())
        .expect("test_data exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "json")
        })
        .collect();
    inputs.sort();
    inputs
}

fn render(path: &Path) -> (String, Vec<pact::Diagnostic>) {
    let bytes = std::fs::read(path).expect("readable input");
    let name = path.file_name().expect("file name").to_string_lossy();
    let diagnostics = pact::check_bytes(&bytes).diagnostics;
    let mut out = String::new();
    for diagnostic in &diagnostics {
        out.push_str(&diagnostic.render(&name));
        out.push('\n');
    }
    (out, diagnostics)
}

/// Every diagnostic code, each of which some `test_data` file must produce, except those listed
/// in `CODES_TESTED_ELSEWHERE`.
const CODES: &[&str] = &[
    "arg",
    "authority",
    "canary",
    "cedar-parse",
    "cedar-schema",
    "cedar-type",
    "cedar-warning",
    "consequence",
    "counter",
    "duplicate-id",
    "duration",
    "empty",
    "encoding",
    "identity",
    "irreversible-unguarded",
    "limit",
    "missing-field",
    "name",
    "never-matches",
    "obligation",
    "rule",
    "rule-id",
    "score",
    "shadowed",
    "shape",
    "signal",
    "too-deep",
    "too-large",
    "unknown-action",
    "unknown-arg",
    "unknown-category",
    "unknown-counter",
    "unknown-field",
    "unknown-obligation",
    "unknown-signal",
    "yaml",
];

/// `too-large` needs a file over the limit (tested in `oversized_input_is_refused`);
/// `cedar-schema` is defensive: names are escaped, so a catalog always makes a valid schema.
const CODES_TESTED_ELSEWHERE: &[&str] = &["too-large", "cedar-schema"];

#[test]
fn test_data_diagnostics_match_expected() {
    let bless = std::env::var_os("PACTUM_BLESS").is_some_and(|value| value == "1");
    let mut mismatches = Vec::new();
    let mut codes_seen = BTreeSet::new();
    let inputs = test_data_inputs();
    assert!(inputs.len() >= 30, "test_data has {} inputs", inputs.len());
    for input in &inputs {
        let (rendered, diagnostics) = render(input);
        codes_seen.extend(diagnostics.iter().map(|diagnostic| diagnostic.code));
        let expected_path = input.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &rendered).expect("writable expected file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{rendered}",
                input.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "diagnostics differ (run with PACTUM_BLESS=1 to accept):\n{}",
        mismatches.join("\n")
    );
    let missing: Vec<&&str> = CODES
        .iter()
        .filter(|code| !codes_seen.contains(**code) && !CODES_TESTED_ELSEWHERE.contains(code))
        .collect();
    assert!(missing.is_empty(), "no test_data file produces {missing:?}");
    let unknown: Vec<&&str> = codes_seen
        .iter()
        .filter(|code| !CODES.contains(code))
        .collect();
    assert!(unknown.is_empty(), "codes missing from CODES: {unknown:?}");
}

#[test]
fn every_position_is_inside_the_file() {
    for input in test_data_inputs() {
        let text = String::from_utf8_lossy(&std::fs::read(&input).expect("readable")).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        for diagnostic in pact::check_bytes(text.as_bytes()).diagnostics {
            let position = diagnostic.position;
            assert!(
                position.line >= 1 && position.col >= 1,
                "{input:?}: {diagnostic:?}"
            );
            let Some(line) = lines.get(position.line - 1) else {
                // A position just past the last line is fine for "unexpected end of file".
                assert_eq!(position.line, lines.len() + 1, "{input:?}: {diagnostic:?}");
                continue;
            };
            assert!(
                position.col <= line.chars().count() + 1,
                "{input:?}: column past the end of line {}: {diagnostic:?}",
                position.line
            );
        }
    }
}

#[test]
fn condition_errors_point_inside_the_condition() {
    let source = "pact: t\nversion: 1\nagent: a/b\ntier: low\nactions:\n  refund: { args: { amount_cents: long } }\nrules:\n  - id: r\n    permit: refund\n    when: \"context.args.amount_cents > 1 && context.args.amout_cents > 2\"\n";
    let diagnostics = pact::check(source).diagnostics;
    let [diagnostic] = diagnostics.as_slice() else {
        panic!("one diagnostic expected, got {diagnostics:?}")
    };
    assert_eq!(diagnostic.code, "cedar-type");
    let line = source
        .lines()
        .nth(diagnostic.position.line - 1)
        .expect("line");
    let at: String = line.chars().skip(diagnostic.position.col - 1).collect();
    assert!(
        at.starts_with("context.args.amout_cents"),
        "points at {at:?}"
    );
}

#[test]
fn oversized_input_is_refused() {
    let big = format!("{EXAMPLE}\n# {}\n", "x".repeat(pact::PACT_BYTES_MAX));
    let checked = pact::check_bytes(big.as_bytes());
    assert_eq!(checked.diagnostics.len(), 1);
    assert_eq!(checked.diagnostics[0].code, "too-large");
    assert!(checked.pact.is_none());
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % below.max(1)
    }
}

#[test]
fn truncated_and_garbled_pacts_never_panic() {
    let mut n_checked = 0;
    // Every prefix, at a stride, cut on a character boundary.
    for cut in (0..EXAMPLE.len()).step_by(5) {
        if let Some(prefix) = EXAMPLE.get(..cut) {
            let checked = pact::check(prefix);
            assert!(checked.pact.is_some() || pact::has_errors(&checked.diagnostics));
            n_checked += 1;
        }
    }
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    let noise = [
        ":",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "'",
        "#",
        "&a",
        "*a",
        "!",
        "|",
        ">",
        "-",
        "\t",
        " ",
        "\n",
        "((",
        "&&",
        "context.",
        "\u{0}",
        "\u{202e}",
        "é",
        "-1",
        "99999999999999999999",
        "~",
    ];
    let mut rng = Lcg(7);
    for _ in 0..400 {
        let mut garbled: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
        for _ in 0..(1 + rng.next(3)) {
            let line_idx = rng.next(garbled.len());
            match rng.next(5) {
                0 => {
                    garbled.remove(line_idx);
                }
                1 => {
                    let other = rng.next(garbled.len());
                    garbled.swap(line_idx, other);
                }
                2 => {
                    let copy = garbled[line_idx].clone();
                    garbled.insert(line_idx, copy);
                }
                _ => {
                    let line = &garbled[line_idx];
                    let boundaries: Vec<usize> = line
                        .char_indices()
                        .map(|(idx, _)| idx)
                        .chain([line.len()])
                        .collect();
                    let at = boundaries[rng.next(boundaries.len())];
                    let mut changed = line.clone();
                    changed.insert_str(at, noise[rng.next(noise.len())]);
                    garbled[line_idx] = changed;
                }
            }
        }
        let text = garbled.join("\n");
        let checked = pact::check(&text);
        assert!(checked.pact.is_some() || pact::has_errors(&checked.diagnostics));
        // Formatting must not panic either, and what it writes must read back the same.
        if let Ok(formatted) = pact::fmt::format(&text, pact::fmt::Layout::Yaml) {
            assert_eq!(
                pact::parse_doc(&formatted.text).ok(),
                pact::parse_doc(&text).ok()
            );
        }
        n_checked += 1;
    }
    assert!(n_checked > 800);
}

#[test]
fn deep_conditions_are_refused_not_overflowed() {
    for condition in [
        format!("{}true{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!("context.args{}", ".a".repeat(2_000)),
        format!("true{}", " || true".repeat(900)),
    ] {
        let source = format!(
            "pact: t\nversion: 1\nagent: a/b\ntier: low\nactions:\n  x: {{ args: {{ a: long }} }}\nrules:\n  - {{ id: r, permit: x, when: {} }}\n",
            serde_json::to_string(&condition).expect("json string")
        );
        let codes: Vec<&str> = pact::check(&source)
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic.code)
            .collect();
        assert!(codes == ["limit"], "{}: {codes:?}", &condition[..20]);
    }
    // Just under the operator limit, a type error deep in a chain is still found.
    let condition = format!("context.args.nope{}", ".a".repeat(60));
    let source = format!(
        "pact: t\nversion: 1\nagent: a/b\ntier: low\nactions:\n  x: {{ args: {{ a: long }} }}\nrules:\n  - {{ id: r, permit: x, when: \"{condition}\" }}\n"
    );
    let codes: Vec<&str> = pact::check(&source)
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.code)
        .collect();
    assert_eq!(codes, ["cedar-type"]);
}

/// A structural JSON Schema check covering the keywords schemars emits: `$ref`, `type`,
/// `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf`,
/// `oneOf`, `allOf`, `minimum`. Returns the problems found.
fn validate(schema: &Value, root: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        match root.pointer(pointer) {
            Some(target) => validate(target, root, value, path, problems),
            None => problems.push(format!("{path}: dangling $ref {reference}")),
        }
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let matches = names.iter().any(|name| match *name {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => false,
        });
        if !matches {
            problems.push(format!("{path}: {value} is not of type {types}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            problems.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            problems.push(format!("{path}: {value} is not {constant}"));
        }
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if number < minimum {
            problems.push(format!("{path}: {number} is below {minimum}"));
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
            let n_matching = alternatives
                .iter()
                .filter(|alternative| {
                    let mut inner = Vec::new();
                    validate(alternative, root, value, path, &mut inner);
                    inner.is_empty()
                })
                .count();
            if n_matching == 0 || (keyword == "oneOf" && n_matching > 1) {
                problems.push(format!(
                    "{path}: {n_matching} alternatives of {keyword} match"
                ));
            }
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            validate(part, root, value, path, problems);
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    problems.push(format!("{path}: missing required `{name}`"));
                }
            }
        }
        for (key, item) in map {
            let item_path = format!("{path}/{key}");
            match properties.and_then(|properties| properties.get(key)) {
                Some(property) => validate(property, root, item, &item_path, problems),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        problems.push(format!("{path}: unexpected property `{key}`"))
                    }
                    Some(additional @ Value::Object(_)) => {
                        validate(additional, root, item, &item_path, problems)
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (idx, item) in items.iter().enumerate() {
            validate(item_schema, root, item, &format!("{path}/{idx}"), problems);
        }
    }
}

fn source_value(text: &str) -> Value {
    let doc = pact::parse_doc(text).expect("well-shaped pact");
    serde_json::to_value(doc).expect("encodable")
}

#[test]
fn json_schema_accepts_valid_pacts_and_rejects_bad_shapes() {
    let schema = pact::json_schema();
    assert_eq!(
        schema.get("title").and_then(Value::as_str),
        Some("PactDoc"),
        "schema: {schema}"
    );
    let clean = std::fs::read_to_string(test_data_dir().join("clean.yaml")).expect("clean.yaml");
    for text in [EXAMPLE, clean.as_str()] {
        // The document as written (YAML -> JSON value), not as re-serialized by serde.
        let written = pact::fmt::format(text, pact::fmt::Layout::Json).expect("formats");
        let value: Value = serde_json::from_str(&written.text).expect("json");
        let mut problems = Vec::new();
        validate(&schema, &schema, &value, "", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(value, source_value(text));
    }
    let mut bad = source_value(EXAMPLE);
    bad["tier"] = Value::from("extreme");
    bad["actions"]["issue_refund"]["reversability"] = Value::from("partial");
    bad["rules"][0]["permit"] = Value::from(3);
    let mut problems = Vec::new();
    validate(&schema, &schema, &bad, "", &mut problems);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn json_schema_documents_every_field() {
    let schema = pact::json_schema();
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .expect("$defs");
    let mut undocumented = Vec::new();
    let check_properties = |owner: &str, node: &Value, undocumented: &mut Vec<String>| {
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                if property.get("description").is_none() {
                    undocumented.push(format!("{owner}.{name}"));
                }
            }
        }
    };
    check_properties("PactDoc", &schema, &mut undocumented);
    for (name, definition) in definitions {
        check_properties(name, definition, &mut undocumented);
        if definition.get("description").is_none() {
            undocumented.push(name.clone());
        }
    }
    assert!(undocumented.is_empty(), "no doc comment: {undocumented:?}");
}

#[test]
fn fmt_is_idempotent_and_keeps_digests_on_test_data() {
    let mut n_formatted = 0;
    for input in test_data_inputs() {
        let Ok(text) = std::fs::read_to_string(&input) else {
            continue;
        };
        let Ok(once) = pact::fmt::format(&text, pact::fmt::Layout::Yaml) else {
            continue;
        };
        let twice = pact::fmt::format(&once.text, pact::fmt::Layout::Yaml).expect("formats");
        assert_eq!(once.text, twice.text, "{input:?}");
        if let Some(before) = pact::check(&text).pact {
            let after = pact::check(&once.text).pact.expect("still valid");
            assert_eq!(before.digest(), after.digest(), "{input:?}");
        }
        n_formatted += 1;
    }
    assert!(n_formatted >= 20, "{n_formatted} files formatted");
}

fn mcp_examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mcp-schema");
    let mut found = Vec::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable testdata/mcp-schema") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn mcp_examples_import_to_pacts_that_check() {
    let options = pact::mcp::ImportOptions {
        pact_id: "imported".to_string(),
        agent: "acme/tools".to_string(),
        tier: pact::syntax::Tier::High,
    };
    let examples = mcp_examples();
    assert!(examples.len() >= 4, "{examples:?}");
    let mut n_imported = 0;
    for path in &examples {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("json");
        let imported = pact::mcp::import_tools(&value, &options)
            .unwrap_or_else(|err| panic!("{path:?}: {err}"));
        let text = imported.to_yaml().expect("formats");
        let checked = pact::check(&text);
        assert!(
            checked.pact.is_some(),
            "{path:?}:\n{text}\n{:?}",
            checked.diagnostics
        );
        n_imported += 1;
    }
    assert_eq!(n_imported, examples.len());
}

/// The filesystem MCP server's tools: file arguments become `path`s, `edits` a set of
/// objects, and the import checks without a diagnostic.
#[test]
fn mcp_filesystem_server_imports_paths_and_objects() {
    use pact::syntax::{ArgDoc, ArgTypeName, Reversibility};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/mcp-schema/handmade/filesystem-tools-list.json");
    let value: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("json");
    let options = pact::mcp::ImportOptions {
        pact_id: "filesystem".to_string(),
        agent: "acme/docs-bot".to_string(),
        tier: pact::syntax::Tier::Medium,
    };
    let imported = pact::mcp::import_tools(&value, &options).expect("imports");
    let text = imported.to_yaml().expect("formats");
    let checked = pact::check(&text);
    assert!(
        checked.pact.is_some() && checked.diagnostics.is_empty(),
        "{text}\n{:?}",
        checked.diagnostics
    );
    let pact = checked.pact.expect("checked");
    assert_eq!(pact.actions().len(), 14);
    let kind = |action: &str, arg: &str| {
        pact.action(action)
            .and_then(|action| action.arg(arg))
            .map(|arg| arg.kind.clone())
    };
    for (action, arg) in [
        ("read_file", "path"),
        ("read_text_file", "path"),
        ("read_media_file", "path"),
        ("write_file", "path"),
        ("edit_file", "path"),
        ("create_directory", "path"),
        ("list_directory", "path"),
        ("list_directory_with_sizes", "path"),
        ("directory_tree", "path"),
        ("move_file", "source"),
        ("move_file", "destination"),
        ("search_files", "path"),
        ("get_file_info", "path"),
    ] {
        assert_eq!(
            kind(action, arg),
            Some(pact::ArgKind::Path),
            "{action}.{arg}"
        );
    }
    let Some(pact::ArgKind::Set(item)) = kind("read_multiple_files", "paths") else {
        panic!("paths is a set");
    };
    assert_eq!(item.kind, pact::ArgKind::Path);
    assert_eq!(kind("search_files", "pattern"), Some(pact::ArgKind::String));
    assert_eq!(kind("write_file", "content"), Some(pact::ArgKind::String));
    let Some(pact::ArgKind::Set(edit)) = kind("edit_file", "edits") else {
        panic!("edits is a set");
    };
    let pact::ArgKind::Object(members) = &edit.kind else {
        panic!("an edit is an object");
    };
    assert_eq!(
        members
            .iter()
            .map(|member| (member.name.as_str(), member.required))
            .collect::<Vec<_>>(),
        vec![("newText", true), ("oldText", true)]
    );
    let sort_by = pact
        .action("list_directory_with_sizes")
        .and_then(|action| action.arg("sortBy"))
        .expect("sortBy");
    assert_eq!(
        (sort_by.required, sort_by.allowed.clone()),
        (false, Some(vec!["name".to_string(), "size".to_string()]))
    );
    let doc = &imported.doc.actions;
    assert_eq!(
        doc["read_text_file"].reversibility,
        Reversibility::Reversible
    );
    assert_eq!(doc["write_file"].reversibility, Reversibility::Irreversible);
    assert_eq!(doc["move_file"].reversibility, Reversibility::Partial);
    assert!(doc["list_allowed_directories"].args.is_empty());
    assert!(matches!(
        &doc["directory_tree"].args["excludePatterns"],
        ArgDoc::Full(full) if full.arg_type == ArgTypeName::SetString && !full.required
    ));
    let messages: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    assert!(
        messages.iter().any(|m| m
            == "tool `move_file`, argument `destination`: typed `path` from its name (relative paths refused, `..` resolved before rules see it); make it `string` if the tool takes other text"),
        "{messages:?}"
    );
    assert!(text.contains(
        "- tool `read_multiple_files`, argument `paths`: typed `set<path>` from its name"
    ));
}
