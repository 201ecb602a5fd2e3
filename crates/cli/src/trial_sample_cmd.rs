//! `pactum trial sample | mix`: dynamic cases from production content in the evidence log, and
//! a trial suite that mixes them with a static baseline in a ratio.
//!
//! `sample` reads one agent's `verdict` records through the log's agent index, keeps those in
//! the window, and hands them to the `trial` crate's seeded reservoir, which keeps a uniform
//! sample in one pass (memory bounded by `--count`, not by the log). The case construction and
//! the mixing are pure and live in the `trial` crate; here are the flags, the log and the files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::Value;

use crate::trial_cmd::{load_suite, write_suite, DATA_DIR_DEFAULT};

/// Verdict records read from the log per query.
const PAGE_RECORDS: usize = 4096;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The agent whose production verdicts are sampled.
    #[arg(long)]
    agent: String,
    /// Data directory of the evidence log.
    #[arg(long, value_name = "DIR", default_value = DATA_DIR_DEFAULT, env = "PACTUM_DATA")]
    data: PathBuf,
    /// How far back from `--at` to sample: a whole number and a unit (`14d`, `24h`, `2w`), at
    /// most 366 days.
    #[arg(long, value_name = "DURATION", default_value = "14d")]
    since: String,
    /// Verdicts to sample, one case each (at most 10,000); fewer when the window has fewer.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Picks the sample: the same log, window and seed give the same suite.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The end of the window, an RFC 3339 time [default: now].
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The suite id [default: the agent id with `/` as `-`, then `-dynamic`].
    #[arg(long, value_name = "ID")]
    suite_id: Option<String>,
    /// The suite version [default: the newest sampled verdict's time, in unix seconds].
    #[arg(long, value_name = "N")]
    suite_version: Option<u64>,
    /// Output file (`.jsonl` writes JSONL, anything else JSON, which is also YAML); stdout by default.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MixArgs {
    /// The static baseline suite (authored, or from `pactum trial generate`).
    #[arg(long = "static", value_name = "FILE")]
    static_suite: PathBuf,
    /// The dynamic suite (from `pactum trial sample`).
    #[arg(long = "dynamic", value_name = "FILE")]
    dynamic_suite: PathBuf,
    /// The share of static cases, from 0 to 1 with up to four decimals (0.3: 30% static, 70%
    /// dynamic).
    #[arg(long, value_name = "SHARE", default_value = "0.3", value_parser = parse_share_bp)]
    static_share: u16,
    /// Cases in the mix [default: as many as both suites allow at the share].
    #[arg(long, value_name = "N")]
    cases: Option<usize>,
    /// Picks the cases: the same suites and seed give the same mix.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The mix's suite id [default: the static suite's, so obligations naming it follow the mix].
    #[arg(long, value_name = "ID")]
    suite_id: Option<String>,
    /// The mix's version [default: the larger of the two suites' versions].
    #[arg(long, value_name = "N")]
    suite_version: Option<u64>,
    /// Output file (`.jsonl` writes JSONL, anything else JSON, which is also YAML); stdout by default.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `0.3` as 3000 basis points: a decimal from 0 to 1, at most four decimals, no float rounding.
fn parse_share_bp(text: &str) -> Result<u16, String> {
    let bad =
        || format!("`{text}` is not a share from 0 to 1 with at most four decimals (e.g. 0.3)");
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits_only = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 4 {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction_bp: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<4}").parse().map_err(|_| bad())?
    };
    let share_bp = whole
        .checked_mul(10_000)
        .and_then(|bp| bp.checked_add(fraction_bp))
        .filter(|bp| *bp <= u32::from(trial::SHARE_BP_MAX))
        .ok_or_else(bad)?;
    u16::try_from(share_bp).map_err(|_| bad())
}

fn now_or_at(at: Option<&str>) -> anyhow::Result<u64> {
    let time = match at {
        Some(text) => humantime::parse_rfc3339_weak(text)
            .with_context(|| format!("`{text}` is not an RFC 3339 time"))?,
        None => SystemTime::now(),
    };
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .context("the time is before 1970")?;
    Ok(u64::try_from(since_epoch.as_millis())?)
}

/// `2026-01-01T00:00:00Z` for unix ms.
pub fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An age for people: `42s`, `5m`, `3h`, `12d`.
pub fn age_text(age_ms: u64) -> String {
    match age_ms {
        ms if ms < 60_000 => format!("{}s", ms / 1000),
        ms if ms < 3_600_000 => format!("{}m", ms / 60_000),
        ms if ms < 86_400_000 => format!("{}h", ms / 3_600_000),
        ms => format!("{}d", ms / 86_400_000),
    }
}

/// The default id of an agent's dynamic suite: ids travel in URLs, so no `/`.
fn default_suite_id(agent: &str) -> String {
    let id: String = agent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{id}-dynamic")
}

pub fn sample(args: SampleArgs) -> anyhow::Result<ExitCode> {
    // Every flag is checked before the log is opened.
    let mut reservoir = trial::Reservoir::new(args.seed, args.count)
        .map_err(|err| anyhow::anyhow!("--count: {err}"))?;
    let window_ms = pact::parse_duration_ms(&args.since)
        .map_err(|message| anyhow::anyhow!("--since: {message}"))?;
    let to_ms = now_or_at(args.at.as_deref()).context("--at")?;
    let (from_ms, to_ms) = trial::sample_window(to_ms, window_ms, &args.since)
        .map_err(|err| anyhow::anyhow!("--since: {err}"))?;
    if args.agent.is_empty() {
        bail!("--agent: the agent id is empty");
    }
    if !args.data.is_dir() {
        bail!(
            "no evidence log in `{}`: the directory does not exist",
            args.data.display()
        );
    }
    let log = store::Log::open(&args.data)
        .with_context(|| format!("opening the log in `{}`", args.data.display()))?;
    let mut skipped: BTreeMap<trial::SkipReason, u64> = BTreeMap::new();
    let mut n_verdicts: u64 = 0;
    let mut since_index = 0;
    loop {
        let page = log
            .agent_records(&args.agent, since_index, &["verdict"], PAGE_RECORDS)
            .context("reading the agent's verdicts")?;
        let n_read = page.len();
        for (index, bytes) in page {
            since_index = index + 1;
            n_verdicts += 1;
            let record: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("record {index} is not json"))?;
            let ts = record.get("ts").and_then(Value::as_u64);
            if ts.is_some_and(|ts| ts < from_ms || ts > to_ms) {
                continue;
            }
            match trial::ProductionVerdict::from_record(index, &record) {
                Ok(verdict) => reservoir.offer(verdict),
                Err(reason) => *skipped.entry(reason).or_default() += 1,
            }
        }
        if n_read < PAGE_RECORDS {
            break;
        }
    }
    let n_skipped: u64 = skipped.values().sum();
    let skipped_text = skipped
        .iter()
        .map(|(reason, n)| format!("{n} {}", reason.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let n_eligible = reservoir.n_offered();
    if n_eligible == 0 {
        bail!(
            "no verdicts of agent `{}` to sample between {} and {} ({n_verdicts} verdicts in the log{})",
            args.agent,
            time_text(from_ms),
            time_text(to_ms),
            if n_skipped == 0 {
                String::new()
            } else {
                format!("; in the window, {skipped_text}")
            }
        );
    }
    let config = trial::SampleConfig {
        suite: args
            .suite_id
            .clone()
            .unwrap_or_else(|| default_suite_id(&args.agent)),
        version: args.suite_version,
        agent: args.agent.clone(),
        seed: args.seed,
        from_ms,
        to_ms,
    };
    let doc = trial::dynamic_suite(reservoir, &config).map_err(|err| anyhow::anyhow!("{err}"))?;
    let suite = trial::Suite::new(doc.clone()).context("the sampled suite does not check")?;
    let newest_ms = suite.newest_case_ms().unwrap_or(to_ms);
    write_suite(&doc, args.output.as_deref())?;
    eprintln!(
        "sampled {} of {n_eligible} verdicts of `{}` between {} and {}{}; newest recorded {} before the window's end; wrote suite `{}` version {}{}",
        doc.cases.len(),
        args.agent,
        time_text(from_ms),
        time_text(to_ms),
        if n_skipped == 0 {
            String::new()
        } else {
            format!(" (not sampled: {skipped_text})")
        },
        age_text(to_ms.saturating_sub(newest_ms)),
        doc.suite,
        doc.version,
        args.output
            .as_ref()
            .map(|path| format!(" to `{}`", path.display()))
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn mix(args: MixArgs) -> anyhow::Result<ExitCode> {
    let static_suite = load_suite(&args.static_suite)?;
    let dynamic_suite = load_suite(&args.dynamic_suite)?;
    let config = trial::MixConfig {
        static_share_bp: args.static_share,
        n_cases: args.cases,
        seed: args.seed,
        suite: args.suite_id.clone(),
        version: args.suite_version,
    };
    let doc = trial::mix(&static_suite, &dynamic_suite, &config).map_err(|err| {
        anyhow::anyhow!(
            "cannot mix `{}` and `{}`: {err}",
            args.static_suite.display(),
            args.dynamic_suite.display()
        )
    })?;
    let mixed = trial::Suite::new(doc.clone()).context("the mixed suite does not check")?;
    write_suite(&doc, args.output.as_deref())?;
    let n_static = doc
        .cases
        .iter()
        .filter(|case| case.recorded_ms.is_none())
        .count();
    eprintln!(
        "mixed {n_static} static and {} dynamic cases into suite `{}` version {}{}{}",
        doc.cases.len() - n_static,
        doc.suite,
        doc.version,
        mixed
            .newest_case_ms()
            .map(|newest| format!("; newest case recorded {}", time_text(newest)))
            .unwrap_or_default(),
        args.output
            .as_ref()
            .map(|path| format!(" (written to `{}`)", path.display()))
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_exact_decimals_from_zero_to_one() {
        assert_eq!(parse_share_bp("0.3"), Ok(3000));
        assert_eq!(parse_share_bp("0"), Ok(0));
        assert_eq!(parse_share_bp("1"), Ok(10_000));
        assert_eq!(parse_share_bp("1.0"), Ok(10_000));
        assert_eq!(parse_share_bp("0.3333"), Ok(3333));
        assert!(parse_share_bp(".5").unwrap_err().contains("`.5`"));
        for bad in [
            "1.01",
            "0.33333",
            "-0.1",
            "30%",
            "",
            "x",
            "0.3.1",
            "99999999999",
        ] {
            assert!(parse_share_bp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_ids_fit_in_a_url() {
        assert_eq!(
            default_suite_id("acme/support-bot"),
            "acme-support-bot-dynamic"
        );
        assert_eq!(age_text(3 * 86_400_000 + 5), "3d");
        assert_eq!(time_text(1_767_225_600_000), "2026-01-01T00:00:00Z");
    }
}
