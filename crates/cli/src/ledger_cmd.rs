//! `pactum ledger ...`, `pactum verify` and `pactum bench ledger`: the evidence log from the
//! command line. Arguments are parsed here and handed to the `store` and `ledger` crates.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use ledger::bundle::{Bundle, Selection};
use ledger::note::VerifierKey;
use ledger::record::Record;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Log, LogConfig};

/// Default data directory, shared with `pactum serve`.
const DATA_DIR_DEFAULT: &str = "./pactum-data";

/// Largest JSONL input `ledger append` reads, in bytes.
const APPEND_INPUT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data directory holding `ledger.sqlite` and `ledger.key` (created if missing).
    #[arg(long, value_name = "DIR", default_value = DATA_DIR_DEFAULT, env = "PACTUM_DATA")]
    data: PathBuf,
}

/// The evidence log: append records, read them, prove them, verify and export them.
#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Append JSONL records (one JSON object per line) and print each record's index.
    ///
    /// Every line is validated first (valid JSON, required members `kind`, `agent`, `ts`,
    /// canonical size at most 65536 bytes, references to earlier records only); if any line
    /// is bad, nothing is appended.
    Append {
        #[command(flatten)]
        data: DataArgs,
        /// JSONL file to read, or `-` for standard input.
        #[arg(value_name = "FILE|-", default_value = "-")]
        input: String,
    },
    /// Print a record's exact canonical bytes (its Merkle leaf data).
    Get {
        #[command(flatten)]
        data: DataArgs,
        /// Record index (0-based).
        #[arg(long)]
        index: u64,
    },
    /// Print a record's C2SP tlog-proof against the latest checkpoint.
    Proof {
        #[command(flatten)]
        data: DataArgs,
        /// Record index (0-based).
        #[arg(long)]
        index: u64,
    },
    /// Print the latest signed checkpoint (C2SP tlog-checkpoint).
    Checkpoint {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the log's verifier key (`name+id+key`); give it to anyone who verifies bundles.
    Key {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Recompute the whole tree from the stored records and check every checkpoint and node.
    ///
    /// Exits non-zero and names the first record that does not match.
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Export a bundle: records with proofs, checkpoint and key, verifiable offline.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// Export every record of this agent.
        #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
        agent: Option<String>,
        /// First index of a range (inclusive).
        #[arg(long, requires = "to")]
        from: Option<u64>,
        /// Last index of a range (inclusive).
        #[arg(long, requires = "from")]
        to: Option<u64>,
        /// Output file.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Append generated records from several threads forever, printing `acked <index>` after
    /// each durable append (used by the crash test).
    #[command(hide = true)]
    Load {
        #[command(flatten)]
        data: DataArgs,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
}

/// Verify a bundle offline, with no data directory.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Bundle file written by `pactum ledger export`.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// File holding the log's verifier key (the output of `pactum ledger key`).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
}

/// Measure the evidence log: durable appends, proofs, verify, memory.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Concurrent writers in the append phase.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Durable appends in the append phase (one record per append).
    #[arg(long, default_value_t = 200_000)]
    appends: u64,
    /// Log size for the proof and verify phases (the log is extended to this many records).
    /// The 10-million-record target takes minutes and ~6 GB of disk to build; the default
    /// is smaller.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Size of each record's canonical bytes.
    #[arg(long, default_value_t = 512)]
    record_bytes: usize,
    /// Data directory to use instead of a temporary one (kept afterwards).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// Runs a `pactum ledger` command. Exit codes: 0 success, 1 `verify` found a mismatch, 2
/// (an `Err`) bad input, usage or IO.
pub fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    if let LedgerCommand::Verify { data } = &command {
        let report = open(&data.data)?.verify()?;
        return Ok(match report.problem {
            None => {
                println!(
                    "ok: {} records, {} checkpoints verified",
                    report.n_records, report.n_checkpoints
                );
                ExitCode::SUCCESS
            }
            Some(problem) => {
                eprintln!(
                    "verification failed at record {}: {}",
                    problem.index, problem.message
                );
                ExitCode::FAILURE
            }
        });
    }
    run_other(command).map(|()| ExitCode::SUCCESS)
}

fn run_other(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Append { data, input } => append(&data.data, &input),
        LedgerCommand::Get { data, index } => {
            let bytes = open(&data.data)?.get(index)?;
            write_stdout(&bytes)
        }
        LedgerCommand::Proof { data, index } => {
            let proof = open(&data.data)?.tlog_proof(index)?;
            write_stdout(proof.to_text().as_bytes())
        }
        LedgerCommand::Checkpoint { data } => {
            let checkpoint = open(&data.data)?
                .latest_checkpoint()?
                .context("the log is empty: no checkpoint yet")?;
            write_stdout(checkpoint.note.as_bytes())
        }
        LedgerCommand::Key { data } => {
            let log = open(&data.data)?;
            write_stdout(format!("{}\n", log.verifier_key()).as_bytes())
        }
        LedgerCommand::Verify { .. } => bail!("internal: verify is handled by `run`"),
        LedgerCommand::Export {
            data,
            agent,
            from,
            to,
            output,
        } => {
            let selection = match (agent, from, to) {
                (Some(agent), None, None) => Selection::Agent(agent),
                (None, Some(from), Some(to)) => Selection::Range { from, to },
                _ => bail!("give either `--agent ID` or `--from N --to M`"),
            };
            let bundle = open(&data.data)?.export_bundle(selection)?;
            std::fs::write(&output, bundle.to_json())
                .with_context(|| format!("writing `{}`", output.display()))?;
            eprintln!(
                "wrote {} records to `{}`",
                bundle.entries.len(),
                output.display()
            );
            Ok(())
        }
        LedgerCommand::Load { data, writers } => load(&data.data, writers),
    }
}

fn open(dir: &Path) -> anyhow::Result<Log> {
    Log::open(dir).with_context(|| format!("opening the log in `{}`", dir.display()))
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Reads and validates every line before appending anything.
fn parse_jsonl(reader: impl std::io::BufRead, first_index: u64) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    for (line_idx, line) in reader.lines().enumerate() {
        let line_number = line_idx + 1;
        let line = line.with_context(|| format!("line {line_number}: cannot read"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = Record::from_json_text(&line)
            .with_context(|| format!("line {line_number}: invalid record"))?;
        let index = first_index + records.len() as u64;
        if let Some(target) = record.max_ref_index().filter(|target| *target >= index) {
            bail!(
                "line {line_number}: invalid record: reference to index {target}, which is not an earlier record (this record would be index {index})"
            );
        }
        records.push(record);
    }
    Ok(records)
}

fn append(dir: &Path, input: &str) -> anyhow::Result<()> {
    let bytes = if input == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .lock()
            .take(APPEND_INPUT_BYTES_MAX + 1)
            .read_to_end(&mut buffer)
            .context("reading standard input")?;
        buffer
    } else {
        std::fs::read(input).with_context(|| format!("reading `{input}`"))?
    };
    if bytes.len() as u64 > APPEND_INPUT_BYTES_MAX {
        bail!("input is over the limit of {APPEND_INPUT_BYTES_MAX} bytes");
    }
    let log = open(dir)?;
    let records = parse_jsonl(bytes.as_slice(), log.size()?)?;
    if records.is_empty() {
        bail!("no records in the input");
    }
    let batch_records_max = LogConfig::default().batch_records_max;
    let mut stdout = std::io::stdout().lock();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<Record> = records.by_ref().take(batch_records_max).collect();
        for index in log.append(chunk)? {
            writeln!(stdout, "{index}")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// Deterministic record `seq` of writer `writer`, padded to about `record_bytes` bytes.
fn generated_record(writer: usize, seq: u64, record_bytes: usize) -> anyhow::Result<Record> {
    let head = format!(r#"{{"agent":"writer-{writer}","kind":"note","pad":""#);
    let tail = format!(r#"","seq":{seq},"ts":{seq}}}"#);
    let pad_len = record_bytes.saturating_sub(head.len() + tail.len());
    let text = format!("{head}{}{tail}", "x".repeat(pad_len));
    Ok(Record::from_json_text(&text)?)
}

fn load(dir: &Path, n_writers: usize) -> anyhow::Result<()> {
    let log = Arc::new(open(dir)?);
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..n_writers.max(1))
        .map(|writer| {
            let log = Arc::clone(&log);
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || -> anyhow::Result<()> {
                for seq in 0.. {
                    let record = generated_record(writer, seq, 200)?;
                    let index = log.append(vec![record])?;
                    let mut out = stdout.lock().map_err(|_| anyhow::anyhow!("stdout lock"))?;
                    for index in index {
                        writeln!(out, "acked {index} {writer} {seq}")?;
                    }
                    out.flush()?;
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    }
    Ok(())
}

/// `pactum verify`: exit 0 when the bundle verifies, 1 when it does not (tampered, wrong key,
/// incomplete), 2 (an `Err`) when a file cannot be read or the key file is malformed.
pub fn verify_bundle(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key_text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading key file `{}`", args.key.display()))?;
    let key = VerifierKey::parse(key_text.trim())
        .with_context(|| format!("key file `{}`", args.key.display()))?;
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("reading bundle `{}`", args.bundle.display()))?;
    match Bundle::from_json(&bytes).and_then(|bundle| bundle.verify(&key)) {
        Ok(summary) => {
            println!(
                "ok: {} selected and {} referenced records included in checkpoint {} of `{}`",
                summary.n_selected,
                summary.n_referenced,
                summary.checkpoint.size,
                summary.checkpoint.origin
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("bundle `{}` does not verify: {err}", args.bundle.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.data {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path().to_owned()
        }
    };
    let log = Arc::new(open(&dir)?);
    let progress = |message: &str| {
        if !args.json {
            eprintln!("{message}");
        }
    };

    // Phase 1: durable appends from concurrent writers, one record per append. Writers are
    // tasks on one tokio thread, as request handlers in `pactum serve` will be; each awaits its
    // acknowledgement before sending the next record.
    progress(&format!(
        "appending {} records of {} bytes from {} writers...",
        args.appends, args.record_bytes, args.writers
    ));
    let n_writers = args.writers.max(1);
    let per_writer = args.appends / n_writers as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the tokio runtime")?;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..n_writers {
            let log = Arc::clone(&log);
            let record_bytes = args.record_bytes;
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(per_writer as usize);
                for seq in 0..per_writer {
                    let record = generated_record(writer, seq, record_bytes)?;
                    let sent = Instant::now();
                    log.append_async(vec![record])
                        .await
                        .map_err(|_| anyhow::anyhow!("the log writer stopped"))??;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            });
        }
        let mut all = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            all.extend(joined??);
        }
        anyhow::Ok(all)
    })?;
    let append_secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let n_appends = latencies.len() as f64;
    let appends_per_s = n_appends / append_secs;
    let ack_p50_ms = percentile(&latencies, 0.50).as_secs_f64() * 1e3;
    let ack_p99_ms = percentile(&latencies, 0.99).as_secs_f64() * 1e3;
    let rss_mb_after_appends = rss_mb();
    drop(latencies);
    let checkpoint_count_hint = log.size()?;
    progress(&format!(
        "  {appends_per_s:.0} appends/s, ack p50 {ack_p50_ms:.2} ms, p99 {ack_p99_ms:.2} ms"
    ));

    // Phase 2: extend the log to `records` with large batches (not timed as appends).
    let target = args.records.max(checkpoint_count_hint);
    progress(&format!("extending the log to {target} records..."));
    let batch = LogConfig::default().batch_records_max as u64;
    let mut size = log.size()?;
    let mut seq = 0u64;
    while size < target {
        let n = batch.min(target - size);
        let records = (0..n)
            .map(|i| generated_record(n_writers, seq + i, args.record_bytes))
            .collect::<anyhow::Result<Vec<_>>>()?;
        seq += n;
        size = log.append(records)?.last().map_or(size, |last| last + 1);
    }
    let rss_mb_after_build = rss_mb();

    // Phase 3: inclusion proofs for random records of the whole log.
    let n_proofs = 20_000usize;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut proof_times = Vec::with_capacity(n_proofs);
    for _ in 0..n_proofs {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let index = state % size;
        let started = Instant::now();
        let proof = log.inclusion_proof(index, size)?;
        proof_times.push(started.elapsed());
        std::hint::black_box(proof);
    }
    proof_times.sort();
    let proof_us_p50 = percentile(&proof_times, 0.50).as_secs_f64() * 1e6;
    let proof_us_p99 = percentile(&proof_times, 0.99).as_secs_f64() * 1e6;
    progress(&format!(
        "  inclusion proof in a log of {size}: p50 {proof_us_p50:.1} us, p99 {proof_us_p99:.1} us"
    ));

    // Phase 4: full verification.
    progress("verifying the whole log...");
    let started = Instant::now();
    let report = log.verify()?;
    let verify_secs = started.elapsed().as_secs_f64();
    if let Some(problem) = report.problem {
        bail!(
            "benchmark log does not verify at {}: {}",
            problem.index,
            problem.message
        );
    }
    let verify_records_per_s = report.n_records as f64 / verify_secs;
    let rss_mb_final = rss_mb();
    progress(&format!(
        "  {verify_records_per_s:.0} records/s ({} records, {} checkpoints)",
        report.n_records, report.n_checkpoints
    ));

    let result = serde_json::json!({
        "appends_per_s": appends_per_s.round(),
        "ack_p50_ms": (ack_p50_ms * 1000.0).round() / 1000.0,
        "ack_p99_ms": (ack_p99_ms * 1000.0).round() / 1000.0,
        "proof_us_p50": (proof_us_p50 * 10.0).round() / 10.0,
        "proof_us_p99": (proof_us_p99 * 10.0).round() / 10.0,
        "verify_records_per_s": verify_records_per_s.round(),
        "rss_mb": (rss_mb_final * 10.0).round() / 10.0,
        "rss_mb_after_appends": (rss_mb_after_appends * 10.0).round() / 10.0,
        "rss_mb_after_build": (rss_mb_after_build * 10.0).round() / 10.0,
        "writers": n_writers,
        "appends": n_appends,
        "record_bytes": args.record_bytes,
        "log_records": report.n_records,
        "checkpoints": report.n_checkpoints,
    });
    if args.json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_errors_name_the_line() {
        let input =
            "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1}\n\n{\"kind\":\"note\",\"agent\":\"a\"}\n";
        let err = format!("{:#}", parse_jsonl(input.as_bytes(), 0).unwrap_err());
        assert!(err.contains("line 3") && err.contains("`ts`"), "{err}");
        let input = "{\"kind\":\"note\",\"agent\":\"a\",\"ts\":1,\"refs\":[{\"index\":5}]}\n";
        let err = format!("{:#}", parse_jsonl(input.as_bytes(), 5).unwrap_err());
        assert!(err.contains("line 1") && err.contains("index 5"), "{err}");
        assert_eq!(parse_jsonl(input.as_bytes(), 6).unwrap().len(), 1);
    }

    #[test]
    fn generated_records_have_the_asked_size() {
        let record = generated_record(3, 12345, 512).unwrap();
        assert_eq!(record.bytes().len(), 512);
    }
}
