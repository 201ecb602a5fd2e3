//! End to end: `pactum gateway` in front of real MCP servers (the reference filesystem and
//! everything servers from npm), driven by the official MCP Python SDK. The cases are pytest
//! files in `tests/mcp/`; this test installs what they need from the lockfiles there
//! (`tests/mcp/setup.sh`: `npm ci` and a hash-checked venv) and runs them against the `pactum`
//! binary Cargo just built. It does not skip: without Node.js and Python it fails, naming what
//! to install.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The whole pytest run is bounded; each test in it has its own bound (`--timeout`).
const PYTEST_SECS_MAX: u64 = 900;
const TEST_SECS_MAX: u64 = 180;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cli sits two levels below the repository root")
        .to_path_buf()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Runs `command`, echoing its output line by line as it comes (so a slow case shows where it
/// is) and keeping it for the failure message; kills it after `secs_max`.
fn run_streaming(mut command: Command, secs_max: u64) -> (bool, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let lines_tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(lines_tx);
    let deadline = Instant::now() + Duration::from_secs(secs_max);
    let mut output = String::new();
    let mut timed_out = false;
    loop {
        match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                println!("{line}");
                output.push_str(&line);
                output.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait().expect("waiting for the child");
    for reader in readers {
        let _ = reader.join();
    }
    if timed_out {
        output.push_str(&format!("\n(killed after {secs_max} s)\n"));
    }
    (status.success() && !timed_out, output)
}

#[test]
fn the_gateway_passes_the_mcp_end_to_end_suite() {
    let root = repo_root();
    let missing: Vec<&str> = ["node", "npm", "python3"]
        .into_iter()
        .filter(|tool| !have(tool))
        .collect();
    assert!(
        missing.is_empty(),
        "the gateway's MCP tests need Node.js 20+ with npm and Python 3.10+ with venv; missing: {} \
         (Debian: apt-get install nodejs npm python3 python3-venv)",
        missing.join(", ")
    );

    let mut setup = Command::new("bash");
    setup.arg("tests/mcp/setup.sh").current_dir(&root);
    let (ok, output) = run_streaming(setup, 600);
    assert!(ok, "tests/mcp/setup.sh failed:\n{output}");

    let mut pytest = Command::new(root.join("tests/mcp/.venv/bin/python"));
    pytest
        .args([
            "-m",
            "pytest",
            "tests/mcp",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
        ])
        .arg(format!("--timeout={TEST_SECS_MAX}"))
        .current_dir(&root)
        .env("PACTUM_BIN", env!("CARGO_BIN_EXE_pactum"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The SDK and pytest print nothing in colour when read through a pipe.
        .env("NO_COLOR", "1");
    let (ok, output) = run_streaming(pytest, PYTEST_SECS_MAX);
    assert!(ok, "the MCP end-to-end tests failed:\n{output}");
}
