//! `pactum detect scan`, `pactum canary new` and `pactum bench detect`: the detectors from the
//! command line, and their evaluation on the public corpora in `testdata/`.

use std::io::{BufRead, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use detect::{CanarySet, Detector, DetectorConfig, Scan, Source};
use serde_json::{json, Value};

#[path = "detect_bench.rs"]
mod bench;
#[path = "classifier.rs"]
pub mod classifier;

use classifier::{Classifier, ClassifierConfig};

/// Largest text scanned by default, in bytes (one document or one JSON line's `text`).
pub const TEXT_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Most canaries `pactum canary new --count` makes at once.
pub const CANARY_COUNT_MAX: usize = 10_000;

/// Arguments of `pactum detect`.
#[derive(Args)]
pub struct DetectArgs {
    #[command(subcommand)]
    command: DetectCommand,
}

#[derive(Subcommand)]
enum DetectCommand {
    /// Scan a text (a file, or stdin) for injection, authority claims, hidden text and canaries.
    ///
    /// Prints one JSON object with a top-level `flagged`. With `--jsonl`, reads JSON lines with a
    /// `text` field (optional `source` and `id`) and writes one result line per input line, in
    /// order, keeping `id`; blank lines are skipped; memory stays bounded by one line.
    Scan(ScanArgs),
}

#[derive(Args)]
struct ScanArgs {
    /// Where the text came from: user, tool, document or output.
    #[arg(long, default_value = "user", value_parser = parse_source)]
    source: Source,
    /// Read JSON lines (`{"text": ..., "source": ..., "id": ...}`) and write one result per line.
    #[arg(long)]
    jsonl: bool,
    /// Combined score at or above which a text is flagged (0..=1).
    #[arg(long, default_value_t = DetectorConfig::default().threshold)]
    threshold: f32,
    /// A pact file: its action names and canaries are used as with `--action` and `--canary`.
    #[arg(long, value_name = "FILE")]
    pact: Option<PathBuf>,
    /// One of the agent's action names (repeatable): content telling its reader to call one is
    /// reported as a tool invocation.
    #[arg(long = "action", value_name = "NAME")]
    actions: Vec<String>,
    /// A canary token to look for (repeatable).
    #[arg(long = "canary", value_name = "TOKEN")]
    canaries: Vec<String>,
    /// Largest text accepted, in bytes; a larger text (or JSON line) is an error, never truncated.
    #[arg(long, default_value_t = TEXT_BYTES_MAX_DEFAULT)]
    text_bytes_max: usize,
    /// An external classifier (`http://...`) asked about every text; its score flags a text at
    /// or above `--classifier-threshold`, and when it fails the built-in verdict stands. Off
    /// unless given. Protocol: POST `{"text", "source"}`, answer `{"score": 0..1}` or
    /// `[{"label": "INJECTION"|"SAFE", "score": x}]`.
    #[arg(long, env = "PACTUM_CLASSIFIER_URL", value_name = "URL")]
    classifier_url: Option<String>,
    /// Time allowed for one classifier request, in milliseconds.
    #[arg(long, default_value_t = classifier::TIMEOUT_MS_DEFAULT, value_name = "MS")]
    classifier_timeout_ms: u64,
    /// Classifier score at or above which a text is flagged (0..=1).
    #[arg(long, default_value_t = classifier::THRESHOLD_DEFAULT, value_name = "SCORE")]
    classifier_threshold: f32,
    /// Input file; `-` or nothing reads stdin.
    input: Option<PathBuf>,
}

fn parse_source(name: &str) -> Result<Source, String> {
    Source::parse(name)
        .ok_or_else(|| format!("unknown source `{name}`; expected user, tool, document or output"))
}

/// Arguments of `pactum canary`.
#[derive(Args)]
pub struct CanaryArgs {
    #[command(subcommand)]
    command: CanaryCommand,
}

#[derive(Subcommand)]
enum CanaryCommand {
    /// Print new canary tokens, one a line (`pct-canary-` and 16 random hex digits).
    New {
        /// How many tokens to print.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

/// Arguments of `pactum bench detect`.
#[derive(Args)]
pub struct BenchArgs {
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Folder holding the corpora (`deepset-prompt-injections/`, `bipia-train/`, `notinject-dev/`).
    #[arg(long, default_value = "testdata")]
    testdata: PathBuf,
    /// Skip the timing runs (quality figures only).
    #[arg(long)]
    no_timing: bool,
}

pub fn run_detect(args: DetectArgs) -> anyhow::Result<()> {
    match args.command {
        DetectCommand::Scan(scan_args) => run_scan(scan_args),
    }
}

pub fn run_canary(args: CanaryArgs) -> anyhow::Result<()> {
    match args.command {
        CanaryCommand::New { count } => {
            if count == 0 || count > CANARY_COUNT_MAX {
                bail!("`--count {count}` is out of range; it must be between 1 and {CANARY_COUNT_MAX}");
            }
            let mut random = vec![0u8; count * 8];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut file| file.read_exact(&mut random))
                .context("could not read randomness from `/dev/urandom`")?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for chunk in random.chunks_exact(8) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                writeln!(out, "{}", detect::new_canary(bytes))?;
            }
            Ok(())
        }
    }
}

pub fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let report = bench::run(&args.testdata, !args.no_timing)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn run_scan(args: ScanArgs) -> anyhow::Result<()> {
    let config = DetectorConfig {
        threshold: args.threshold,
        ..DetectorConfig::default()
    };
    let mut actions = args.actions.clone();
    let mut canary_tokens = args.canaries.clone();
    if let Some(path) = &args.pact {
        let pact = crate::decide_cmd::load_pact(path)?;
        actions.extend(pact.actions().iter().map(|action| action.name.clone()));
        canary_tokens.extend(pact.canaries().iter().cloned());
    }
    let canaries = CanarySet::new(&canary_tokens)?;
    let detector = Detector::new(&config, &actions)?.with_canaries(canaries);
    let classifier = match args.classifier_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => Some(Classifier::new(ClassifierConfig {
            url: url.to_string(),
            timeout_ms: args.classifier_timeout_ms,
            threshold: args.classifier_threshold,
        })?),
    };
    let scanner = Scanner {
        detector: &detector,
        classifier: classifier.as_ref(),
    };
    let reader: Box<dyn Read> = match &args.input {
        None => Box::new(std::io::stdin().lock()),
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("could not open `{}`", path.display()))?,
        ),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.jsonl {
        scan_jsonl(&scanner, args.source, args.text_bytes_max, reader, &mut out)?;
    } else {
        let mut text = Vec::new();
        reader
            .take(args.text_bytes_max as u64 + 1)
            .read_to_end(&mut text)
            .context("could not read the input")?;
        if text.len() > args.text_bytes_max {
            bail!(
                "input is over the limit of {} bytes (`--text-bytes-max`)",
                args.text_bytes_max
            );
        }
        let text = String::from_utf8(text).context("input is not UTF-8")?;
        let value = scanner.scan_json(&text, args.source, None);
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// Streams JSON lines: one bounded line in memory at a time, results in input order.
fn scan_jsonl(
    scanner: &Scanner,
    default_source: Source,
    text_bytes_max: usize,
    reader: impl Read,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // A JSON line may escape every byte of its text (`\u00XX` is 6 bytes) plus the other fields.
    let line_bytes_max = text_bytes_max.saturating_mul(6).saturating_add(64 * 1024);
    let mut reader = std::io::BufReader::new(reader);
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        line_no += 1;
        let n_read = (&mut reader)
            .take(line_bytes_max as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("could not read line {line_no}"))?;
        if n_read == 0 {
            break;
        }
        if line.len() > line_bytes_max && line.last() != Some(&b'\n') {
            bail!("line {line_no}: over the limit of {line_bytes_max} bytes per line");
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_slice(trimmed)
            .with_context(|| format!("line {line_no}: not valid JSON"))?;
        let Some(object) = value.as_object() else {
            bail!("line {line_no}: expected a JSON object with a `text` field");
        };
        let Some(text) = object.get("text").and_then(Value::as_str) else {
            bail!("line {line_no}: missing string field `text`");
        };
        if text.len() > text_bytes_max {
            bail!(
                "line {line_no}: `text` is {} bytes, over the limit of {text_bytes_max} bytes (`--text-bytes-max`)",
                text.len()
            );
        }
        let source = match object.get("source") {
            None | Some(Value::Null) => default_source,
            Some(Value::String(name)) => Source::parse(name).with_context(|| {
                format!("line {line_no}: unknown source `{name}`; expected user, tool, document or output")
            })?,
            Some(_) => bail!("line {line_no}: field `source` must be a string"),
        };
        let value = scanner.scan_json(text, source, object.get("id"));
        serde_json::to_writer(&mut *out, &value)?;
        writeln!(out)?;
        // Each answer leaves as soon as it is ready, so a caller can feed lines one at a time.
        out.flush()?;
    }
    Ok(())
}

/// The built-in detector and, when configured, the external classifier.
struct Scanner<'a> {
    detector: &'a Detector,
    classifier: Option<&'a Classifier>,
}

impl Scanner<'_> {
    /// Scans one text and renders the result. The built-in verdict comes first; the classifier
    /// can add a flag, never remove one, and its failures are reported, not raised.
    fn scan_json(&self, text: &str, source: Source, id: Option<&Value>) -> Value {
        let scan = self.detector.scan(text, source);
        let mut value = scan_json(&scan, source, text, id);
        if let (Some(classifier), Some(object)) = (self.classifier, value.as_object_mut()) {
            let answer = classifier.classify(text, source.as_str());
            if classifier.flags(&answer) {
                object.insert("flagged".to_string(), Value::Bool(true));
            }
            object.insert("classifier".to_string(), classifier.answer_json(&answer));
        }
        value
    }
}

fn scan_json(scan: &Scan, source: Source, text: &str, id: Option<&Value>) -> Value {
    let findings: Vec<Value> = scan
        .findings
        .iter()
        .map(|finding| {
            let excerpt: String = text
                .get(finding.span.clone())
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect();
            json!({
                "kind": finding.kind.as_str(),
                "rule": finding.rule,
                "score": round3(finding.score),
                "start": finding.span.start,
                "end": finding.span.end,
                "excerpt": excerpt,
                "reason": finding.reason,
            })
        })
        .collect();
    let mut value = json!({
        "flagged": scan.flagged,
        "authority_claimed": scan.authority_claimed,
        "score": round3(scan.score),
        "source": source.as_str(),
        "findings": findings,
        "n_findings_omitted": scan.n_findings_omitted,
    });
    if let (Some(id), Some(object)) = (id, value.as_object_mut()) {
        object.insert("id".to_string(), id.clone());
    }
    value
}

fn round3(value: f32) -> f64 {
    (f64::from(value) * 1000.0).round() / 1000.0
}
