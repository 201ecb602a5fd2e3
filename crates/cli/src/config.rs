//! Configuration of `pactum serve` and of the CLI as a client: defaults, then a YAML or JSON
//! config file, then `PACTUM_*` environment variables, then flags (later wins).
//! `pactum config show` prints the effective values, where each came from, and masks secrets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use serde::Deserialize;
use server::Limits;

/// Default data directory.
pub const DATA_DIR_DEFAULT: &str = "./pactum-data";
/// Default listen address: loopback only, so a first run exposes nothing.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7700";
/// Default server URL for client commands.
pub const SERVER_DEFAULT: &str = "http://127.0.0.1:7700";
/// Largest config file read, in bytes.
pub const CONFIG_BYTES_MAX: u64 = 64 * 1024;

/// Flags (each also read from its `PACTUM_*` variable) shared by `serve` and `config show`.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// YAML or JSON config file (keys: data, listen, server, token, limits.*, notify.*).
    #[arg(long, value_name = "FILE", env = "PACTUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: evidence log, signing key, registry, admin token [default: ./pactum-data].
    #[arg(long, value_name = "DIR", env = "PACTUM_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, value_name = "ADDR", env = "PACTUM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Requests per second per token; 0 for no limit [default: 100000].
    #[arg(long, value_name = "N", env = "PACTUM_TOKEN_REQUESTS_PER_S")]
    pub token_requests_per_s: Option<u32>,
    /// Most requests in one batch decide [default: 256].
    #[arg(long, value_name = "N", env = "PACTUM_BATCH_REQUESTS_MAX")]
    pub batch_requests_max: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    data: Option<PathBuf>,
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    notify: FileNotify,
}

/// `notify:` in the config file: where escalations and incidents are sent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    #[serde(default)]
    webhooks: Vec<FileWebhook>,
    #[serde(default)]
    attempts_max: Option<u32>,
    #[serde(default)]
    backoff_initial_ms: Option<u64>,
    #[serde(default)]
    attempt_timeout_ms: Option<u64>,
}

/// One webhook: its secret given inline or, better, by the name of an environment variable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhook {
    url: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    #[serde(default)]
    body_bytes_max: Option<usize>,
    #[serde(default)]
    batch_requests_max: Option<usize>,
    #[serde(default)]
    args_bytes_max: Option<usize>,
    #[serde(default)]
    text_bytes_max: Option<usize>,
    #[serde(default)]
    token_requests_per_s: Option<u32>,
    #[serde(default)]
    oracle_requests_per_s: Option<u32>,
    #[serde(default)]
    request_timeout_ms: Option<u64>,
    // Trials from the server (see `server::trials`).
    #[serde(default)]
    suite_bytes_max: Option<usize>,
    #[serde(default)]
    trials_running_max: Option<usize>,
    #[serde(default)]
    schedule_check_ms: Option<u64>,
    #[serde(default)]
    signals_check_ms: Option<u64>,
    #[serde(default)]
    trial_cadence_critical_ms: Option<u64>,
    #[serde(default)]
    trial_cadence_high_ms: Option<u64>,
    #[serde(default)]
    trial_cadence_medium_ms: Option<u64>,
    #[serde(default)]
    trial_cadence_low_ms: Option<u64>,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Effective {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub limits: Limits,
    /// Server URL for client commands.
    pub server: String,
    /// Token for client commands (a secret: never printed unmasked).
    pub token: Option<String>,
    /// Webhooks and delivery settings for `pactum serve`.
    pub notify: server::notify::NotifyConfig,
    /// `(key, source)` for every key.
    pub sources: Vec<(&'static str, Source)>,
}

fn from_cli<T: ToString>(value: &Option<T>, env_name: &str) -> Option<Source> {
    let value = value.as_ref()?.to_string();
    match std::env::var(env_name) {
        Ok(env_value) if env_value == value => Some(Source::Env),
        _ => Some(Source::Flag),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("config file `{}`", path.display()))?;
    if metadata.len() > CONFIG_BYTES_MAX {
        bail!(
            "config file `{}` is {} bytes; the limit is {CONFIG_BYTES_MAX}",
            path.display(),
            metadata.len()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file `{}`", path.display()))?;
    let value = pact::parse_yaml(&text).map_err(|diagnostic| {
        anyhow::anyhow!("{}", diagnostic.render(&path.display().to_string()))
    })?;
    serde_path_to_error::deserialize(&value).map_err(|err| {
        anyhow::anyhow!(
            "config file `{}`: at `{}`: {}",
            path.display(),
            err.path(),
            err.inner()
        )
    })
}

/// Resolves the configuration; `server` and `token` are the client flags when given.
pub fn resolve(
    args: &ConfigArgs,
    server: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<Effective> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let mut sources = Vec::new();
    let mut pick = |key: &'static str, cli: Option<Source>, in_file: bool| {
        let source = cli.unwrap_or(if in_file {
            Source::File
        } else {
            Source::Default
        });
        sources.push((key, source));
    };
    pick(
        "data",
        from_cli(&args.data.as_ref().map(|p| p.display()), "PACTUM_DATA"),
        file.data.is_some(),
    );
    pick(
        "listen",
        from_cli(&args.listen, "PACTUM_LISTEN"),
        file.listen.is_some(),
    );
    pick(
        "server",
        from_cli(&server, "PACTUM_SERVER"),
        file.server.is_some(),
    );
    pick(
        "token",
        from_cli(&token, "PACTUM_TOKEN"),
        file.token.is_some(),
    );
    pick(
        "limits.token_requests_per_s",
        from_cli(&args.token_requests_per_s, "PACTUM_TOKEN_REQUESTS_PER_S"),
        file.limits.token_requests_per_s.is_some(),
    );
    pick(
        "limits.oracle_requests_per_s",
        None,
        file.limits.oracle_requests_per_s.is_some(),
    );
    pick(
        "limits.batch_requests_max",
        from_cli(&args.batch_requests_max, "PACTUM_BATCH_REQUESTS_MAX"),
        file.limits.batch_requests_max.is_some(),
    );
    pick(
        "limits.body_bytes_max",
        None,
        file.limits.body_bytes_max.is_some(),
    );
    pick(
        "limits.args_bytes_max",
        None,
        file.limits.args_bytes_max.is_some(),
    );
    pick(
        "limits.text_bytes_max",
        None,
        file.limits.text_bytes_max.is_some(),
    );
    let defaults = Limits::default();
    let limits = Limits {
        body_bytes_max: file
            .limits
            .body_bytes_max
            .unwrap_or(defaults.body_bytes_max),
        batch_requests_max: args
            .batch_requests_max
            .or(file.limits.batch_requests_max)
            .unwrap_or(defaults.batch_requests_max),
        args_bytes_max: file
            .limits
            .args_bytes_max
            .unwrap_or(defaults.args_bytes_max),
        text_bytes_max: file
            .limits
            .text_bytes_max
            .unwrap_or(defaults.text_bytes_max),
        token_requests_per_s: args
            .token_requests_per_s
            .or(file.limits.token_requests_per_s)
            .unwrap_or(defaults.token_requests_per_s),
        oracle_requests_per_s: file
            .limits
            .oracle_requests_per_s
            .unwrap_or(defaults.oracle_requests_per_s),
        request_timeout_ms: file
            .limits
            .request_timeout_ms
            .unwrap_or(defaults.request_timeout_ms),
        suite_bytes_max: file
            .limits
            .suite_bytes_max
            .unwrap_or(defaults.suite_bytes_max),
        trials_running_max: file
            .limits
            .trials_running_max
            .unwrap_or(defaults.trials_running_max),
        schedule_check_ms: file
            .limits
            .schedule_check_ms
            .unwrap_or(defaults.schedule_check_ms),
        signals_check_ms: file
            .limits
            .signals_check_ms
            .unwrap_or(defaults.signals_check_ms),
        trial_cadence_critical_ms: file
            .limits
            .trial_cadence_critical_ms
            .unwrap_or(defaults.trial_cadence_critical_ms),
        trial_cadence_high_ms: file
            .limits
            .trial_cadence_high_ms
            .unwrap_or(defaults.trial_cadence_high_ms),
        trial_cadence_medium_ms: file
            .limits
            .trial_cadence_medium_ms
            .unwrap_or(defaults.trial_cadence_medium_ms),
        trial_cadence_low_ms: file
            .limits
            .trial_cadence_low_ms
            .unwrap_or(defaults.trial_cadence_low_ms),
    };
    pick("notify.webhooks", None, !file.notify.webhooks.is_empty());
    let notify = notify_config(file.notify)?;
    Ok(Effective {
        data: args
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
        listen: match args.listen.or(file.listen) {
            Some(listen) => listen,
            None => LISTEN_DEFAULT.parse().context("default listen address")?,
        },
        limits,
        server: server
            .map(str::to_string)
            .or(file.server)
            .unwrap_or_else(|| SERVER_DEFAULT.to_string()),
        token: token.map(str::to_string).or(file.token),
        notify,
        sources,
    })
}

fn notify_config(file: FileNotify) -> anyhow::Result<server::notify::NotifyConfig> {
    let defaults = server::notify::NotifyConfig::default();
    let mut webhooks = Vec::new();
    for (idx, hook) in file.webhooks.into_iter().enumerate() {
        let secret = match (hook.secret, hook.secret_env) {
            (Some(secret), None) => secret,
            (None, Some(name)) => std::env::var(&name).with_context(|| {
                format!(
                    "notify.webhooks[{idx}]: environment variable `{name}` (secret_env) is not set"
                )
            })?,
            _ => bail!("notify.webhooks[{idx}]: give exactly one of `secret` and `secret_env`"),
        };
        let webhook = server::notify::Webhook {
            url: hook.url,
            secret,
        };
        server::notify::validate(&webhook)
            .map_err(|reason| anyhow::anyhow!("notify.webhooks[{idx}]: {reason}"))?;
        webhooks.push(webhook);
    }
    let attempts_max = file.attempts_max.unwrap_or(defaults.attempts_max);
    if !(1..=20).contains(&attempts_max) {
        bail!("notify.attempts_max must be between 1 and 20");
    }
    Ok(server::notify::NotifyConfig {
        webhooks,
        attempts_max,
        backoff_initial_ms: file
            .backoff_initial_ms
            .unwrap_or(defaults.backoff_initial_ms),
        attempt_timeout_ms: file
            .attempt_timeout_ms
            .unwrap_or(defaults.attempt_timeout_ms),
    })
}

/// A secret shown by its first characters only.
pub fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(8).collect();
    format!("{shown}… (masked)")
}

impl Effective {
    /// `key = value  (source)` lines, secrets masked.
    pub fn show(&self) -> Vec<String> {
        let value = |key: &str| -> String {
            match key {
                "data" => self.data.display().to_string(),
                "listen" => self.listen.to_string(),
                "server" => self.server.clone(),
                "token" => self
                    .token
                    .as_deref()
                    .map(mask)
                    .unwrap_or_else(|| "(none)".into()),
                "limits.token_requests_per_s" => self.limits.token_requests_per_s.to_string(),
                "limits.oracle_requests_per_s" => self.limits.oracle_requests_per_s.to_string(),
                "limits.batch_requests_max" => self.limits.batch_requests_max.to_string(),
                "limits.body_bytes_max" => self.limits.body_bytes_max.to_string(),
                "limits.args_bytes_max" => self.limits.args_bytes_max.to_string(),
                "limits.text_bytes_max" => self.limits.text_bytes_max.to_string(),
                "limits.request_timeout_ms" => self.limits.request_timeout_ms.to_string(),
                "notify.webhooks" => self
                    .notify
                    .webhooks
                    .iter()
                    .map(|hook| hook.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            }
        };
        self.sources
            .iter()
            .map(|(key, source)| format!("{key} = {}  ({})", value(key), source.name()))
            .collect()
    }
}
