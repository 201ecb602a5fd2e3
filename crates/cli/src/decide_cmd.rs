//! `pactum decide`, `pactum pact test` and `pactum bench guard`: the guard from the command
//! line, with no server.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Args;
use guard::{decide, Decision, Guard, State};
use serde_json::{json, Value};

use crate::wire::{self, RequestWire};

/// Largest request file accepted, in bytes.
pub const REQUEST_FILE_BYTES_MAX: u64 = 2 * 1024 * 1024;
/// Largest case file accepted, in bytes.
pub const CASES_BYTES_MAX: u64 = pact::PACT_BYTES_MAX as u64;
/// Default first decision time for case files: 2026-01-01T00:00:00Z.
const CASES_EPOCH_MS: u64 = 1_767_225_600_000;

/// Decide one request against a pact file and print the verdict as JSON.
#[derive(Args)]
pub struct DecideArgs {
    /// The pact (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub pact: PathBuf,
    /// The request as JSON: `{"action": ..., "args": {...}, "session": ..., "principal": {"id": ..., "token": ...}, "content": [...]}`; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    pub request: String,
    /// Decide as of this RFC 3339 time instead of now (token expiry and counter windows use it).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Reads a file with a size limit, naming the file in every error.
pub fn read_limited(path: &Path, bytes_max: u64) -> anyhow::Result<String> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if metadata.len() > bytes_max {
        bail!(
            "`{}` is {} bytes; the limit is {bytes_max} bytes",
            path.display(),
            metadata.len()
        );
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}` as UTF-8 text", path.display()))
}

fn read_input(source: &str, bytes_max: u64) -> anyhow::Result<String> {
    if source != "-" {
        return read_limited(Path::new(source), bytes_max);
    }
    let mut text = String::new();
    std::io::stdin()
        .take(bytes_max + 1)
        .read_to_string(&mut text)
        .context("cannot read the request from standard input")?;
    if text.len() as u64 > bytes_max {
        bail!("the request on standard input is over {bytes_max} bytes");
    }
    Ok(text)
}

/// Loads and checks a pact file; the error lists every diagnostic when it does not check.
pub fn load_pact(path: &Path) -> anyhow::Result<pact::Pact> {
    let text = read_limited(path, pact::PACT_BYTES_MAX as u64)?;
    let checked = pact::check(&text);
    let Some(pact) = checked.pact else {
        let rendered: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic.render(&path.display().to_string()))
            .collect();
        bail!("the pact does not check:\n{}", rendered.join("\n"));
    };
    Ok(pact)
}

/// Loads a pact file and prepares it for deciding.
pub fn load_guard(path: &Path) -> anyhow::Result<Guard> {
    let pact = load_pact(path)?;
    Guard::new(Arc::new(pact)).with_context(|| format!("cannot prepare `{}`", path.display()))
}

pub fn run_decide(args: DecideArgs) -> anyhow::Result<()> {
    let guard = load_guard(&args.pact)?;
    let text = read_input(&args.request, REQUEST_FILE_BYTES_MAX)?;
    let value: Value = serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "the request is not valid JSON: {err} (line {}, column {})",
            err.line(),
            err.column()
        )
    })?;
    let request = RequestWire::from_value(&value)?.into_request()?;
    let now_ms = match &args.at {
        Some(at) => wire::parse_time_ms(at)?,
        None => wire::now_ms(),
    };
    let verdict = decide(&guard, &request, &mut State::new(), now_ms);
    crate::output::print_line(serde_json::to_string_pretty(&wire::verdict_json(&verdict))?);
    Ok(())
}

/// Run a pact's table-driven test cases; exit 1 if any fails.
#[derive(Args)]
pub struct PactTestArgs {
    /// The pact under test.
    pub pact: PathBuf,
    /// Case files (YAML or JSON): `cases: [{name, request, expect, rules?, at?}]`.
    #[arg(required = true)]
    pub cases: Vec<PathBuf>,
    /// Print only failures and the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

struct CaseResult {
    passed: bool,
    line: String,
}

/// Runs every case file; returns `(passed, failed)`.
pub fn run_pact_test(args: &PactTestArgs) -> anyhow::Result<(usize, usize)> {
    let guard = load_guard(&args.pact)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &args.cases {
        let text = read_limited(path, CASES_BYTES_MAX)?;
        let value = pact::parse_yaml(&text).map_err(|diagnostic| {
            anyhow::anyhow!("{}", diagnostic.render(&path.display().to_string()))
        })?;
        let Some(cases) = value.get("cases").and_then(Value::as_array) else {
            bail!("`{}` has no `cases` list", path.display());
        };
        if value
            .as_object()
            .is_some_and(|top| top.keys().any(|key| key != "cases"))
        {
            bail!("`{}`: the only top-level field is `cases`", path.display());
        }
        // Cases in one file share the guard's state, in order, as production calls would.
        let mut state = State::new();
        let mut now_ms = CASES_EPOCH_MS;
        for (idx, case) in cases.iter().enumerate() {
            let result = run_case(&guard, &mut state, &mut now_ms, idx, case, idx == 0)
                .unwrap_or_else(|err| CaseResult {
                    passed: false,
                    line: format!("FAIL case {idx}: {err:#}"),
                });
            if result.passed {
                passed += 1;
                if !args.quiet {
                    crate::output::print_line(&result.line);
                }
            } else {
                failed += 1;
                crate::output::print_line(&result.line);
            }
        }
    }
    Ok((passed, failed))
}

fn run_case(
    guard: &Guard,
    state: &mut State,
    now_ms: &mut u64,
    idx: usize,
    case: &Value,
    first: bool,
) -> anyhow::Result<CaseResult> {
    let Some(fields) = case.as_object() else {
        bail!("a case is a map with `name`, `request` and `expect`")
    };
    for key in fields.keys() {
        if !["name", "request", "expect", "rules", "at"].contains(&key.as_str()) {
            bail!(
                "unknown field `{key}`; a case has `name`, `request`, `expect`, `rules` and `at`"
            );
        }
    }
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("case {idx}"));
    let expect_text = fields
        .get("expect")
        .and_then(Value::as_str)
        .with_context(|| format!("`{name}`: missing `expect` (allow, deny, review or halted)"))?;
    let expect = Decision::parse(expect_text).with_context(|| {
        format!("`{name}`: `expect` is `{expect_text}`; use allow, deny, review or halted")
    })?;
    let expect_rules: Option<Vec<String>> = match fields.get("rules") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .with_context(|| format!("`{name}`: `rules` lists rule ids as strings"))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
        Some(_) => bail!("`{name}`: `rules` is a list of rule ids"),
    };
    match fields.get("at") {
        Some(Value::String(at)) => {
            *now_ms = wire::parse_time_ms(at).with_context(|| format!("`{name}`"))?
        }
        Some(_) => bail!("`{name}`: `at` is an RFC 3339 time string"),
        None if !first => *now_ms += 1_000,
        None => {}
    }
    let request_value = fields
        .get("request")
        .with_context(|| format!("`{name}`: missing `request`"))?;
    let request = RequestWire::from_value(request_value)
        .and_then(RequestWire::into_request)
        .with_context(|| format!("`{name}`"))?;
    let verdict = decide(guard, &request, state, *now_ms);
    let mut got_rules = verdict.rules.clone();
    got_rules.sort();
    let rules_ok = match &expect_rules {
        None => true,
        Some(expected) => {
            let mut expected = expected.clone();
            expected.sort();
            expected == got_rules
        }
    };
    let passed = verdict.decision == expect && rules_ok;
    let line = if passed {
        format!(
            "ok   {name}: {} [{}]",
            verdict.decision.as_str(),
            got_rules.join(", ")
        )
    } else {
        let findings: Vec<&str> = verdict
            .findings
            .iter()
            .map(|finding| finding.message.as_str())
            .collect();
        format!(
            "FAIL {name}: expected {}{}, got {} [{}]{}",
            expect.as_str(),
            expect_rules
                .map(|rules| format!(" [{}]", rules.join(", ")))
                .unwrap_or_default(),
            verdict.decision.as_str(),
            got_rules.join(", "),
            if findings.is_empty() {
                String::new()
            } else {
                format!(" ({})", findings.join("; "))
            }
        )
    };
    Ok(CaseResult { passed, line })
}

/// Measure guard decisions on one thread: a 100-rule pact with 1,000 canaries.
#[derive(Args)]
pub struct GuardBenchArgs {
    /// Decisions to time after warm-up.
    #[arg(long, default_value_t = 200_000)]
    pub decisions: usize,
    /// Print JSON (`p50_us`, `p99_us`, `decisions_per_s`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run_guard_bench(args: GuardBenchArgs) -> anyhow::Result<()> {
    if args.decisions == 0 {
        bail!("--decisions must be at least 1");
    }
    let checked = pact::check(&guard::fixture::pact_text());
    let pact = checked.pact.with_context(|| {
        format!(
            "the benchmark pact does not check: {:?}",
            checked.diagnostics
        )
    })?;
    let n_rules = pact.rules().len();
    let n_canaries = pact.canaries().len();
    let guard = Guard::new(Arc::new(pact))?;
    let requests = guard::fixture::requests();
    let mut state = State::new();
    let mut now_ms = wire::now_ms();
    let warmup = 20_000.min(args.decisions);
    let mut tally = [0usize; 4];
    for idx in 0..warmup {
        now_ms += 1;
        let request = &requests[idx % requests.len()];
        std::hint::black_box(decide(&guard, request, &mut state, now_ms));
    }
    let mut latencies_ns = Vec::with_capacity(args.decisions);
    let started = Instant::now();
    for idx in 0..args.decisions {
        now_ms += 1;
        let request = &requests[idx % requests.len()];
        let begin = Instant::now();
        let verdict = decide(&guard, request, &mut state, now_ms);
        latencies_ns.push(begin.elapsed().as_nanos() as u64);
        tally[verdict.decision as usize] += 1;
        std::hint::black_box(verdict);
    }
    let elapsed = started.elapsed();
    latencies_ns.sort_unstable();
    let percentile = |fraction: f64| -> f64 {
        let idx = ((latencies_ns.len() as f64 - 1.0) * fraction).round() as usize;
        latencies_ns.get(idx).copied().unwrap_or(0) as f64 / 1000.0
    };
    let (p50_us, p99_us) = (percentile(0.50), percentile(0.99));
    let decisions_per_s = args.decisions as f64 / elapsed.as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "p50_us": (p50_us * 100.0).round() / 100.0,
                "p99_us": (p99_us * 100.0).round() / 100.0,
                "decisions_per_s": decisions_per_s.round(),
                "decisions": args.decisions,
                "rules": n_rules,
                "canaries": n_canaries,
                "allow": tally[0], "review": tally[1], "deny": tally[2], "halted": tally[3],
            })
        );
    } else {
        println!("guard decisions, one thread, {n_rules} rules, {n_canaries} canaries");
        println!("  decisions      {:>12}", args.decisions);
        println!(
            "  allow/review/deny {} / {} / {}",
            tally[0], tally[1], tally[2]
        );
        println!("  p50            {p50_us:>9.2} us   (target <= 10)");
        println!("  p99            {p99_us:>9.2} us   (target <= 50)");
        println!("  decisions/s    {decisions_per_s:>12.0}");
    }
    Ok(())
}
