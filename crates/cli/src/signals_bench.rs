//! `pactum bench signals`: what the signal watcher pays per agent per evaluation, on one busy
//! agent's synthetic history ([`signals::fixture`]) in a real evidence log: reading the agent's
//! records through the store's agent index and parsing them, computing every signal, the score,
//! and folding the incidents. Medians of `--rounds` rounds, one table.

use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use serde_json::{json, Value};

/// Records appended per call while building the log (the store's default `batch_records_max`).
const BUILD_BATCH_RECORDS: usize = 4_096;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Records in the agent's history (spread over 90 days).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=20_000_000))]
    records: u64,
    /// Rounds timed; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let now_ms = 1_800_000_000_000;
    let pact = pact::check(signals::fixture::PACT)
        .pact
        .context("the fixture pact does not check")?;
    let dir = tempfile::tempdir()?;
    let log = store::Log::open(dir.path())?;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(args.records),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_message("building the log");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BUILD_BATCH_RECORDS);
    for (_, record) in signals::fixture::records(args.records, now_ms) {
        batch.push(ledger::record::Record::from_value(&record)?);
        if batch.len() == BUILD_BATCH_RECORDS {
            bar.inc(batch.len() as u64);
            log.append(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        log.append(batch)?;
    }
    bar.finish_and_clear();
    let build_ms = ms_since(started);
    let eval_texts: Vec<String> = (0..200)
        .map(|case| format!("customer asks about order {case} and a refund"))
        .collect();
    let thresholds = signals::Thresholds::for_pact(&pact);
    let config = score::Config::for_pact(pact.doc());
    let (mut read, mut compute, mut scoring, mut folding) = (vec![], vec![], vec![], vec![]);
    let mut n_read = 0;
    let mut n_readings = 0;
    for _ in 0..args.rounds {
        let started = Instant::now();
        let records: Vec<(u64, Value)> = log
            .agent_records("acme/bot", 0, &[], usize::MAX)?
            .into_iter()
            .map(|(index, bytes)| Ok((index, serde_json::from_slice(&bytes)?)))
            .collect::<anyhow::Result<_>>()?;
        read.push(ms_since(started));
        n_read = records.len();
        let started = Instant::now();
        n_readings = signals::compute(&records, &pact, &eval_texts, &thresholds, now_ms).len();
        compute.push(ms_since(started));
        let started = Instant::now();
        std::hint::black_box(score::compute(&records, &config, now_ms));
        scoring.push(ms_since(started));
        let started = Instant::now();
        std::hint::black_box(incident::fold(&records));
        folding.push(ms_since(started));
    }
    let (read_ms, compute_ms, score_ms, fold_ms) = (
        median(read),
        median(compute),
        median(scoring),
        median(folding),
    );
    let figures = json!({
        "records": n_read,
        "rounds": args.rounds,
        "readings": n_readings,
        "build_ms": build_ms.round(),
        "read_parse_ms_p50": read_ms.round(),
        "signals_ms_p50": compute_ms.round(),
        "score_ms_p50": score_ms.round(),
        "incident_fold_ms_p50": fold_ms.round(),
        "evaluation_ms_p50": (read_ms + compute_ms).round(),
        "signals_records_per_s": (n_read as f64 / (compute_ms / 1000.0)).round(),
    });
    if args.json {
        println!("{figures}");
        return Ok(());
    }
    println!(
        "one agent, {n_read} records over 90 days, {n_readings} readings; medians of {} rounds",
        args.rounds
    );
    println!("{:<38} {:>10}", "step", "ms");
    for (step, value) in [
        ("read + parse (store agent index)", read_ms),
        ("signals::compute", compute_ms),
        ("score::compute", score_ms),
        ("incident::fold", fold_ms),
        (
            "one watcher evaluation (read + signals)",
            read_ms + compute_ms,
        ),
    ] {
        println!("{step:<38} {value:>10.1}");
    }
    println!("(building the log took {build_ms:.0} ms)");
    Ok(())
}
