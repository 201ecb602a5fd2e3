//! The `pactum` binary run in temporary directories: the ledger commands, offline bundle
//! verification, bad input, and a crash test that SIGKILLs a writer under load.

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

/// Runs a command that must fail with `code` (1: a check failed, 2: bad input or usage).
fn fails_with(code: i32, args: &[&str], stdin: Option<&str>) -> String {
    let output = run(args, stdin);
    assert_eq!(
        output.status.code(),
        Some(code),
        "pactum {args:?}: {output:?}"
    );
    String::from_utf8(output.stderr).unwrap()
}

fn fails(args: &[&str], stdin: Option<&str>) -> String {
    fails_with(2, args, stdin)
}

fn check_fails(args: &[&str]) -> String {
    fails_with(1, args, None)
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
        check_fails(&[
            "verify",
            tampered.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
    }

    // A bundle checked against another log's key is refused with a clear message.
    let other = tempfile::tempdir().unwrap();
    let other_key = offline.path().join("other.pub");
    std::fs::write(
        &other_key,
        ok(&["ledger", "key", "--data", &data_arg(other.path())], None),
    )
    .unwrap();
    let err = check_fails(&[
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        other_key.to_str().unwrap(),
    ]);
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
    let err = check_fails(&["ledger", "verify", "--data", data]);
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
