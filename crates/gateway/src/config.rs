//! What a gateway is told: the agent, the mode, its upstreams and its limits. Read from
//! flags or from a config file (`pactum gateway --config gateway.yaml`); the file's keys are
//! the fields of [`FileConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Most upstream servers one gateway fronts.
pub const UPSTREAMS_MAX: usize = 32;
/// Longest upstream name (it prefixes tool names: `github__create_issue`).
pub const UPSTREAM_NAME_BYTES_MAX: usize = 32;
/// Separator between an upstream's name and its tool's when tools are namespaced.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Whether verdicts are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny, halted and review are enforced: the call is not forwarded.
    Enforce,
    /// Shadow mode: every call is decided and recorded, and forwarded whatever the verdict.
    Observe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "enforce" => Some(Mode::Enforce),
            "observe" => Some(Mode::Observe),
            _ => None,
        }
    }
}

/// What happens to a tool result in which the detectors found a high-confidence injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlaggedResults {
    /// Passed on as it is (the session is tainted either way).
    #[default]
    Pass,
    /// Passed on behind a notice that it is untrusted data, not instructions.
    Mark,
    /// Replaced by an error naming the finding.
    Withhold,
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum Transport {
    /// A command the gateway starts, speaking MCP on its stdin and stdout.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        cwd: Option<PathBuf>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

/// One upstream MCP server. Unknown keys are refused by [`Transport`] (serde cannot refuse them
/// on a struct with a flattened member).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Upstream {
    pub name: String,
    #[serde(flatten)]
    pub transport: Transport,
}

/// Errors in a gateway's configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("upstream `{0}` must look like NAME=stdio:COMMAND ARGS... or NAME=http:URL")]
    UpstreamSyntax(String),
    #[error("upstream name `{0}` must be 1 to {UPSTREAM_NAME_BYTES_MAX} characters of a-z, 0-9, - and _ (no `__`)")]
    UpstreamName(String),
    #[error("upstream `{0}` is named twice")]
    UpstreamTwice(String),
    #[error("no upstream: give at least one --upstream (or `upstreams:` in the config file)")]
    NoUpstream,
    #[error("{0} upstreams; the limit is {UPSTREAMS_MAX}")]
    TooManyUpstreams(usize),
    #[error("upstream `{name}`: URL `{url}` must start with http:// or https://")]
    UpstreamUrl { name: String, url: String },
    #[error("upstream `{0}`: the stdio command is empty")]
    EmptyCommand(String),
}

impl Upstream {
    /// Parses `NAME=stdio:COMMAND ARGS...` (split on white space; quote with `'` or `"`) or
    /// `NAME=http:URL`. The name may be left out (`stdio:...`) when there is one upstream: it
    /// is then taken from the command or host.
    pub fn parse(spec: &str) -> Result<Upstream, ConfigError> {
        let syntax = || ConfigError::UpstreamSyntax(spec.to_string());
        let (name, rest) = match spec.split_once('=') {
            Some((name, rest)) if !name.contains(':') => (Some(name.to_string()), rest),
            _ => (None, spec),
        };
        let (kind, target) = rest.split_once(':').ok_or_else(syntax)?;
        let transport = match kind {
            "stdio" => {
                let words = split_words(target).ok_or_else(syntax)?;
                let (command, args) = words.split_first().ok_or_else(syntax)?;
                Transport::Stdio {
                    command: command.clone(),
                    args: args.to_vec(),
                    env: BTreeMap::new(),
                    cwd: None,
                }
            }
            "http" | "https" => {
                let url = if kind == "https" {
                    format!("https:{target}")
                } else if target.starts_with("//") {
                    format!("http:{target}")
                } else {
                    target.to_string()
                };
                Transport::Http {
                    url,
                    headers: BTreeMap::new(),
                }
            }
            _ => return Err(syntax()),
        };
        let name = match name {
            Some(name) => name,
            None => default_name(&transport),
        };
        let upstream = Upstream { name, transport };
        upstream.check()?;
        Ok(upstream)
    }

    /// Checks the name and the target.
    pub fn check(&self) -> Result<(), ConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= UPSTREAM_NAME_BYTES_MAX
            && !self.name.contains(NAMESPACE_SEPARATOR)
            && self.name.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
            });
        if !name_ok {
            return Err(ConfigError::UpstreamName(self.name.clone()));
        }
        match &self.transport {
            Transport::Stdio { command, .. } if command.trim().is_empty() => {
                Err(ConfigError::EmptyCommand(self.name.clone()))
            }
            Transport::Http { url, .. }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Err(ConfigError::UpstreamUrl {
                    name: self.name.clone(),
                    url: url.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether the upstream runs on this machine (its paths are this machine's paths).
    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::Stdio { .. })
    }
}

/// A name from the command's file name or the URL's host: `npx -y @scope/server-x` -> `x`.
fn default_name(transport: &Transport) -> String {
    let raw = match transport {
        Transport::Stdio { command, args, .. } => args
            .iter()
            .rev()
            .find(|arg| !arg.starts_with('-') && arg.contains("server"))
            .cloned()
            .unwrap_or_else(|| command.clone()),
        Transport::Http { url, .. } => url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or("upstream")
            .to_string(),
    };
    let base = raw.rsplit('/').next().unwrap_or(&raw);
    let base = base.split('@').next().unwrap_or(base);
    let base = base
        .strip_prefix("mcp-server-")
        .or_else(|| base.strip_prefix("server-"))
        .unwrap_or(base);
    let mut name: String = base
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(UPSTREAM_NAME_BYTES_MAX)
        .collect();
    while name.contains(NAMESPACE_SEPARATOR) {
        name = name.replace(NAMESPACE_SEPARATOR, "_");
    }
    if name.is_empty() {
        "upstream".to_string()
    } else {
        name
    }
}

/// Splits a command line on white space, with `'...'` and `"..."` quoting. `None` when a
/// quote is left open.
pub fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(current);
    }
    Some(words)
}

/// Whether agent-facing tool names carry their upstream's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Namespacing {
    /// Prefixed when there is more than one upstream.
    #[default]
    Auto,
    Always,
    Never,
}

/// Limits and timings, each named with its unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayLimits {
    /// How long a call the guard sent to `review` waits for a person before it is refused.
    pub review_timeout_ms: u64,
    /// How often a held call asks whether it was approved.
    pub review_poll_ms: u64,
    /// Deadline on each call to Pactum's API (decide, outcome): past it, `enforce` refuses.
    pub decide_timeout_ms: u64,
    /// Deadline on each forwarded call to an upstream.
    pub upstream_timeout_ms: u64,
    /// Largest JSON-RPC message accepted from the agent over HTTP, and largest tool result
    /// scanned and passed on.
    pub message_bytes_max: usize,
    /// Most tool calls in flight at once; more are refused at once, not queued.
    pub calls_in_flight_max: usize,
    /// How often the active pact is checked for a new version.
    pub pact_poll_ms: u64,
    /// First and longest wait before a crashed stdio upstream is started again.
    pub restart_backoff_ms_min: u64,
    pub restart_backoff_ms_max: u64,
    /// Most HTTP sessions open at once.
    pub sessions_max: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            review_timeout_ms: 300_000,
            review_poll_ms: 250,
            decide_timeout_ms: 5_000,
            upstream_timeout_ms: 60_000,
            message_bytes_max: 4 * 1024 * 1024,
            calls_in_flight_max: 64,
            pact_poll_ms: 2_000,
            restart_backoff_ms_min: 200,
            restart_backoff_ms_max: 30_000,
            sessions_max: 1_000,
        }
    }
}

/// The whole configuration of a running gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The agent whose pact governs the calls.
    pub agent: String,
    pub mode: Mode,
    pub upstreams: Vec<Upstream>,
    pub namespacing: Namespacing,
    pub flagged_results: FlaggedResults,
    pub limits: GatewayLimits,
}

impl GatewayConfig {
    /// Checks upstream names and counts.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.upstreams.is_empty() {
            return Err(ConfigError::NoUpstream);
        }
        if self.upstreams.len() > UPSTREAMS_MAX {
            return Err(ConfigError::TooManyUpstreams(self.upstreams.len()));
        }
        for (idx, upstream) in self.upstreams.iter().enumerate() {
            upstream.check()?;
            if self.upstreams[..idx]
                .iter()
                .any(|other| other.name == upstream.name)
            {
                return Err(ConfigError::UpstreamTwice(upstream.name.clone()));
            }
        }
        Ok(())
    }

    /// Whether tool names are prefixed with their upstream's name.
    pub fn namespaced(&self) -> bool {
        match self.namespacing {
            Namespacing::Auto => self.upstreams.len() > 1,
            Namespacing::Always => true,
            Namespacing::Never => false,
        }
    }
}

/// The config file (`--config gateway.yaml`): every key optional; flags override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub agent: Option<String>,
    /// A Pactum server's base URL.
    pub server: Option<String>,
    /// The gateway's own token on that server (an agent token for `agent`, or admin).
    pub token: Option<String>,
    /// A data directory, for one machine without a server.
    pub data: Option<PathBuf>,
    /// The pact file activated in that data directory.
    pub pact: Option<PathBuf>,
    pub mode: Option<Mode>,
    /// Serve Streamable HTTP at this address instead of stdio.
    pub listen: Option<String>,
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    pub namespacing: Option<Namespacing>,
    pub flagged_results: Option<FlaggedResults>,
    pub limits: Option<GatewayLimits>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_specs_parse() {
        let upstream =
            Upstream::parse("fs=stdio:npx -y '@modelcontextprotocol/server-filesystem' /tmp/a b")
                .unwrap();
        assert_eq!(upstream.name, "fs");
        assert_eq!(
            upstream.transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec![
                    "-y".into(),
                    "@modelcontextprotocol/server-filesystem".into(),
                    "/tmp/a".into(),
                    "b".into()
                ],
                env: BTreeMap::new(),
                cwd: None
            }
        );
        let upstream = Upstream::parse("gh=http:http://127.0.0.1:9/mcp").unwrap();
        assert_eq!(upstream.name, "gh");
        assert!(!upstream.is_local());
        let unnamed =
            Upstream::parse("stdio:npx -y @modelcontextprotocol/server-filesystem /tmp").unwrap();
        assert_eq!(unnamed.name, "filesystem");
        let unnamed = Upstream::parse("http://example.com:8080/mcp").unwrap();
        assert_eq!(unnamed.name, "example.com".replace('.', ""));
    }

    #[test]
    fn bad_upstreams_are_refused_with_their_text() {
        assert_eq!(
            Upstream::parse("fs=ftp:x"),
            Err(ConfigError::UpstreamSyntax("fs=ftp:x".into()))
        );
        assert_eq!(
            Upstream::parse("Bad Name=stdio:x"),
            Err(ConfigError::UpstreamName("Bad Name".into()))
        );
        assert_eq!(
            Upstream::parse("a__b=stdio:x"),
            Err(ConfigError::UpstreamName("a__b".into()))
        );
        assert_eq!(
            Upstream::parse("fs=stdio:'open"),
            Err(ConfigError::UpstreamSyntax("fs=stdio:'open".into()))
        );
        assert_eq!(
            Upstream::parse("fs=stdio:  "),
            Err(ConfigError::UpstreamSyntax("fs=stdio:  ".into()))
        );
    }

    #[test]
    fn upstreams_in_a_config_file_deserialize_and_unknown_keys_are_refused() {
        let file: FileConfig = serde_json::from_value(serde_json::json!({
            "agent": "a",
            "upstreams": [
                { "name": "fs", "transport": "stdio", "command": "node", "args": ["x.js", "/tmp"] },
                { "name": "gh", "transport": "http", "url": "http://127.0.0.1:9/mcp" }
            ]
        }))
        .unwrap();
        assert_eq!(file.upstreams.len(), 2);
        assert_eq!(file.upstreams[0].name, "fs");
        let bad = serde_json::from_value::<FileConfig>(serde_json::json!({
            "upstreams": [{ "name": "fs", "transport": "stdio", "command": "node", "argz": [] }]
        }));
        assert!(bad.unwrap_err().to_string().contains("argz"));
    }

    #[test]
    fn words_split_with_quotes() {
        assert_eq!(
            split_words(r#"a "b c" 'd"e' ''"#),
            Some(vec!["a".into(), "b c".into(), "d\"e".into(), "".into()])
        );
        assert_eq!(split_words("a 'b"), None);
    }
}
