//! Connections to upstream MCP servers: started over stdio or reached over Streamable HTTP,
//! their tool lists, and a crashed stdio server started again with backoff.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use tokio::sync::{Notify, RwLock};

use crate::config::{Transport, Upstream};

/// Most tools one upstream may list; more is refused (a runaway or hostile server).
pub const UPSTREAM_TOOLS_MAX: usize = 1_000;

/// Receives what an upstream sends on its own: a changed tool list.
#[derive(Clone)]
pub struct UpstreamHandler {
    changed: Arc<Notify>,
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("pactum-gateway", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

type Service = RunningService<RoleClient, UpstreamHandler>;

/// One upstream and its live connection.
pub struct Connection {
    pub spec: Upstream,
    service: RwLock<Option<Service>>,
    /// The tools it listed last.
    tools: RwLock<Vec<Tool>>,
    restarting: AtomicBool,
    changed: Arc<Notify>,
}

/// Why an upstream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream `{name}` could not be started: {reason}")]
    Start { name: String, reason: String },
    #[error("upstream `{0}` is not connected (it is being started again)")]
    Down(String),
    #[error("upstream `{name}`: {reason}")]
    Call { name: String, reason: String },
    #[error("upstream `{name}` lists {count} tools; the limit is {UPSTREAM_TOOLS_MAX}")]
    TooManyTools { name: String, count: usize },
}

impl Connection {
    /// A connection not yet made; `changed` is woken when its tool list changes.
    pub fn new(spec: Upstream, changed: Arc<Notify>) -> Connection {
        Connection {
            spec,
            service: RwLock::new(None),
            tools: RwLock::new(Vec::new()),
            restarting: AtomicBool::new(false),
            changed,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Starts (or reaches) the upstream and lists its tools.
    pub async fn connect(&self) -> Result<(), UpstreamError> {
        let service = start(&self.spec, self.changed.clone()).await?;
        *self.service.write().await = Some(service);
        self.refresh_tools().await?;
        Ok(())
    }

    /// A handle for requests, if connected.
    pub async fn peer(&self) -> Result<Peer<RoleClient>, UpstreamError> {
        let guard = self.service.read().await;
        match guard.as_ref() {
            Some(service) if !service.is_closed() => Ok(service.peer().clone()),
            _ => Err(UpstreamError::Down(self.spec.name.clone())),
        }
    }

    /// Whether the connection is gone (a stdio server exited, an HTTP session ended).
    pub async fn is_down(&self) -> bool {
        match self.service.read().await.as_ref() {
            Some(service) => service.is_closed(),
            None => true,
        }
    }

    /// Lists the tools again (after `notifications/tools/list_changed`).
    pub async fn refresh_tools(&self) -> Result<(), UpstreamError> {
        let peer = self.peer().await?;
        let tools = peer
            .list_all_tools()
            .await
            .map_err(|err| UpstreamError::Call {
                name: self.spec.name.clone(),
                reason: format!("tools/list failed: {err}"),
            })?;
        if tools.len() > UPSTREAM_TOOLS_MAX {
            return Err(UpstreamError::TooManyTools {
                name: self.spec.name.clone(),
                count: tools.len(),
            });
        }
        *self.tools.write().await = tools;
        Ok(())
    }

    /// The tools it listed last.
    pub async fn tools(&self) -> Vec<Tool> {
        self.tools.read().await.clone()
    }

    /// Starts the upstream again after it went away, waiting longer after each failure; one
    /// restart at a time. Returns once connected (then the tool list is fresh).
    pub async fn restart(&self, backoff_ms_min: u64, backoff_ms_max: u64) {
        if self.restarting.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(old) = self.service.write().await.take() {
            // Ends the child process (rmcp kills it when the service is dropped).
            let _ = old.cancel().await;
        }
        let mut wait_ms = backoff_ms_min.max(1);
        loop {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match self.connect().await {
                Ok(()) => {
                    eprintln!(
                        "pactum gateway: upstream `{}` started again",
                        self.spec.name
                    );
                    break;
                }
                Err(err) => {
                    eprintln!("pactum gateway: {err}; next try in {} ms", wait_ms * 2);
                    wait_ms = (wait_ms * 2).min(backoff_ms_max.max(1));
                }
            }
        }
        self.restarting.store(false, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Ends the connection (the child process with it).
    pub async fn close(&self) {
        if let Some(service) = self.service.write().await.take() {
            let _ = service.cancel().await;
        }
    }
}

async fn start(spec: &Upstream, changed: Arc<Notify>) -> Result<Service, UpstreamError> {
    let handler = UpstreamHandler { changed };
    let failed = |reason: String| UpstreamError::Start {
        name: spec.name.clone(),
        reason,
    };
    match &spec.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut process = tokio::process::Command::new(command);
            process.args(args).envs(env);
            if let Some(cwd) = cwd {
                process.current_dir(cwd);
            }
            // The upstream's diagnostics go to the gateway's stderr; stdout is MCP.
            let (transport, _) = TokioChildProcess::builder(process)
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|err| failed(format!("`{command}`: {err}")))?;
            handler
                .serve(transport)
                .await
                .map_err(|err| failed(err.to_string()))
        }
        Transport::Http { url, headers } => {
            let mut custom = std::collections::HashMap::new();
            let mut auth = None;
            for (name, value) in headers {
                if name.eq_ignore_ascii_case("authorization") {
                    auth = Some(value.clone());
                    continue;
                }
                let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|err| failed(format!("header `{name}`: {err}")))?;
                let header_value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|err| failed(format!("header `{name}`: {err}")))?;
                custom.insert(header_name, header_value);
            }
            let mut config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            if let Some(auth) = auth {
                // rmcp adds `Bearer ` itself.
                config = config.auth_header(auth.strip_prefix("Bearer ").unwrap_or(&auth));
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            handler
                .serve(transport)
                .await
                .map_err(|err| failed(err.to_string()))
        }
    }
}
