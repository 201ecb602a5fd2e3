//! Arguments by kind: `path` normalised before conditions see it, `url` parsed into a record,
//! `object` and `set` walked member by member, and `Verdict::normalized_args` set only when a
//! path changed. The pact is shaped like the filesystem MCP server's tools.

use std::sync::Arc;

use guard::{decide, rule_ids, Decision, Guard, State, SET_ITEMS_MAX};
use serde_json::{json, Value};

use super::{has_finding, request, T0};

const PACT: &str = r#"
pact: fs-agent
version: 1
agent: acme/fs-bot
tier: medium
actions:
  read_text_file: { args: { path: { type: path, max_bytes: 4096 } } }
  read_multiple_files: { args: { paths: "set<path>" } }
  fetch: { args: { url: url } }
  edit_file:
    reversibility: partial
    args:
      path: path
      edits:
        type: set
        items: { type: object, properties: { oldText: string, newText: string } }
      dryRun: { type: bool, required: false }
  move_file:
    reversibility: partial
    args:
      spec:
        type: object
        properties:
          source: path
          destination: path
          overwrite: { type: bool, required: false }
rules:
  # The folder itself, or anything under it: `like "/srv/docs/*"` alone misses the folder, and
  # `like "/srv/docs*"` would also match `/srv/docs-private`.
  - id: docs-only
    permit: read_text_file
    when: 'context.args.path == "/srv/docs" || context.args.path like "/srv/docs/*"'
  - id: no-drafts
    forbid: read_text_file
    when: 'context.args.path like "/srv/docs/drafts/*"'
  # Cedar has no "every item" quantifier: a set of paths is checked against a fixed list.
  - id: known-files
    permit: read_multiple_files
    when: '["/srv/docs/a.md", "/srv/docs/b.md", "/srv/docs/c.md"].containsAll(context.args.paths)'
  - id: never-passwd
    forbid: read_multiple_files
    when: 'context.args.paths.contains("/etc/passwd")'
  - id: api-only
    permit: fetch
    when: 'context.args.url.scheme == "https" && context.args.url.host == "api.example.com" && context.args.url.port == 443'
  - id: no-admin
    forbid: fetch
    when: 'context.args.url.path like "/admin*" || context.args.url.query like "*debug=1*"'
  - id: edit-docs
    permit: edit_file
    when: 'context.args.path like "/srv/docs/*"'
  - id: no-password-edits
    forbid: edit_file
    when: 'context.args.edits.contains({ oldText: "password", newText: "" })'
  - id: move-within-docs
    permit: move_file
    when: 'context.args.spec.source like "/srv/docs/*" && context.args.spec.destination like "/srv/docs/*"'
  - id: no-overwrite
    forbid: move_file
    when: 'context.args.spec has overwrite && context.args.spec.overwrite'
"#;

fn fs_guard() -> Guard {
    let checked = pact::check(PACT);
    let pact = checked.pact.unwrap_or_else(|| {
        panic!("test pact is valid: {:?}", checked.diagnostics);
    });
    Guard::new(Arc::new(pact)).unwrap()
}

fn decide_one(guard: &Guard, action: &str, args: Value) -> guard::Verdict {
    decide(guard, &request(action, args), &mut State::new(), T0)
}

fn refusal(verdict: &guard::Verdict) -> String {
    assert_eq!(verdict.decision, Decision::Deny);
    assert_eq!(verdict.rules, vec![rule_ids::INVALID_ARGS]);
    assert!(has_finding(verdict, "invalid_args"));
    verdict
        .findings
        .iter()
        .map(|finding| finding.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn dot_dot_cannot_escape_the_folder() {
    let guard = fs_guard();
    for path in [
        "/srv/docs/../etc/passwd",
        "/srv/docs/../../../../etc/passwd",
        "/srv/docs/a/../../secrets",
        "/srv/docs/..",
    ] {
        let verdict = decide_one(&guard, "read_text_file", json!({ "path": path }));
        assert_eq!(verdict.decision, Decision::Deny, "{path}");
        assert_eq!(verdict.rules, vec![rule_ids::DEFAULT_DENY], "{path}");
        assert!(verdict.normalized_args.is_some(), "{path}");
    }
    let escaped = decide_one(
        &guard,
        "read_text_file",
        json!({"path": "/srv/docs/../../etc/passwd"}),
    );
    assert_eq!(
        escaped.normalized_args,
        json!({"path": "/etc/passwd"}).as_object().cloned()
    );
    // Back into the folder after leaving it is inside it.
    let back_in = decide_one(
        &guard,
        "read_text_file",
        json!({"path": "/srv/other/../docs/a.md"}),
    );
    assert_eq!(back_in.decision, Decision::Allow);
    assert_eq!(back_in.rules, vec!["docs-only"]);
    // A forbid cannot be dodged with `.` or `//` either.
    let draft = decide_one(
        &guard,
        "read_text_file",
        json!({"path": "/srv/docs/./drafts//plan.md"}),
    );
    assert_eq!(draft.decision, Decision::Deny);
    assert_eq!(draft.rules, vec!["no-drafts"]);
}

#[test]
fn lexical_normalisation_cases() {
    let guard = fs_guard();
    let cases = [
        ("/srv//docs///a.md", "/srv/docs/a.md"),
        ("/srv/./docs/./a.md", "/srv/docs/a.md"),
        ("/srv/docs/sub/", "/srv/docs/sub"),
        ("/srv/docs/", "/srv/docs"),
        ("/srv/docs/a/b/../c", "/srv/docs/a/c"),
        ("/srv/docs/...", "/srv/docs/..."),
        ("/srv/docs/..a/.b", "/srv/docs/..a/.b"),
        ("/..", "/"),
        ("/../../x", "/x"),
        ("//", "/"),
        ("/", "/"),
        ("/srv/docs/a.md", "/srv/docs/a.md"),
    ];
    for (sent, seen) in cases {
        let verdict = decide_one(&guard, "read_text_file", json!({ "path": sent }));
        let expected = (sent != seen).then(|| json!({ "path": seen }).as_object().cloned());
        assert_eq!(verdict.normalized_args, expected.flatten(), "{sent}");
        let inside = seen == "/srv/docs" || seen.starts_with("/srv/docs/");
        let decision = if inside {
            Decision::Allow
        } else {
            Decision::Deny
        };
        assert_eq!(verdict.decision, decision, "{sent} seen as {seen}");
    }
}

#[test]
fn bad_paths_are_refused_naming_the_argument() {
    let guard = fs_guard();
    for (path, expected) in [
        (json!(""), "argument `path` is an empty path"),
        (json!("srv/docs/a.md"), "`srv/docs/a.md`, a relative path"),
        (json!("./a.md"), "a relative path"),
        (json!("../etc/passwd"), "a relative path"),
        (json!("~/a.md"), "a relative path"),
        (
            json!("/srv/docs/a\u{0}.md"),
            "argument `path` holds a NUL byte",
        ),
        (
            json!(format!("/srv/docs/{}", "a".repeat(5000))),
            "the limit is 4096",
        ),
        (
            json!(7),
            "argument `path` must be an absolute path (a string), got a number",
        ),
    ] {
        let verdict = decide_one(&guard, "read_text_file", json!({ "path": path }));
        let message = refusal(&verdict);
        assert!(message.contains(expected), "{message}");
        assert_eq!(verdict.normalized_args, None);
    }
    let in_set = decide_one(
        &guard,
        "read_multiple_files",
        json!({"paths": ["/srv/docs/a.md", "b.md"]}),
    );
    assert!(refusal(&in_set).contains("argument `paths[1]` is `b.md`, a relative path"));
}

#[test]
fn a_set_of_paths_with_one_outside_the_folder_is_denied() {
    let guard = fs_guard();
    let inside = decide_one(
        &guard,
        "read_multiple_files",
        json!({"paths": ["/srv/docs/a.md", "/srv/docs/b.md"]}),
    );
    assert_eq!(inside.decision, Decision::Allow);
    assert_eq!(inside.normalized_args, None);
    let one_outside = decide_one(
        &guard,
        "read_multiple_files",
        json!({"paths": ["/srv/docs/a.md", "/srv/docs/../../etc/shadow"]}),
    );
    assert_eq!(one_outside.decision, Decision::Deny);
    assert_eq!(one_outside.rules, vec![rule_ids::DEFAULT_DENY]);
    // Normalised per item, so the forbid sees `/etc/passwd` whatever was sent; order is kept in
    // `normalized_args` even though conditions see a set.
    let passwd = decide_one(
        &guard,
        "read_multiple_files",
        json!({"paths": ["/srv/docs/./c.md", "/srv/docs/../../etc/passwd"]}),
    );
    assert_eq!(passwd.decision, Decision::Deny);
    assert_eq!(passwd.rules, vec!["never-passwd"]);
    assert_eq!(
        passwd.normalized_args,
        json!({"paths": ["/srv/docs/c.md", "/etc/passwd"]})
            .as_object()
            .cloned()
    );
    let too_many: Vec<String> = (0..=SET_ITEMS_MAX)
        .map(|idx| format!("/srv/docs/{idx}"))
        .collect();
    let verdict = decide_one(&guard, "read_multiple_files", json!({ "paths": too_many }));
    assert!(refusal(&verdict).contains(&format!("the limit is {SET_ITEMS_MAX}")));
}

#[test]
fn url_scheme_host_and_port_conditions() {
    let guard = fs_guard();
    for (url, decision) in [
        ("https://api.example.com/v1/items?id=3", Decision::Allow),
        ("https://API.Example.COM:443/v1", Decision::Allow),
        ("https://api.example.com./v1", Decision::Deny),
        ("http://api.example.com/v1", Decision::Deny),
        ("https://api.example.com:8443/v1", Decision::Deny),
        ("https://api.example.com.evil.net/v1", Decision::Deny),
        ("https://api.example.com@evil.net/v1", Decision::Deny),
        ("https://api.example.com/admin/users", Decision::Deny),
        ("https://api.example.com/v1/../admin", Decision::Deny),
        ("https://api.example.com/v1?debug=1", Decision::Deny),
    ] {
        let verdict = decide_one(&guard, "fetch", json!({ "url": url }));
        assert_eq!(verdict.decision, decision, "{url}: {:?}", verdict.rules);
        // URLs are never rewritten in `normalized_args`.
        assert_eq!(verdict.normalized_args, None, "{url}");
    }
    for (url, expected) in [
        (
            "/v1/items",
            "is not an absolute URL: relative URL without a base",
        ),
        ("api.example.com/v1", "is not an absolute URL"),
        ("https://exa mple.com/", "is not an absolute URL"),
        ("", "is not an absolute URL"),
    ] {
        let verdict = decide_one(&guard, "fetch", json!({ "url": url }));
        let message = refusal(&verdict);
        assert!(
            message.contains(&format!("argument `url` is `{url}`, which {expected}")),
            "{message}"
        );
    }
}

#[test]
fn object_members_are_converted_checked_and_seen_by_conditions() {
    let guard = fs_guard();
    let spec = |source: &str, destination: &str| json!({"spec": {"source": source, "destination": destination}});
    let within = decide_one(
        &guard,
        "move_file",
        spec("/srv/docs/a.md", "/srv/docs/b.md"),
    );
    assert_eq!(within.decision, Decision::Allow);
    let out = decide_one(
        &guard,
        "move_file",
        spec("/srv/docs/a.md", "/srv/docs/../../tmp/a.md"),
    );
    assert_eq!(out.decision, Decision::Deny);
    assert_eq!(
        out.normalized_args,
        spec("/srv/docs/a.md", "/tmp/a.md").as_object().cloned()
    );
    let overwrite = decide_one(
        &guard,
        "move_file",
        json!({"spec": {"source": "/srv/docs/a.md", "destination": "/srv/docs/b.md", "overwrite": true}}),
    );
    assert_eq!(overwrite.rules, vec!["no-overwrite"]);
    for (args, expected) in [
        (
            json!({"spec": {"source": "/srv/docs/a.md"}}),
            "missing required argument `spec.destination`",
        ),
        (
            json!({"spec": {"source": "/srv/docs/a.md", "destination": "/srv/docs/b.md", "force": true}}),
            "argument `spec` has the member `force`, which is not declared",
        ),
        (
            json!({"spec": ["/srv/docs/a.md"]}),
            "argument `spec` must be an object, got a list",
        ),
        (
            json!({"spec": {"source": "/srv/docs/a.md", "destination": "b.md"}}),
            "argument `spec.destination` is `b.md`, a relative path",
        ),
    ] {
        let message = refusal(&decide_one(&guard, "move_file", args));
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn sets_of_objects_hold_records() {
    let guard = fs_guard();
    let edit = |old: &str| json!({"path": "/srv/docs/a.md", "edits": [{"oldText": "x", "newText": "y"}, {"oldText": old, "newText": ""}], "dryRun": true});
    let allowed = decide_one(&guard, "edit_file", edit("typo"));
    assert_eq!(allowed.decision, Decision::Allow);
    assert_eq!(allowed.normalized_args, None);
    let password = decide_one(&guard, "edit_file", edit("password"));
    assert_eq!(password.rules, vec!["no-password-edits"]);
    let message = refusal(&decide_one(
        &guard,
        "edit_file",
        json!({"path": "/srv/docs/a.md", "edits": [{"oldText": "x", "newText": "y"}, {"oldText": "x"}]}),
    ));
    assert!(
        message.contains("missing required argument `edits[1].newText`"),
        "{message}"
    );
    let message = refusal(&decide_one(
        &guard,
        "edit_file",
        json!({"path": "/srv/docs/a.md", "edits": [{"oldText": 1, "newText": "y"}]}),
    ));
    assert!(
        message.contains("argument `edits[0].oldText` must be a string, got a number"),
        "{message}"
    );
    // Normalised paths come back with every other argument as sent.
    let dotted = decide_one(
        &guard,
        "edit_file",
        json!({"path": "/srv/docs/./a.md", "edits": [], "dryRun": false}),
    );
    assert_eq!(
        dotted.normalized_args,
        json!({"path": "/srv/docs/a.md", "edits": [], "dryRun": false})
            .as_object()
            .cloned()
    );
}

/// The filesystem MCP server's own `tools/list`, imported, with one rule: read only inside
/// `/srv/docs`.
#[test]
fn imported_filesystem_tools_stay_inside_the_folder() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/mcp-schema/handmade/filesystem-tools-list.json");
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let options = pact::mcp::ImportOptions {
        pact_id: "filesystem".to_string(),
        agent: "acme/docs-bot".to_string(),
        tier: pact::syntax::Tier::Medium,
    };
    let imported = pact::mcp::import_tools(&value, &options).unwrap();
    let text = format!(
        "{}rules:\n  - id: read-docs\n    permit: [read_text_file, read_media_file, list_directory, get_file_info, search_files, directory_tree]\n    when: 'context.args.path == \"/srv/docs\" || context.args.path like \"/srv/docs/*\"'\n",
        imported.to_yaml().unwrap()
    );
    let checked = pact::check(&text);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let guard = Guard::new(Arc::new(checked.pact.unwrap())).unwrap();
    for (action, args, decision) in [
        (
            "read_text_file",
            json!({"path": "/srv/docs/guide.md", "head": 10}),
            Decision::Allow,
        ),
        (
            "read_text_file",
            json!({"path": "/srv/docs/../../etc/passwd"}),
            Decision::Deny,
        ),
        (
            "read_text_file",
            json!({"path": "guide.md"}),
            Decision::Deny,
        ),
        (
            "list_directory",
            json!({"path": "/srv/docs/"}),
            Decision::Allow,
        ),
        (
            "list_directory",
            json!({"path": "/srv/docs-private"}),
            Decision::Deny,
        ),
        (
            "search_files",
            json!({"path": "/srv/docs", "pattern": "**/*.md", "excludePatterns": ["drafts"]}),
            Decision::Allow,
        ),
        (
            "write_file",
            json!({"path": "/srv/docs/guide.md", "content": "x"}),
            Decision::Deny,
        ),
        (
            "move_file",
            json!({"source": "/srv/docs/a", "destination": "/srv/docs/b"}),
            Decision::Deny,
        ),
    ] {
        let verdict = decide_one(&guard, action, args.clone());
        assert_eq!(
            verdict.decision, decision,
            "{action} {args}: {:?}",
            verdict.findings
        );
    }
}
