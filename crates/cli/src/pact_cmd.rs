//! `pactum pact ...`: check, format, publish the schema of, and import pacts.
//!
//! Exit codes, for every subcommand: 0 success; 1 the input has errors (or `fmt --check` found a
//! file to reformat); 2 usage or IO errors (a file that cannot be read or written).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use pact::{Diagnostic, Severity};

use crate::output::print_line;

/// Arguments of `pactum pact`.
#[derive(Args)]
pub struct PactArgs {
    #[command(subcommand)]
    pub command: PactCommand,
}

/// Work with pact files.
#[derive(Subcommand)]
pub enum PactCommand {
    /// Validate pact files and print every problem as `file:line:col: error[code]: message`.
    ///
    /// Exits 0 when every file is valid (warnings allowed), 1 when any has errors, 2 when a file
    /// cannot be read.
    Check(CheckArgs),
    /// Print pact files in the canonical layout, or rewrite them in place (`--write`).
    ///
    /// YAML files get block style with small leaf maps and lists in flow style (`{ a: b }`),
    /// fields in the order of the pact format, map keys sorted. `.json` files get pretty JSON.
    /// The leading comment block of a YAML file is kept; other comments are dropped (a warning
    /// says how many, and `--write` needs `--drop-comments` to drop them).
    Fmt(FmtArgs),
    /// Print the JSON Schema of the pact format, for editors (for example the YAML language
    /// server's `# yaml-language-server: $schema=...`).
    Schema,
    /// Write a pact skeleton from an MCP `tools/list` result: one action per tool, no rules.
    ImportMcp(ImportMcpArgs),
    /// Run table-driven test cases against a pact; prints `N passed, M failed`, exit 1 on any failure.
    Test(crate::decide_cmd::PactTestArgs),
    /// Upload a pact version to a server (`--server`, `--token`); problems come back with line and column.
    Push(crate::client_cmd::PushArgs),
    /// Activate an uploaded pact version on a server.
    Activate(crate::client_cmd::ActivateArgs),
}

/// Output format for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `file:line:col: severity[code]: message`, one per line.
    Text,
    /// A JSON array of `{file, line, col, severity, code, message, path}`.
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Pact files (YAML or JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Pact files to format. Without `--write` or `--check`, the formatted text goes to stdout.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the files that would change and exit 1 if any would; write nothing.
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the files in place.
    #[arg(long)]
    pub write: bool,
    /// With `--write`, rewrite files even when comments after the leading comment block would be
    /// lost (without it such files are left alone and reported).
    #[arg(long, requires = "write")]
    pub drop_comments: bool,
}

#[derive(Args, Debug)]
pub struct ImportMcpArgs {
    /// A `tools/list` response (JSON-RPC, with `result.tools`) or its bare result object.
    #[arg(required_unless_present = "upstream", conflicts_with = "upstream")]
    pub tools: Option<PathBuf>,
    /// Ask a live MCP server instead of reading a file: `stdio:COMMAND ARGS...` or
    /// `http:URL` (optionally `NAME=` first, as for `pactum gateway --upstream`).
    #[arg(long, value_name = "SPEC")]
    pub upstream: Option<String>,
    /// How long the live server may take to start and list its tools.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub upstream_timeout: String,
    /// The pact id (default: the input file's name without extension, or the upstream's name).
    #[arg(long)]
    pub pact_id: Option<String>,
    /// The agent id (default: the pact id).
    #[arg(long)]
    pub agent: Option<String>,
    /// The risk tier.
    #[arg(long, value_enum, default_value_t = TierArg::Medium)]
    pub tier: TierArg,
    /// Write the pact here instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// Risk tiers, as command-line values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Low,
    Medium,
    High,
    Critical,
}

impl From<TierArg> for pact::syntax::Tier {
    fn from(tier: TierArg) -> Self {
        match tier {
            TierArg::Low => pact::syntax::Tier::Low,
            TierArg::Medium => pact::syntax::Tier::Medium,
            TierArg::High => pact::syntax::Tier::High,
            TierArg::Critical => pact::syntax::Tier::Critical,
        }
    }
}

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Runs a `pactum pact` subcommand and returns the process exit code.
pub fn run(args: PactArgs) -> ExitCode {
    let result = match args.command {
        PactCommand::Check(args) => check(&args),
        PactCommand::Fmt(args) => fmt(&args),
        PactCommand::Schema => schema(),
        PactCommand::ImportMcp(args) => import_mcp(&args),
        PactCommand::Test(args) => pact_test(&args),
        PactCommand::Push(args) => crate::client_cmd::push(args).map(|()| 0),
        PactCommand::Activate(args) => crate::client_cmd::activate(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints text that ends in a line break (or is empty), quietly ending on a closed pipe.
fn print_text(text: &str) {
    if !text.is_empty() {
        print_line(text.strip_suffix('\n').unwrap_or(text));
    }
}

/// Reads a file of at most `bytes_max` bytes, checking the size before reading and reading no
/// more than the limit (the file may grow in between).
fn read_limited(path: &Path, bytes_max: usize) -> anyhow::Result<Result<Vec<u8>, u64>> {
    let file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if metadata.is_dir() {
        bail!("cannot read `{}`: it is a directory", path.display());
    }
    let limit = u64::try_from(bytes_max).unwrap_or(u64::MAX);
    if metadata.len() > limit {
        return Ok(Err(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() > bytes_max {
        return Ok(Err(bytes.len() as u64));
    }
    Ok(Ok(bytes))
}

fn too_large(n_bytes: u64) -> Diagnostic {
    Diagnostic::error(
        "too-large",
        format!(
            "the file is {n_bytes} bytes; the limit is {} bytes",
            pact::PACT_BYTES_MAX
        ),
        pact::Position::start(),
    )
}

/// Reads and checks one pact file.
fn check_file(path: &Path) -> anyhow::Result<Vec<Diagnostic>> {
    Ok(match read_limited(path, pact::PACT_BYTES_MAX)? {
        Ok(bytes) => pact::check_bytes(&bytes).diagnostics,
        Err(n_bytes) => vec![too_large(n_bytes)],
    })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let mut n_errors = 0;
    let mut n_warnings = 0;
    let mut n_unreadable = 0;
    let mut json_rows = Vec::new();
    for path in &args.files {
        let file = path.display().to_string();
        let diagnostics = match check_file(path) {
            Ok(diagnostics) => diagnostics,
            Err(err) => {
                eprintln!("error: {err:#}");
                n_unreadable += 1;
                continue;
            }
        };
        for diagnostic in &diagnostics {
            match diagnostic.severity {
                Severity::Error => n_errors += 1,
                Severity::Warning => n_warnings += 1,
            }
            match args.format {
                OutputFormat::Text => print_line(diagnostic.render(&file)),
                OutputFormat::Json => json_rows.push(serde_json::json!({
                    "file": file,
                    "line": diagnostic.position.line,
                    "col": diagnostic.position.col,
                    "severity": diagnostic.severity,
                    "code": diagnostic.code,
                    "message": diagnostic.message,
                    "path": diagnostic.path,
                })),
            }
        }
    }
    if args.format == OutputFormat::Json {
        print_line(serde_json::to_string_pretty(&json_rows)?);
    }
    let unreadable = if n_unreadable > 0 {
        format!("; {} could not be read", plural(n_unreadable, "file"))
    } else {
        String::new()
    };
    eprintln!(
        "{} checked: {}, {}{unreadable}",
        plural(args.files.len() - n_unreadable, "file"),
        plural(n_errors, "error"),
        plural(n_warnings, "warning")
    );
    Ok(if n_unreadable > 0 {
        EXIT_USAGE
    } else if n_errors > 0 {
        EXIT_INVALID
    } else {
        0
    })
}

fn fmt(args: &FmtArgs) -> anyhow::Result<u8> {
    let mut n_changed = 0;
    let mut invalid = false;
    let mut io_failed = false;
    for path in &args.files {
        let file = path.display().to_string();
        let bytes = match read_limited(path, pact::PACT_BYTES_MAX) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(n_bytes)) => {
                eprintln!("{}", too_large(n_bytes).render(&file));
                invalid = true;
                continue;
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                io_failed = true;
                continue;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                for diagnostic in pact::check_bytes(err.as_bytes()).diagnostics {
                    eprintln!("{}", diagnostic.render(&file));
                }
                invalid = true;
                continue;
            }
        };
        let layout = if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
        {
            pact::fmt::Layout::Json
        } else {
            pact::fmt::Layout::Yaml
        };
        let formatted = match pact::fmt::format(&text, layout) {
            Ok(formatted) => formatted,
            Err(pact::fmt::FmtError::Invalid(diagnostics)) => {
                for diagnostic in diagnostics {
                    eprintln!("{}", diagnostic.render(&file));
                }
                invalid = true;
                continue;
            }
            Err(err) => {
                eprintln!("{file}: error: {err}");
                invalid = true;
                continue;
            }
        };
        let changed = formatted.text != text;
        if args.write && changed && formatted.n_comments_dropped > 0 && !args.drop_comments {
            eprintln!(
                "{file}: error: {} after the leading comment block would be lost; move {} into \
                 the leading block, or pass --drop-comments",
                plural(formatted.n_comments_dropped, "comment line"),
                if formatted.n_comments_dropped == 1 {
                    "it"
                } else {
                    "them"
                }
            );
            invalid = true;
            continue;
        }
        if formatted.n_comments_dropped > 0 {
            eprintln!(
                "{file}: warning: {} after the leading comment block {} dropped by fmt",
                plural(formatted.n_comments_dropped, "comment line"),
                if formatted.n_comments_dropped == 1 {
                    "is"
                } else {
                    "are"
                }
            );
        }
        if args.check {
            if changed {
                print_line(&file);
                n_changed += 1;
            }
        } else if args.write {
            if changed {
                std::fs::write(path, &formatted.text)
                    .with_context(|| format!("cannot write `{file}`"))?;
                n_changed += 1;
            }
        } else {
            print_text(&formatted.text);
        }
    }
    if args.check || args.write {
        let verb = if args.check {
            "would be reformatted"
        } else {
            "reformatted"
        };
        eprintln!(
            "{} of {} {verb}",
            n_changed,
            plural(args.files.len(), "file")
        );
    }
    Ok(if io_failed {
        EXIT_USAGE
    } else if invalid || (args.check && n_changed > 0) {
        EXIT_INVALID
    } else {
        0
    })
}

/// `pactum pact test`, run by the guard's case runner in `decide_cmd`.
fn pact_test(args: &crate::decide_cmd::PactTestArgs) -> anyhow::Result<u8> {
    let (n_passed, n_failed) = crate::decide_cmd::run_pact_test(args)?;
    print_line(format!("{n_passed} passed, {n_failed} failed"));
    Ok(if n_failed > 0 { EXIT_INVALID } else { 0 })
}

/// Starts (or reaches) one MCP server, lists its tools, and stops it.
fn list_upstream_tools(
    upstream: gateway::Upstream,
    timeout_ms: u64,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let name = upstream.name.clone();
        let connection =
            gateway::upstream::Connection::new(upstream, Arc::new(tokio::sync::Notify::new()));
        let connected = tokio::time::timeout(
            std::time::Duration::from_millis(timeout_ms),
            connection.connect(),
        )
        .await;
        let tools = match connected {
            Err(_) => Err(anyhow::anyhow!(
                "upstream `{name}` did not start and list its tools within {timeout_ms} ms"
            )),
            Ok(Err(err)) => Err(anyhow::Error::from(err)),
            Ok(Ok(())) => connection
                .tools()
                .await
                .iter()
                .map(|tool| serde_json::to_value(tool).context("a tool definition"))
                .collect(),
        };
        connection.close().await;
        tools
    })
}

fn schema() -> anyhow::Result<u8> {
    print_line(serde_json::to_string_pretty(&pact::json_schema())?);
    Ok(0)
}

fn import_mcp(args: &ImportMcpArgs) -> anyhow::Result<u8> {
    let (input, value, default_id) = match (&args.tools, &args.upstream) {
        (_, Some(spec)) => {
            let upstream = gateway::Upstream::parse(spec)?;
            let timeout_ms = pact::parse_duration_ms(&args.upstream_timeout).map_err(|err| {
                anyhow::anyhow!("--upstream-timeout `{}`: {err}", args.upstream_timeout)
            })?;
            let name = upstream.name.clone();
            let tools = list_upstream_tools(upstream, timeout_ms)?;
            (
                format!("upstream {name}"),
                serde_json::json!({ "tools": tools }),
                name,
            )
        }
        (Some(path), None) => {
            let input = path.display().to_string();
            let bytes = match read_limited(path, pact::mcp::TOOLS_BYTES_MAX)? {
                Ok(bytes) => bytes,
                Err(n_bytes) => bail!(
                    "`{input}` is {n_bytes} bytes; the limit is {} bytes",
                    pact::mcp::TOOLS_BYTES_MAX
                ),
            };
            let value: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(err) => {
                    eprintln!(
                        "{input}:{}:{}: error[json]: {err}",
                        err.line(),
                        err.column()
                    );
                    return Ok(EXIT_INVALID);
                }
            };
            let stem = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .filter(|stem| !stem.trim().is_empty())
                .unwrap_or_else(|| "imported".to_string());
            (input, value, stem)
        }
        (None, None) => bail!("give a tools/list file or --upstream SPEC"),
    };
    let pact_id = args.pact_id.clone().unwrap_or(default_id);
    let options = pact::mcp::ImportOptions {
        agent: args.agent.clone().unwrap_or_else(|| pact_id.clone()),
        pact_id,
        tier: args.tier.into(),
    };
    let imported = match pact::mcp::import_tools(&value, &options) {
        Ok(imported) => imported,
        Err(err) => {
            eprintln!("{input}: error: {err}");
            return Ok(EXIT_INVALID);
        }
    };
    for note in &imported.notes {
        eprintln!("{input}: warning: {note}");
    }
    let text = imported.to_yaml()?;
    // The skeleton must pass `pactum pact check`; say so if it somehow does not.
    let checked = pact::check(&text);
    let output = args
        .output
        .as_ref()
        .map_or_else(|| "<stdout>".to_string(), |path| path.display().to_string());
    for diagnostic in &checked.diagnostics {
        eprintln!("{}", diagnostic.render(&output));
    }
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write `{}`", path.display()))?,
        None => print_text(&text),
    }
    eprintln!(
        "{} imported from `{input}`, {}",
        plural(imported.doc.actions.len(), "action"),
        plural(imported.notes.len(), "note")
    );
    Ok(if pact::has_errors(&checked.diagnostics) {
        EXIT_INVALID
    } else {
        0
    })
}
