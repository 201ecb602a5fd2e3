//! `cargo xtask crash-test`: the long crash test. Builds the release `pactum`, runs
//! `pactum ledger load` (several writers appending durably, printing `acked <index> ...` after
//! each acknowledgement), SIGKILLs it at random moments, and after every restart checks that
//! every acknowledged record is present with its exact bytes, that `pactum ledger verify`
//! passes in full, and that the log keeps growing.
//!
//! Options: `--rounds N` (default 200), `--writers N` (default 16), `--max-ms N` (longest
//! time a round runs before the kill, default 500), `--seed N`.

use anyhow::{bail, Context as _};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Options {
    rounds: u64,
    writers: u64,
    max_ms: u64,
    seed: u64,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        rounds: 200,
        writers: 16,
        max_ms: 500,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64
            | 1,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value: u64 = iter
            .next()
            .with_context(|| format!("`{flag}` needs a value"))?
            .parse()
            .with_context(|| format!("`{flag}` needs a number"))?;
        match flag.as_str() {
            "--rounds" => options.rounds = value,
            "--writers" => options.writers = value.max(1),
            "--max-ms" => options.max_ms = value.max(10),
            "--seed" => options.seed = value | 1,
            _ => bail!("unknown option `{flag}`; options: --rounds, --writers, --max-ms, --seed"),
        }
    }
    Ok(options)
}

/// The record `pactum ledger load` writes for `(writer, seq)` (see `ledger_cmd::generated_record`).
fn load_record(writer: u64, seq: u64) -> anyhow::Result<Vec<u8>> {
    let head = format!(r#"{{"agent":"writer-{writer}","kind":"note","pad":""#);
    let tail = format!(r#"","seq":{seq},"ts":{seq}}}"#);
    let pad = "x".repeat(200usize.saturating_sub(head.len() + tail.len()));
    Ok(ledger::record::Record::from_json_text(&format!("{head}{pad}{tail}"))?.into_bytes())
}

fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn round(
    pactum: &Path,
    data: &Path,
    writers: u64,
    run_ms: u64,
) -> anyhow::Result<Vec<(u64, u64, u64)>> {
    let mut child = Command::new(pactum)
        .args([
            "ledger",
            "load",
            "--writers",
            &writers.to_string(),
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting `pactum ledger load`")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (first_ack, first_ack_seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') {
                let fields: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                if let (true, [index, writer, seq]) =
                    (line.starts_with("acked "), fields.as_slice())
                {
                    acked.push((*index, *writer, *seq));
                    if acked.len() == 1 {
                        let _ = first_ack.send(());
                    }
                }
            }
            line.clear();
        }
        acked
    });
    let _ = first_ack_seen.recv_timeout(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(run_ms));
    child.kill().context("SIGKILL")?;
    child.wait()?;
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "cli"])
        .status()?;
    if !status.success() {
        bail!("building the release binary failed");
    }
    let pactum = root.join("target/release/pactum");
    let temp = std::env::temp_dir().join(format!("pactum-crash-test-{}", std::process::id()));
    let data = temp.join("pactum-data");
    println!(
        "crash test: {} rounds, {} writers, kill within {} ms, seed {}",
        options.rounds, options.writers, options.max_ms, options.seed
    );
    let mut state = options.seed;
    let mut size = 0u64;
    let mut total_acked = 0usize;
    let started = Instant::now();
    for round_idx in 0..options.rounds {
        let run_ms = next_random(&mut state) % options.max_ms;
        let acked = round(&pactum, &data, options.writers, run_ms)?;
        total_acked += acked.len();
        let verify = Command::new(&pactum)
            .args(["ledger", "verify", "--data"])
            .arg(&data)
            .output()?;
        if !verify.status.success() {
            bail!(
                "seed {} round {round_idx}: verify failed: {}",
                options.seed,
                String::from_utf8_lossy(&verify.stderr)
            );
        }
        let log = store::Log::open(&data)?;
        let new_size = log.size()?;
        for (index, writer, seq) in &acked {
            let stored = log.get(*index).with_context(|| {
                format!(
                    "seed {} round {round_idx}: acknowledged record {index} is lost",
                    options.seed
                )
            })?;
            if stored != load_record(*writer, *seq)? {
                bail!(
                    "seed {} round {round_idx}: record {index} has other bytes than acknowledged",
                    options.seed
                );
            }
        }
        if new_size <= size {
            bail!(
                "seed {} round {round_idx}: the log did not grow ({size} -> {new_size})",
                options.seed
            );
        }
        size = new_size;
        if round_idx % 10 == 9 {
            println!(
                "  round {}: {size} records, {total_acked} acknowledged appends checked, {:.0?}",
                round_idx + 1,
                started.elapsed()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&temp);
    println!(
        "ok: {} rounds, {size} records, {total_acked} acknowledged appends all present, {:.0?}",
        options.rounds,
        started.elapsed()
    );
    Ok(())
}
