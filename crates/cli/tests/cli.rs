//! The `pactum` binary, run as a user would: in a temporary directory, checking exit codes,
//! stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pactum(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pactum"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("pactum runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

mod pact_tools {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/support-agent/pact.yaml");

    const WARNS: &str = "pact: w\nversion: 1\nagent: a/b\ntier: low\nactions:\n  send: { reversibility: irreversible }\nrules:\n  - { id: sends, permit: send }\n";

    const ERRS: &str = "pact: e\nversion: 1\nagent: a/b\ntier: low\nactions:\n  refund: { args: { amount_cents: long } }\nrules:\n  - { id: r, permit: refund, when: \"context.args.amout_cents < 5\" }\n";

    fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("writable");
        }
        dir
    }

    #[test]
    fn check_accepts_the_example() {
        let dir = temp_with(&[("pact.yaml", EXAMPLE)]);
        let output = pactum(dir.path(), &["pact", "check", "pact.yaml"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "");
        assert_eq!(stderr(&output), "1 file checked: 0 errors, 0 warnings\n");
    }

    #[test]
    fn check_reports_errors_and_warnings_with_positions() {
        let dir = temp_with(&[("warns.yaml", WARNS), ("errs.yaml", ERRS)]);
        let output = pactum(dir.path(), &["pact", "check", "warns.yaml", "errs.yaml"]);
        assert_eq!(output.status.code(), Some(1));
        let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("warns.yaml:6:3: warning[irreversible-unguarded]: "));
        assert!(
            lines[1].starts_with("errs.yaml:8:37: error[cedar-type]: "),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("amout_cents"));
        assert_eq!(stderr(&output), "2 files checked: 1 error, 1 warning\n");
        // Warnings alone do not fail the check.
        let output = pactum(dir.path(), &["pact", "check", "warns.yaml"]);
        assert_eq!(output.status.code(), Some(0));
    }

    #[test]
    fn check_prints_json_for_tools() {
        let dir = temp_with(&[("errs.yaml", ERRS), ("ok.yaml", EXAMPLE)]);
        let output = pactum(
            dir.path(),
            &["pact", "check", "--format", "json", "errs.yaml", "ok.yaml"],
        );
        assert_eq!(output.status.code(), Some(1));
        let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(
            rows,
            serde_json::json!([{
                "file": "errs.yaml",
                "line": 8,
                "col": 37,
                "severity": "error",
                "code": "cedar-type",
                "message": rows[0]["message"],
                "path": "/rules/0/when",
            }])
        );
        let output = pactum(
            dir.path(),
            &["pact", "check", "--format", "json", "ok.yaml"],
        );
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(stdout(&output).trim(), "[]");
    }

    #[test]
    fn check_names_unreadable_files_and_exits_2() {
        let dir = temp_with(&[("ok.yaml", EXAMPLE)]);
        std::fs::create_dir(dir.path().join("a-directory")).expect("mkdir");
        let output = pactum(dir.path(), &["pact", "check", "missing.yaml", "ok.yaml"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("cannot read `missing.yaml`"));
        assert!(stderr(&output)
            .ends_with("1 file checked: 0 errors, 0 warnings; 1 file could not be read\n"));
        let output = pactum(dir.path(), &["pact", "check", "a-directory"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("`a-directory`"));
        // No file at all is a usage error.
        let output = pactum(dir.path(), &["pact", "check"]);
        assert_eq!(output.status.code(), Some(2));
    }

    #[test]
    fn check_refuses_oversized_files_without_reading_them() {
        let dir = temp_with(&[]);
        let path = dir.path().join("huge.yaml");
        // A sparse file: its size is over the limit, but nothing is written.
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(10 * 1024 * 1024 * 1024).expect("set_len");
        let output = pactum(dir.path(), &["pact", "check", "huge.yaml"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stdout(&output)
                .starts_with("huge.yaml:1:1: error[too-large]: the file is 10737418240 bytes"),
            "{}",
            stdout(&output)
        );
    }

    #[test]
    fn check_reports_bad_encoding_and_yaml() {
        let dir = temp_with(&[("bad.yaml", "pact: [\n")]);
        std::fs::write(dir.path().join("latin1.yaml"), b"pact: caf\xe9\n").expect("write");
        let output = pactum(dir.path(), &["pact", "check", "bad.yaml", "latin1.yaml"]);
        assert_eq!(output.status.code(), Some(1));
        let text = stdout(&output);
        assert!(text.contains("bad.yaml:2:1: error[yaml]: "), "{text}");
        assert!(
            text.contains("latin1.yaml:1:10: error[encoding]: "),
            "{text}"
        );
    }

    #[test]
    fn fmt_check_write_and_stdout() {
        let dir = temp_with(&[("pact.yaml", EXAMPLE), ("pact.json", "{\"pact\":\"j\",\"version\":1,\"agent\":\"a/b\",\"tier\":\"low\",\"actions\":{\"x\":{}}}")]);
        let output = pactum(
            dir.path(),
            &["pact", "fmt", "--check", "pact.yaml", "pact.json"],
        );
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(stdout(&output), "pact.yaml\npact.json\n");
        let printed = pactum(dir.path(), &["pact", "fmt", "pact.yaml"]);
        assert_eq!(printed.status.code(), Some(0));
        // Printing changes nothing on disk.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("pact.yaml")).expect("read"),
            EXAMPLE
        );
        let output = pactum(
            dir.path(),
            &[
                "pact",
                "fmt",
                "--write",
                "--drop-comments",
                "pact.yaml",
                "pact.json",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let written = std::fs::read_to_string(dir.path().join("pact.yaml")).expect("read");
        assert_eq!(written, stdout(&printed));
        assert!(written.starts_with("# A customer-support agent"));
        let json = std::fs::read_to_string(dir.path().join("pact.json")).expect("read");
        assert!(json.starts_with("{\n  \"pact\": \"j\""), "{json}");
        let output = pactum(
            dir.path(),
            &["pact", "fmt", "--check", "pact.yaml", "pact.json"],
        );
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(stdout(&output), "");
        let output = pactum(dir.path(), &["pact", "check", "pact.yaml", "pact.json"]);
        assert_eq!(output.status.code(), Some(0));
    }

    #[test]
    fn fmt_refuses_malformed_files_and_warns_about_comments() {
        let dir = temp_with(&[
            ("bad.yaml", "pact: x\nversion: one\n"),
            ("commented.yaml", "# header\npact: c\n# inner\nversion: 1\nagent: a/b\ntier: low\nactions: { x: {} }\n"),
        ]);
        let output = pactum(dir.path(), &["pact", "fmt", "--write", "bad.yaml"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("bad.yaml:2:10: error[shape]"),
            "{}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("bad.yaml")).expect("read"),
            "pact: x\nversion: one\n"
        );
        let output = pactum(dir.path(), &["pact", "fmt", "commented.yaml"]);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).starts_with("# header\npact: c\nversion: 1\n"));
        assert!(stderr(&output).contains(
            "commented.yaml: warning: 1 comment line after the leading comment block is dropped"
        ));
        // Rewriting in place would lose the comment: refused unless asked for.
        let before = std::fs::read_to_string(dir.path().join("commented.yaml")).expect("read");
        let output = pactum(dir.path(), &["pact", "fmt", "--write", "commented.yaml"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output)
            .contains("1 comment line after the leading comment block would be lost"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("commented.yaml")).expect("read"),
            before
        );
        let output = pactum(
            dir.path(),
            &[
                "pact",
                "fmt",
                "--write",
                "--drop-comments",
                "commented.yaml",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let after = std::fs::read_to_string(dir.path().join("commented.yaml")).expect("read");
        assert!(
            after.starts_with("# header\n") && !after.contains("# inner"),
            "{after}"
        );
    }

    #[test]
    fn a_closed_pipe_ends_quietly() {
        use std::io::Read as _;
        use std::process::Stdio;
        let dir = temp_with(&[]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_pactum"))
            .args(["pact", "schema"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pactum runs");
        // Close the reading end at once, as `| head -c0` would.
        drop(child.stdout.take());
        let status = child.wait().expect("exits");
        let mut stderr_text = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr_text)
            .expect("readable");
        assert!(!stderr_text.contains("panicked"), "{stderr_text}");
        assert!(
            status.code() == Some(0) || status.code() == Some(141),
            "{status:?}"
        );
    }

    #[test]
    fn schema_is_json_for_the_pact_format() {
        let dir = temp_with(&[]);
        let output = pactum(dir.path(), &["pact", "schema"]);
        assert_eq!(output.status.code(), Some(0));
        let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(schema["title"], "PactDoc");
        assert!(schema["properties"]["actions"]["description"].is_string());
        assert!(schema["required"]
            .as_array()
            .is_some_and(|required| required.len() == 5));
    }

    #[test]
    fn import_mcp_writes_a_pact_that_checks() {
        let source = repo_root().join("testdata/mcp-schema/handmade/tools-list-2025-06-18.json");
        let dir = temp_with(&[]);
        std::fs::copy(&source, dir.path().join("tools.json")).expect("copy");
        let output = pactum(
            dir.path(),
            &[
                "pact",
                "import-mcp",
                "tools.json",
                "--pact-id",
                "orders",
                "--agent",
                "acme/orders",
                "--tier",
                "high",
                "-o",
                "orders.yaml",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stderr(&output)
            .contains("tools.json: warning: tool `refund_order`, argument `line_items`"));
        assert!(stderr(&output).ends_with("3 actions imported from `tools.json`, 4 notes\n"));
        let pact = std::fs::read_to_string(dir.path().join("orders.yaml")).expect("written");
        assert!(
            pact.contains("pact: orders\n")
                && pact.contains("agent: acme/orders\n")
                && pact.contains("tier: high\n")
        );
        assert!(pact.contains("  refund_order:\n"));
        let output = pactum(dir.path(), &["pact", "check", "orders.yaml"]);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        let output = pactum(dir.path(), &["pact", "fmt", "--check", "orders.yaml"]);
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        // To stdout, with defaults from the file name.
        let output = pactum(dir.path(), &["pact", "import-mcp", "tools.json"]);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout(&output).contains("pact: tools\n"));
    }

    #[test]
    fn import_mcp_reports_bad_input() {
        let dir = temp_with(&[
            ("broken.json", "{\"tools\": [\n"),
            ("error.json", "{\"jsonrpc\": \"2.0\", \"id\": 1, \"error\": {\"code\": -32601, \"message\": \"Method not found\"}}"),
        ]);
        let output = pactum(dir.path(), &["pact", "import-mcp", "broken.json"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).starts_with("broken.json:2:0: error[json]: ")
                || stderr(&output).starts_with("broken.json:2:1: error[json]: "),
            "{}",
            stderr(&output)
        );
        let output = pactum(dir.path(), &["pact", "import-mcp", "error.json"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("the JSON-RPC response is an error: Method not found"));
        let output = pactum(dir.path(), &["pact", "import-mcp", "absent.json"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("cannot read `absent.json`"));
    }
}

mod guard_cli {
    use super::*;

    fn example(path: &str) -> String {
        repo_root()
            .join("examples")
            .join(path)
            .display()
            .to_string()
    }

    #[test]
    fn every_example_passes_its_cases() {
        let mut n_examples = 0;
        for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
            let dir = entry.unwrap().path();
            let (pact, cases) = (dir.join("pact.yaml"), dir.join("cases.yaml"));
            if !pact.exists() || !cases.exists() {
                continue;
            }
            n_examples += 1;
            let output = pactum(&dir, &["pact", "test", "-q", "pact.yaml", "cases.yaml"]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}: {}{}",
                dir.display(),
                stdout(&output),
                stderr(&output)
            );
            let summary = stdout(&output);
            assert!(
                summary.trim_end().ends_with(" passed, 0 failed"),
                "{summary}"
            );
        }
        assert!(n_examples >= 4, "only {n_examples} examples with cases");
    }

    #[test]
    fn tau2_replays_every_allowed_action() {
        let output = pactum(
            &repo_root(),
            &[
                "pact",
                "test",
                "-q",
                &example("tau2-retail/pact.yaml"),
                &example("tau2-retail/cases.yaml"),
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        // 550 replayed task actions plus setup and policy cases; none may fail.
        let summary = stdout(&output);
        let passed: usize = summary
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(passed >= 550, "{summary}");
    }

    #[test]
    fn a_failing_case_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cases.yaml"),
            "cases:\n  - { name: refunds allowed?, request: { action: issue_refund, args: { order_id: o, amount_cents: 1 } }, expect: allow }\n  - { name: refunds denied, request: { action: issue_refund, args: { order_id: o, amount_cents: 1 } }, expect: deny, rules: [no-refunds] }\n",
        )
        .unwrap();
        let output = pactum(
            dir.path(),
            &[
                "pact",
                "test",
                &example("support-agent/pact.yaml"),
                "cases.yaml",
            ],
        );
        assert_eq!(output.status.code(), Some(1));
        let text = stdout(&output);
        assert!(
            text.contains("FAIL refunds allowed?: expected allow, got deny [no-refunds]"),
            "{text}"
        );
        assert!(
            text.contains("ok   refunds denied: deny [no-refunds]"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");
    }

    #[test]
    fn malformed_case_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("cases: [ { name: x, request: { action: answer_product_question, args: { question: q } }, expect: maybe } ]", "`expect` is `maybe`"),
            ("cases: [ { name: x, request: { action: 5 }, expect: deny } ]", "malformed request at `action`"),
            ("cases: [ { name: x, expect: deny, colour: red } ]", "unknown field `colour`"),
            ("not_cases: []", "has no `cases` list"),
            ("cases: [ {", "cases.yaml:"),
        ] {
            std::fs::write(dir.path().join("cases.yaml"), text).unwrap();
            let output = pactum(dir.path(), &["pact", "test", &example("support-agent/pact.yaml"), "cases.yaml"]);
            assert_ne!(output.status.code(), Some(0), "{text}");
            let all = format!("{}{}", stdout(&output), stderr(&output));
            assert!(all.contains(expected), "{text}: {all}");
        }
    }

    #[test]
    fn decide_prints_the_verdict_with_a_top_level_decision() {
        let output = pactum(
            &repo_root(),
            &[
                "decide",
                "--pact",
                &example("support-agent/pact.yaml"),
                "--request",
                &example("support-agent/requests/refund.json"),
                "--at",
                "2026-01-01T00:00:00Z",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let verdict: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(verdict["decision"], "deny");
        assert_eq!(verdict["rules"], serde_json::json!(["no-refunds"]));
        assert_eq!(verdict["at"], "2026-01-01T00:00:00.000Z");
        assert!(verdict["pact"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    #[test]
    fn decide_reads_standard_input_and_rejects_bad_requests() {
        let run = |input: &str| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_pactum"))
                .args([
                    "decide",
                    "--pact",
                    &example("support-agent/pact.yaml"),
                    "--request",
                    "-",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        let ok = run(
            r#"{"action": "answer_product_question", "args": {"question": "open on Sunday?"}}"#,
        );
        assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
        assert!(stdout(&ok).contains(r#""decision": "allow""#));
        for (input, expected) in [
            ("{", "not valid JSON"),
            (
                r#"{"action": "x", "surprise": 1}"#,
                "unknown field `surprise`",
            ),
            (
                r#"{"action": "x", "content": [{"source": "mars", "text": "hi"}]}"#,
                "content[0].source is `mars`",
            ),
        ] {
            let output = run(input);
            assert_eq!(output.status.code(), Some(2), "{input}");
            assert!(
                stderr(&output).starts_with("error: "),
                "{input}: {}",
                stderr(&output)
            );
            assert!(
                stderr(&output).contains(expected),
                "{input}: {}",
                stderr(&output)
            );
        }
    }

    #[test]
    fn decide_refuses_a_pact_that_does_not_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pact.yaml"),
            "pact: x\nversion: 1\nagent: a\ntier: low\nactions: {}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("req.json"), r#"{"action": "x"}"#).unwrap();
        let output = pactum(
            dir.path(),
            &["decide", "--pact", "pact.yaml", "--request", "req.json"],
        );
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("pact.yaml:5:10: error[empty]"),
            "{}",
            stderr(&output)
        );
    }

    #[test]
    fn bench_guard_reports_json_fields() {
        let output = pactum(
            &repo_root(),
            &["bench", "guard", "--decisions", "2000", "--json"],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        for field in ["p50_us", "p99_us", "decisions_per_s"] {
            assert!(report[field].as_f64().unwrap() > 0.0, "{field}");
        }
        assert_eq!(report["rules"], 100);
        assert_eq!(report["canaries"], 1000);
    }
}

/// The ledger commands, offline bundle verification, bad input, and a crash test that SIGKILLs
/// a writer under load.
mod ledger_cli {

    use ledger::record::Record;
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    fn pactum() -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pactum"));
        command.env_remove("PACTUM_DATA").env("RUST_BACKTRACE", "0");
        command
    }

    fn run(args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = pactum()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(args: &[&str], stdin: Option<&str>) -> String {
        let output = run(args, stdin);
        assert!(
            output.status.success(),
            "pactum {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn fails(args: &[&str], stdin: Option<&str>) -> String {
        let output = run(args, stdin);
        assert!(!output.status.success(), "pactum {args:?} should fail");
        String::from_utf8(output.stderr).unwrap()
    }

    fn data_arg(dir: &Path) -> String {
        dir.join("pactum-data").to_string_lossy().into_owned()
    }

    const JSONL: &str = r#"{"kind":"pact","agent":"support-bot","ts":1700000000000,"version":1}
{"kind":"verdict","agent":"support-bot","ts":1700000000001,"decision":"allow","action":"refund","refs":[{"rel":"pact","index":0}]}
{"ts":1700000000002,"agent":"support-bot","kind":"outcome","status":"executed","refs":[{"rel":"verdict","index":1}]}
{"kind":"verdict","agent":"other-bot","ts":1700000000003,"decision":"deny"}
"#;

    #[test]
    fn ledger_commands_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_arg(dir.path());
        let data = data.as_str();
        assert_eq!(
            ok(&["ledger", "append", "--data", data], Some(JSONL)),
            "0\n1\n2\n3\n"
        );
        let file = dir.path().join("more.jsonl");
        std::fs::write(&file, "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":5}\n").unwrap();
        assert_eq!(
            ok(
                &["ledger", "append", "--data", data, file.to_str().unwrap()],
                None
            ),
            "4\n"
        );

        // `get` prints the exact canonical bytes.
        let got = ok(&["ledger", "get", "--data", data, "--index", "2"], None);
        assert_eq!(
            got,
            r#"{"agent":"support-bot","kind":"outcome","refs":[{"index":1,"rel":"verdict"}],"status":"executed","ts":1700000000002}"#
        );

        // The tlog-proof verifies with the printed key and the record bytes.
        let key_text = ok(&["ledger", "key", "--data", data], None);
        let key = ledger::note::VerifierKey::parse(key_text.trim()).unwrap();
        let proof_text = ok(&["ledger", "proof", "--data", data, "--index", "2"], None);
        let proof = ledger::tlog_proof::TlogProof::parse(&proof_text).unwrap();
        let checkpoint = proof.verify(got.as_bytes(), &key).unwrap();
        assert_eq!(checkpoint.size, 5);
        let checkpoint_text = ok(&["ledger", "checkpoint", "--data", data], None);
        assert_eq!(
            ledger::checkpoint::Checkpoint::open(&checkpoint_text, &key).unwrap(),
            checkpoint
        );
        assert!(ok(&["ledger", "verify", "--data", data], None).starts_with("ok: 5 records"));
        let err = fails(&["ledger", "get", "--data", data, "--index", "5"], None);
        assert!(err.contains("no record at index 5"), "{err}");

        // The private key never appears in any output.
        let private = std::fs::read_to_string(dir.path().join("pactum-data/ledger.key")).unwrap();
        let secret = private.trim().rsplit('+').next().unwrap().to_owned();
        for output in [&key_text, &proof_text, &checkpoint_text] {
            assert!(!output.contains(&secret));
        }
    }

    #[test]
    fn bad_input_appends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_arg(dir.path());
        let data = data.as_str();
        ok(&["ledger", "append", "--data", data], Some(JSONL));
        let cases = [
        (
            "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1}\n{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1\n",
            "line 2",
        ),
        ("{\"kind\":\"note\",\"agent\":\"a\"}\n", "missing member `ts`"),
        ("[1,2]\n", "must be a json object"),
        (
            "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1,\"a\":1,\"a\":2}\n",
            "duplicate member name `a`",
        ),
        (
            "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1,\"refs\":[{\"index\":99}]}\n",
            "index 99",
        ),
    ];
        for (input, want) in cases {
            let err = fails(&["ledger", "append", "--data", data], Some(input));
            assert!(err.contains(want), "{input:?}: {err}");
        }
        let oversize = format!(
        "{{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1}}\n{{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1,\"text\":\"{}\"}}\n",
        "x".repeat(70_000)
    );
        let err = fails(&["ledger", "append", "--data", data], Some(&oversize));
        assert!(
            err.contains("line 2") && err.contains("over the limit of 65536 bytes"),
            "{err}"
        );
        // Still four records: nothing partial was appended.
        assert!(ok(&["ledger", "verify", "--data", data], None).starts_with("ok: 4 records"));
        let err = fails(&["ledger", "get", "--data", data, "--index", "4"], None);
        assert!(err.contains("no record at index 4"), "{err}");
    }

    #[test]
    fn bundle_verifies_offline_and_detects_changes() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_arg(dir.path());
        let data = data.as_str();
        ok(&["ledger", "append", "--data", data], Some(JSONL));
        let key_text = ok(&["ledger", "key", "--data", data], None);

        // The verifier's machine: a directory with only the bundle and the key, no data dir.
        let offline = tempfile::tempdir().unwrap();
        let bundle = offline.path().join("support-bot.bundle.json");
        let key = offline.path().join("ledger.pub");
        std::fs::write(&key, &key_text).unwrap();
        ok(
            &[
                "ledger",
                "export",
                "--data",
                data,
                "--agent",
                "support-bot",
                "-o",
                bundle.to_str().unwrap(),
            ],
            None,
        );
        let out = pactum()
            .current_dir(offline.path())
            .args([
                "verify",
                bundle.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("3 selected and 0 referenced"));
        assert!(!offline.path().join("pactum-data").exists());

        let range = offline.path().join("range.json");
        ok(
            &[
                "ledger",
                "export",
                "--data",
                data,
                "--from",
                "1",
                "--to",
                "2",
                "-o",
                range.to_str().unwrap(),
            ],
            None,
        );
        let verified = ok(
            &[
                "verify",
                range.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            verified.contains("2 selected and 1 referenced"),
            "{verified}"
        );

        // Change single bytes at spread-out positions: each one is refused.
        let original = std::fs::read(&bundle).unwrap();
        let tampered = offline.path().join("tampered.json");
        for position in (0..original.len()).step_by(original.len() / 12 + 1) {
            let mut changed = original.clone();
            changed[position] ^= 0x02;
            std::fs::write(&tampered, &changed).unwrap();
            fails(
                &[
                    "verify",
                    tampered.to_str().unwrap(),
                    "--key",
                    key.to_str().unwrap(),
                ],
                None,
            );
        }

        // A bundle checked against another log's key is refused with a clear message.
        let other = tempfile::tempdir().unwrap();
        let other_key = offline.path().join("other.pub");
        std::fs::write(
            &other_key,
            ok(&["ledger", "key", "--data", &data_arg(other.path())], None),
        )
        .unwrap();
        let err = fails(
            &[
                "verify",
                bundle.to_str().unwrap(),
                "--key",
                other_key.to_str().unwrap(),
            ],
            None,
        );
        assert!(err.contains("not the trusted key"), "{err}");
    }

    #[test]
    fn ledger_verify_fails_on_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let data = data_arg(dir.path());
        let data = data.as_str();
        for line in JSONL.lines() {
            ok(&["ledger", "append", "--data", data], Some(line));
        }
        let db = dir.path().join("pactum-data/ledger.sqlite");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
        "UPDATE records SET data = CAST(replace(CAST(data AS TEXT), 'deny', 'allw') AS BLOB) WHERE idx = 3",
        [],
    )
    .unwrap();
        drop(conn);
        let err = fails(&["ledger", "verify", "--data", data], None);
        assert!(err.contains("verification failed at record 3"), "{err}");
    }

    /// The record the hidden `ledger load` command writes for `(writer, seq)`.
    fn load_record(writer: usize, seq: u64) -> Vec<u8> {
        let head = format!(r#"{{"agent":"writer-{writer}","kind":"note","pad":""#);
        let tail = format!(r#"","seq":{seq},"ts":{seq}}}"#);
        let pad = "x".repeat(200usize.saturating_sub(head.len() + tail.len()));
        Record::from_json_text(&format!("{head}{pad}{tail}"))
            .unwrap()
            .into_bytes()
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// One round: start a loaded writer, SIGKILL it `run_ms` after its first acknowledgement,
    /// return what it acknowledged.
    fn crash_round(data: &Path, run_ms: u64) -> Vec<(u64, usize, u64)> {
        let mut child = pactum()
            .args(["ledger", "load", "--writers", "8", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack, first_ack_seen) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                // A line cut by the kill has no newline: it was not fully reported, skip it.
                if line.ends_with('\n') {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    if let ["acked", index, writer, seq] = parts.as_slice() {
                        acked.push((
                            index.parse().unwrap(),
                            writer.parse().unwrap(),
                            seq.parse().unwrap(),
                        ));
                        if acked.len() == 1 {
                            let _ = first_ack.send(());
                        }
                    }
                }
                line.clear();
            }
            acked
        });
        // Kill under load: only once appends are flowing.
        let _ = first_ack_seen.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(run_ms));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        reader.join().unwrap()
    }

    /// SIGKILLs a loaded writer at random moments; after every restart each acknowledged record
    /// is present with its bytes, the log verifies and appends continue. Debug-build Ed25519 is
    /// slow, so rounds re-check only the signatures of checkpoints added since the previous round
    /// (every record is still rehashed and every root compared) and the last check is a full
    /// verify; `cargo xtask crash-test` runs longer, fully verified rounds on a release build.
    #[test]
    fn crash_test_sigkill_under_load_loses_no_acknowledged_record() {
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("pactum-data");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        let mut rng = Rng(seed);
        let started = Instant::now();
        let mut verified_size = 0u64;
        let n_rounds = 20;
        let mut total_acked = 0usize;
        for round in 0..n_rounds {
            let run_ms = 20 + rng.next() % 120;
            let acked = crash_round(&data, run_ms);
            assert!(
                !acked.is_empty(),
                "seed {seed} round {round}: no appends before the kill"
            );
            total_acked += acked.len();
            // Restart: every acknowledged record is there with the bytes that were sent.
            let log = store::Log::open(&data)
                .unwrap_or_else(|err| panic!("seed {seed} round {round}: {err}"));
            let report = log.verify_since(verified_size).unwrap();
            assert!(report.is_ok(), "seed {seed} round {round}: {report:?}");
            let size = log.size().unwrap();
            assert_eq!(report.n_records, size);
            for (index, writer, seq) in &acked {
                assert!(
                    *index < size,
                    "seed {seed} round {round}: acked {index} lost (size {size})"
                );
                assert_eq!(
                    log.get(*index).unwrap(),
                    load_record(*writer, *seq),
                    "seed {seed} round {round}: record {index}"
                );
            }
            // Appends continued after the previous crash.
            assert!(
                size > verified_size,
                "seed {seed} round {round}: no progress"
            );
            verified_size = size;
        }
        assert!(
            total_acked >= n_rounds,
            "the writer made progress ({total_acked} acks)"
        );
        let log = store::Log::open(&data).unwrap();
        let record = Record::from_json_text(r#"{"kind":"note","agent":"a","ts":1}"#).unwrap();
        assert_eq!(log.append(vec![record]).unwrap(), vec![verified_size]);
        let report = log.verify().unwrap();
        assert!(report.is_ok(), "seed {seed}: {report:?}");
        assert_eq!(report.n_records, verified_size + 1);
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "crash test took {:?}",
            started.elapsed()
        );
    }
}

mod serve_cli {
    use super::*;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::TcpStream;
    use std::process::{Child, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A running `pactum serve` on a free loopback port.
    pub struct Server {
        pub child: Child,
        pub base: String,
        pub admin_token: String,
        pub stderr_lines: mpsc::Receiver<String>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pactum"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pactum serve starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (sender, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut base = String::new();
        while base.is_empty() {
            let line = stderr_lines
                .recv_timeout(Duration::from_secs(30))
                .expect("serve prints its address");
            if let Some(rest) = line.strip_prefix("pactum serve: listening on ") {
                base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        let admin_token = std::fs::read_to_string(data.join("admin.token"))
            .expect("admin.token exists")
            .trim()
            .to_string();
        Server {
            child,
            base,
            admin_token,
            stderr_lines,
        }
    }

    /// One HTTP/1.1 request with `Connection: close`; returns status and body.
    pub fn http(
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let address = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("server accepts");
        let auth = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("request written");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn terminate(server: &mut Server) -> std::process::ExitStatus {
        let pid = server.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        server.child.wait().expect("serve exits")
    }

    #[test]
    fn serve_demo_answers_and_stops_cleanly_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pactum-data");
        let mut server = start(&data, &["--demo"]);
        let (status, oracle) = http(&server.base, "GET", "/v1/oracle/acme/support-bot", None, "");
        assert_eq!(status, 200, "{oracle}");
        assert!(oracle.contains("\"status\":\"active\""), "{oracle}");
        let refund = r#"{"agent": "acme/support-bot", "action": "issue_refund", "args": {"order_id": "A-1", "amount_cents": 1200}}"#;
        let (status, verdict) = http(
            &server.base,
            "POST",
            "/v1/decide",
            Some(&server.admin_token),
            refund,
        );
        assert_eq!(status, 200, "{verdict}");
        assert!(verdict.contains("\"decision\":\"deny\""), "{verdict}");
        let status = terminate(&mut server);
        assert!(status.success(), "{status:?}");
        let lines: Vec<String> = server.stderr_lines.try_iter().collect();
        assert!(
            lines.iter().any(|line| line.contains("stopped")),
            "{lines:?}"
        );
        // A second start keeps the token, the agent and the log.
        let log = store::Log::open(&data).unwrap();
        assert!(log.size().unwrap() >= 4);
    }

    #[test]
    fn token_commands_work_offline_on_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        let data_arg = data.to_str().unwrap();
        let refused = pactum(dir.path(), &["token", "list", "--data", data_arg]);
        assert_eq!(refused.status.code(), Some(2));
        assert!(stderr(&refused).contains("run `pactum serve"));
        let mut server = start(&data, &[]);
        terminate(&mut server);
        let created = pactum(
            dir.path(),
            &[
                "token", "create", "--data", data_arg, "--role", "auditor", "--name", "ci",
            ],
        );
        assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
        let secret = stdout(&created).trim().to_string();
        assert!(secret.starts_with("pct_"));
        let bad = pactum(
            dir.path(),
            &[
                "token", "create", "--data", data_arg, "--role", "agent", "--name", "x",
            ],
        );
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains("needs the `agent`"));
        let listed = stdout(&pactum(dir.path(), &["token", "list", "--data", data_arg]));
        assert!(!listed.contains(&secret));
        let id = listed
            .lines()
            .find(|line| line.contains(" ci"))
            .and_then(|line| line.split_whitespace().next())
            .expect("the new token is listed")
            .to_string();
        let revoked = pactum(dir.path(), &["token", "revoke", "--data", data_arg, &id]);
        assert_eq!(revoked.status.code(), Some(0));
        let listed = stdout(&pactum(dir.path(), &["token", "list", "--data", data_arg]));
        assert!(listed
            .lines()
            .any(|line| line.starts_with(&id) && line.contains("revoked")));
        let mut server = start(&data, &[]);
        let (status, _) = http(&server.base, "GET", "/v1/log/checkpoint", Some(&secret), "");
        assert_eq!(status, 401, "a revoked token is refused");
        terminate(&mut server);
    }
}

mod tour {
    use super::serve_cli::{http, start, terminate};
    use super::*;
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    fn client(dir: &Path, base: &str, token: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pactum"))
            .args(args)
            .env("PACTUM_SERVER", base)
            .env("PACTUM_TOKEN", token)
            .current_dir(dir)
            .output()
            .expect("pactum runs")
    }

    fn ok(dir: &Path, base: &str, token: &str, args: &[&str]) -> String {
        let output = client(dir, base, token, args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    /// The README tour, end to end over a real socket with the CLI as the client.
    #[test]
    fn the_readme_tour_works_over_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut server = start(&d.join("pactum-data"), &[]);
        let (base, admin) = (server.base.clone(), server.admin_token.clone());
        let registered = ok(
            d,
            &base,
            &admin,
            &["agent", "register", "acme/orders-bot", "--tier", "high"],
        );
        assert!(
            registered.contains("acme/orders-bot  inactive  tier high  no pact"),
            "{registered}"
        );
        let pact = std::fs::read_to_string(repo_root().join("examples/support-agent/pact.yaml"))
            .unwrap()
            .replace("acme/support-bot", "acme/orders-bot");
        std::fs::write(d.join("pact.yaml"), &pact).unwrap();
        let broken = pact.replace("amount_cents <= 5000", "amout_cents <= 5000");
        std::fs::write(d.join("broken.yaml"), broken).unwrap();
        let refused = client(d, &base, &admin, &["pact", "push", "broken.yaml"]);
        assert_eq!(refused.status.code(), Some(2));
        assert!(
            stderr(&refused).contains("pact-invalid") && stderr(&refused).contains("cedar-type"),
            "{}",
            stderr(&refused)
        );
        let pushed = ok(d, &base, &admin, &["pact", "push", "pact.yaml"]);
        assert!(pushed.contains("pact v3 sha256:"), "{pushed}");
        ok(
            d,
            &base,
            &admin,
            &["pact", "activate", "--agent", "acme/orders-bot", "3"],
        );

        let mut events = Command::new(env!("CARGO_BIN_EXE_pactum"))
            .args([
                "events",
                "--agent",
                "acme/orders-bot",
                "--kind",
                "verdict,halt",
                "--count",
                "2",
            ])
            .env("PACTUM_SERVER", &base)
            .env("PACTUM_TOKEN", &admin)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1000));

        std::fs::write(
            d.join("return.json"),
            r#"{"agent": "acme/orders-bot", "action": "initiate_return_request", "args": {"order_id": "A-7", "amount_cents": 1200}}"#,
        )
        .unwrap();
        let verdict: serde_json::Value = serde_json::from_str(&ok(
            d,
            &base,
            &admin,
            &["decide", "--server", &base, "--request", "return.json"],
        ))
        .unwrap();
        assert_eq!(verdict["decision"], "allow");
        assert!(verdict["record"].as_u64().is_some());
        let halted = ok(
            d,
            &base,
            &admin,
            &["halt", "acme/orders-bot", "--reason", "drill"],
        );
        assert!(halted.contains("acme/orders-bot: halted"), "{halted}");
        let after: serde_json::Value = serde_json::from_str(&ok(
            d,
            &base,
            &admin,
            &["decide", "--server", &base, "--request", "return.json"],
        ))
        .unwrap();
        assert_eq!(after["decision"], "halted");

        let lines: Vec<String> = BufReader::new(events.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .collect();
        assert!(events.wait().unwrap().success());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("verdict ") && lines[0].ends_with("allow"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("halt ") && lines[1].ends_with("drill"),
            "{lines:?}"
        );

        let oracle = ok(d, &base, "", &["oracle", "acme/orders-bot"]);
        assert!(
            oracle.starts_with("acme/orders-bot: halted; decisions 2, denials 1"),
            "{oracle}"
        );
        ok(
            d,
            &base,
            &admin,
            &[
                "bundle",
                "--agent",
                "acme/orders-bot",
                "-o",
                "bundle.json",
                "--key-out",
                "log.key",
            ],
        );
        let verified = pactum(d, &["verify", "bundle.json", "--key", "log.key"]);
        assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
        assert!(
            stdout(&verified).starts_with("ok: 6 selected"),
            "{}",
            stdout(&verified)
        );
        let (status, _) = http(&base, "GET", "/readyz", None, "");
        assert_eq!(status, 200);
        assert!(terminate(&mut server).success());
    }

    /// SIGTERM while clients are deciding: every acknowledged verdict is in the log afterwards.
    #[test]
    fn sigterm_under_load_loses_no_acknowledged_decision() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pactum-data");
        let mut server = start(&data, &["--demo"]);
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for thread_idx in 0..4 {
            let base = server.base.clone();
            let token = server.admin_token.clone();
            let acked = acked.clone();
            threads.push(std::thread::spawn(move || {
                for seq in 0.. {
                    let session = format!("t{thread_idx}-{seq}");
                    let body = format!(r#"{{"agent": "acme/support-bot", "action": "answer_product_question", "args": {{"question": "q"}}, "session": "{session}"}}"#);
                    let address = base.trim_start_matches("http://").to_string();
                    if std::net::TcpStream::connect(&address).is_err() {
                        break;
                    }
                    let result = std::panic::catch_unwind(|| http(&base, "POST", "/v1/decide", Some(&token), &body));
                    match result {
                        Ok((200, text)) => {
                            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                            acked.lock().unwrap().push((value["record"].as_u64().unwrap(), session));
                        }
                        _ => break,
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(700));
        assert!(terminate(&mut server).success());
        for thread in threads {
            thread.join().unwrap();
        }
        let acked = acked.lock().unwrap();
        assert!(acked.len() > 10, "load ran: {} acks", acked.len());
        let log = store::Log::open(&data).unwrap();
        for (index, session) in acked.iter() {
            let record: serde_json::Value =
                serde_json::from_slice(&log.get(*index).unwrap()).unwrap();
            assert_eq!(record["kind"], "verdict");
            assert_eq!(
                record["request"]["session"],
                session.as_str(),
                "record {index}"
            );
        }
        assert!(log.verify().unwrap().is_ok());
    }
}

mod bench_http_cli {
    use super::*;

    #[test]
    fn bench_http_reports_its_json_fields_and_no_halt_violations() {
        let dir = tempfile::tempdir().unwrap();
        let output = pactum(
            dir.path(),
            &[
                "bench",
                "http",
                "--secs",
                "1",
                "--connections",
                "4",
                "--json",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert!(report["decisions_per_s"].as_f64().unwrap() > 0.0);
        assert!(report["p50_ms"].as_f64().unwrap() <= report["p99_ms"].as_f64().unwrap());
        assert_eq!(report["halt_violations"], 0);
        assert!(report["decisions_after_halt"].as_u64().unwrap() > 0);
        assert_eq!(report["every_decision_logged"], true);
        assert_eq!(report["errors"], 0);
    }
}

mod config_cli {
    use super::*;

    #[test]
    fn config_show_layers_file_env_and_flags_and_masks_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pactum.yaml"),
            "listen: 127.0.0.1:9000\ndata: ./from-file\ntoken: pct_0123456789abcdef\nlimits: { token_requests_per_s: 7, body_bytes_max: 1000 }\n",
        )
        .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_pactum"))
            .args([
                "config",
                "show",
                "--config",
                "pactum.yaml",
                "--listen",
                "127.0.0.1:9100",
            ])
            .env("PACTUM_DATA", "./from-env")
            .env("PACTUM_TOKEN_REQUESTS_PER_S", "9")
            .env_remove("PACTUM_TOKEN")
            .env_remove("PACTUM_SERVER")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let text = stdout(&output);
        for line in [
            "listen = 127.0.0.1:9100  (flag)",
            "data = ./from-env  (env)",
            "limits.token_requests_per_s = 9  (env)",
            "limits.body_bytes_max = 1000  (file)",
            "limits.batch_requests_max = 256  (default)",
            "server = http://127.0.0.1:7700  (default)",
            "token = pct_0123… (masked)  (file)",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(!text.contains("pct_0123456789abcdef"));
        std::fs::write(dir.path().join("bad.yaml"), "listen: 1\ncolour: red\n").unwrap();
        let bad = pactum(dir.path(), &["config", "show", "--config", "bad.yaml"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stderr(&bad).contains("bad.yaml"), "{}", stderr(&bad));
    }
}
