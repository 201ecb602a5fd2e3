//! `pactum score show | explain`: the trust score, computed from the agent's records in the
//! evidence log by the `score` crate, and explained down to the records behind each number.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Default data directory, shared with `pactum serve` and `pactum ledger`.
const DATA_DIR_DEFAULT: &str = "./pactum-data";

#[derive(Subcommand, Debug)]
pub enum ScoreCommand {
    /// The score: composite, interval, confidence, velocity, and each dimension.
    Show(ShowArgs),
    /// What produced each number: records, counts, formulas.
    Explain(ExplainArgs),
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// The agent id.
    agent: String,
    /// Data directory of the evidence log.
    #[arg(long, value_name = "DIR", default_value = DATA_DIR_DEFAULT, env = "PACTUM_DATA")]
    data: PathBuf,
    /// Risk tier for the default weights and freshness window (default: the pact's tier, else
    /// the tier recorded by the agent's newest trial, else `medium`).
    #[arg(long)]
    tier: Option<String>,
    /// The agent's pact: its tier and its `score:` weights and freshness apply.
    #[arg(long, value_name = "FILE", conflicts_with = "tier")]
    pact: Option<PathBuf>,
    /// Compute as of this time (RFC 3339), instead of now.
    #[arg(long)]
    at: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Append this computation to the log as a `score` record (the history velocity uses).
    #[arg(long)]
    record: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Only this dimension.
    #[arg(long)]
    dimension: Option<String>,
}

pub fn run(command: ScoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScoreCommand::Show(args) => show(args),
        ScoreCommand::Explain(args) => explain(args),
    }
}

struct Loaded {
    log: store::Log,
    score: score::Score,
    tier: String,
    now_ms: u64,
}

fn load(common: &CommonArgs) -> anyhow::Result<Loaded> {
    let now_ms = match &common.at {
        Some(text) => {
            let at = humantime::parse_rfc3339_weak(text)
                .with_context(|| format!("`{text}` is not an RFC 3339 time"))?;
            u64::try_from(at.duration_since(UNIX_EPOCH)?.as_millis())?
        }
        None => u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?,
    };
    let log = store::Log::open(&common.data)
        .with_context(|| format!("opening the log in `{}`", common.data.display()))?;
    let mut records = Vec::new();
    for (index, bytes) in log.agent_records(&common.agent, 0, &[], usize::MAX)? {
        let value: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("record {index} is not json"))?;
        let ts = value.get("ts").and_then(Value::as_u64).unwrap_or(0);
        if ts <= now_ms {
            records.push((index, value));
        }
    }
    let pact = match &common.pact {
        Some(path) => Some(crate::decide_cmd::load_pact(path)?),
        None => None,
    };
    let tier = match (&common.tier, &pact) {
        (Some(tier), _) => tier.clone(),
        (None, Some(pact)) => serde_json::to_value(pact.tier())?
            .as_str()
            .unwrap_or("medium")
            .to_owned(),
        (None, None) => records
            .iter()
            .rev()
            .find_map(|(_, record)| {
                (record.get("kind").and_then(Value::as_str) == Some("trial_start"))
                    .then(|| record.pointer("/pact/tier").and_then(Value::as_str))
                    .flatten()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "medium".into()),
    };
    if !["low", "medium", "high", "critical"].contains(&tier.as_str()) {
        bail!("tier `{tier}` is not low, medium, high or critical");
    }
    let config = match &pact {
        Some(pact) => score::Config::for_pact(pact.doc()),
        None => score::Config::for_tier(&tier),
    };
    let score = score::compute(&records, &config, now_ms);
    Ok(Loaded {
        log,
        score,
        tier,
        now_ms,
    })
}

fn percent(bp: u16) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

fn age(age_ms: Option<u64>) -> String {
    match age_ms {
        None => "-".into(),
        Some(ms) if ms < 60_000 => format!("{}s ago", ms / 1000),
        Some(ms) if ms < 3_600_000 => format!("{}m ago", ms / 60_000),
        Some(ms) if ms < 86_400_000 => format!("{}h ago", ms / 3_600_000),
        Some(ms) => format!("{}d ago", ms / 86_400_000),
    }
}

fn dimension_json(dimension: &score::DimensionScore) -> Value {
    json!({
        "value_bp": dimension.value_bp,
        "n_samples": dimension.n_samples,
        "n_successes": dimension.n_successes,
        "n_errors": dimension.n_errors,
        "interval_bp": dimension.interval_bp.map(|(low, high)| [low, high]),
        "newest_ts": dimension.newest_ts_ms,
        "age_ms": dimension.age_ms,
        "stale": dimension.stale,
        "confidence": dimension.confidence.as_str(),
        "weight": dimension.weight,
        "n_records": dimension.n_records,
        "record_indexes": dimension.record_indexes,
    })
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let score = &loaded.score;
    let mut recorded_at = None;
    if args.record && score.points.is_some() {
        let record = ledger::record::Record::from_value(
            &score.to_record(&args.common.agent, loaded.now_ms),
        )?;
        recorded_at = loaded.log.append(vec![record])?.first().copied();
    }
    let mut out = String::new();
    if args.json {
        let dimensions: serde_json::Map<String, Value> = score
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), dimension_json(d)))
            .collect();
        let value = json!({
            "agent": args.common.agent,
            "tier": loaded.tier,
            "at": loaded.now_ms,
            "points": score.points,
            "interval_points": score.interval_points.map(|(low, high)| [low, high]),
            "confidence": score.confidence.as_str(),
            "coverage_bp": score.coverage_bp,
            "points_per_week": score.trend.points_per_week,
            "velocity_missing": score.trend.missing_history(),
            "previous": score.trend.previous.map(|(points, index)| json!({"points": points, "index": index})),
            "swing": score.trend.swing,
            "dimensions": dimensions,
            "recorded_at": recorded_at,
        });
        out.push_str(&value.to_string());
        out.push('\n');
    } else {
        match (score.points, score.interval_points) {
            (Some(points), Some((low, high))) => out.push_str(&format!(
                "{}: {points} / 1000 (95% {low}..{high}), confidence {}, {} of the weight has evidence (tier {})\n",
                args.common.agent,
                score.confidence.as_str(),
                percent(score.coverage_bp),
                loaded.tier,
            )),
            _ => out.push_str(&format!(
                "{}: no score yet: no evidence in the log (confidence none)\n",
                args.common.agent
            )),
        }
        match (score.trend.points_per_week, score.trend.previous) {
            (Some(velocity), Some((previous, index))) => out.push_str(&format!(
                "velocity: {velocity:+} points/week; previous {previous} (record {index}){}\n",
                if score.trend.swing {
                    "; SWING over 200 points"
                } else {
                    ""
                }
            )),
            _ => out.push_str(&format!(
                "velocity: {} (`score show --record` keeps one)\n",
                score.trend.missing_history().unwrap_or_default()
            )),
        }
        out.push_str(&format!(
            "{:<22} {:>8} {:>8} {:>17} {:>9} {:>10} {:>6}\n",
            "dimension", "value", "samples", "95% interval", "newest", "confidence", "weight"
        ));
        for dimension in &score.dimensions {
            let value = dimension.value_bp.map_or("-".into(), percent);
            let interval = dimension.interval_bp.map_or("-".into(), |(low, high)| {
                format!("{}..{}", percent(low), percent(high))
            });
            out.push_str(&format!(
                "{:<22} {:>8} {:>8} {:>17} {:>9} {:>10} {:>6}{}\n",
                dimension.name,
                value,
                dimension.n_samples,
                interval,
                age(dimension.age_ms),
                dimension.confidence.as_str(),
                dimension.weight,
                if dimension.stale { " stale" } else { "" },
            ));
        }
        if let Some(index) = recorded_at {
            out.push_str(&format!("recorded as record {index}\n"));
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let score = &loaded.score;
    if let Some(name) = &args.dimension {
        if !score::DIMENSIONS.contains(&name.as_str()) {
            bail!(
                "dimension `{name}` is not one of {}",
                score::DIMENSIONS.join(", ")
            );
        }
    }
    let mut out = String::new();
    if args.dimension.is_none() {
        out.push_str(&format!(
            "composite = sum(weight x value) / sum(weight) over dimensions with evidence, in points of 1000 (tier {} weights); interval: the same mean of the Wilson bounds\n",
            loaded.tier
        ));
        let terms: Vec<String> = score
            .dimensions
            .iter()
            .filter(|d| d.weight > 0 && d.value_bp.is_some())
            .map(|d| format!("{} x {}", d.weight, d.value_bp.map_or(0, |bp| bp)))
            .collect();
        out.push_str(&format!(
            "  = ({}) / 10 / {} = {}\n",
            terms.join(" + "),
            score
                .dimensions
                .iter()
                .filter(|d| d.weight > 0 && d.value_bp.is_some())
                .map(|d| d.weight)
                .sum::<u32>(),
            score.points.map_or("no score".into(), |p| p.to_string())
        ));
    }
    for dimension in score
        .dimensions
        .iter()
        .filter(|d| args.dimension.as_deref().is_none_or(|name| name == d.name))
    {
        out.push_str(&format!("\n{}\n", dimension.name));
        out.push_str(&format!("  source: {}\n", source_of(&dimension.name)));
        match (dimension.value_bp, dimension.interval_bp) {
            (Some(value), Some((low, high))) => out.push_str(&format!(
                "  value: {} of {} samples = {}; Wilson 95% {}..{}; {} records could not be counted (errors)\n",
                dimension.n_successes,
                dimension.n_samples,
                percent(value),
                percent(low),
                percent(high),
                dimension.n_errors
            )),
            _ => out.push_str("  value: none (no samples; left out of the composite, not counted as zero)\n"),
        }
        out.push_str(&format!(
            "  confidence: {} (low under 30 samples, high from 200){}\n",
            dimension.confidence.as_str(),
            if dimension.stale {
                "; lowered one step: the newest evidence is past the freshness window"
            } else {
                ""
            }
        ));
        out.push_str(&format!(
            "  newest evidence: {}; weight {}\n",
            age(dimension.age_ms),
            dimension.weight
        ));
        if dimension.n_records > 0 {
            let listed: Vec<String> = dimension
                .record_indexes
                .iter()
                .map(u64::to_string)
                .collect();
            out.push_str(&format!(
                "  records ({} in all, newest {} listed; `pactum ledger get --index N`): {}\n",
                dimension.n_records,
                listed.len(),
                listed.join(" ")
            ));
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn source_of(dimension: &str) -> &'static str {
    match dimension {
        "scope_adherence" => {
            "`trial_case` records for this dimension, and production `verdict` records (allow and review in scope; deny and halted outside)"
        }
        "outcome_reliability" => {
            "allowed `verdict` records and the `outcome` records that reference them (executed counts)"
        }
        _ => "`trial_case` records for this dimension (passed / passed + failed)",
    }
}
