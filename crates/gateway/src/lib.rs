//! The MCP gateway: an MCP server towards the agent and an MCP client towards its upstream MCP
//! servers, with Pactum in between. Every `tools/call` is decided through Pactum's API before it
//! is forwarded, held while a person reviews it, and its result scanned and recorded as the
//! call's outcome before the agent reads it. The MCP types and transports are the official Rust
//! SDK's (`rmcp`); the decision is the server's (`POST /v1/decide`), never a second one here.
//!
//! - [`config`]: upstreams, mode, limits, the config file.
//! - [`backend`]: Pactum's API, over HTTP or as a router in this process.
//! - [`upstream`]: one upstream MCP server (stdio child or Streamable HTTP), restarted when it dies.
//! - [`proxy`]: the agent-facing server: the offered tools, the call flow.
//! - [`paths`]: file-path arguments resolved on this machine (symlinks) before they are decided.

pub mod backend;
pub mod config;
pub mod paths;
pub mod proxy;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub use backend::{Api, Backend, BackendError};
pub use config::{
    FileConfig, FlaggedResults, GatewayConfig, GatewayLimits, Mode, Namespacing, Transport,
    Upstream,
};
pub use proxy::{Session, Shared, StartError};

/// The path the Streamable HTTP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";
/// Most bearer tokens whose check is remembered.
pub const TOKENS_CACHED_MAX: usize = 1_024;
/// How long a token's check is remembered.
pub const TOKEN_CHECK_TTL: Duration = Duration::from_secs(30);

/// Errors running a gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the MCP session over stdio: {0}")]
    Stdio(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// Serves one agent over stdin/stdout until its MCP host closes them.
pub async fn run_stdio(shared: Arc<Shared>) -> Result<(), GatewayError> {
    let background = tokio::spawn(shared.clone().run_background());
    let served = Session::new(shared.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| GatewayError::Stdio(err.to_string()));
    let result = match served {
        Ok(running) => running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|err| GatewayError::Stdio(err.to_string())),
        Err(err) => Err(err),
    };
    background.abort();
    shared.close().await;
    result
}

/// Serves Streamable HTTP at `http://ADDR/mcp` until `shutdown` is cancelled. Each request
/// carries `Authorization: Bearer <token>`: a token the server takes for this agent's
/// decisions (role `agent`, bound to it); calls are decided with the client's own token.
pub async fn run_http(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    let addr = listener.local_addr().map_err(GatewayError::Serve)?;
    let background = tokio::spawn(shared.clone().run_background());
    let router = http_router(shared.clone(), addr, shutdown.clone());
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(GatewayError::Serve);
    background.abort();
    shared.close().await;
    served
}

/// The HTTP side: the MCP endpoint behind the bearer check.
pub fn http_router(
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> axum::Router {
    let limits = shared.config.limits.clone();
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        hosts.push(addr.ip().to_string());
        hosts.push(addr.to_string());
    }
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(limits.message_bytes_max)
        .with_cancellation_token(shutdown.child_token());
    config = if addr.ip().is_unspecified() {
        // Listening on every address: the Host header is whatever name reaches this machine;
        // the bearer token is what keeps others out.
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    let open = Arc::new(AtomicUsize::new(0));
    let factory_shared = shared.clone();
    let sessions_max = limits.sessions_max;
    let service = StreamableHttpService::new(
        move || {
            if open.load(Ordering::Relaxed) >= sessions_max {
                return Err(std::io::Error::other(format!(
                    "{sessions_max} MCP sessions are open already (sessions_max)"
                )));
            }
            Ok(Session::counted(factory_shared.clone(), open.clone()))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let checks = Arc::new(TokenChecks {
        shared,
        seen: Mutex::new(HashMap::new()),
    });
    axum::Router::new()
        .route_service(MCP_PATH, service)
        .layer(axum::middleware::from_fn_with_state(checks, require_token))
}

/// A token's check: allowed, or why not; and when it was made.
type TokenCheck = (Result<(), String>, Instant);

/// Remembered answers to "may this token act for the agent".
struct TokenChecks {
    shared: Arc<Shared>,
    /// sha256 of the token -> (allowed, when checked); at most [`TOKENS_CACHED_MAX`].
    seen: Mutex<HashMap<[u8; 32], TokenCheck>>,
}

impl TokenChecks {
    async fn check(&self, token: &str) -> Result<(), (StatusCode, String)> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((answer, at)) = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            if at.elapsed() < TOKEN_CHECK_TTL {
                return answer.clone().map_err(|text| (StatusCode::FORBIDDEN, text));
            }
        }
        let answer = match self.shared.check_agent_token(token).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_unavailable() => {
                // Not remembered: the next request asks again.
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Pactum could not check the token: {err}"),
                ));
            }
            Err(BackendError::Problem { status: 401, .. }) => {
                return Err((StatusCode::UNAUTHORIZED, "unknown or revoked token".into()))
            }
            Err(err) => Err(err.to_string()),
        };
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() >= TOKENS_CACHED_MAX {
            seen.retain(|_, (_, at)| at.elapsed() < TOKEN_CHECK_TTL);
            if seen.len() >= TOKENS_CACHED_MAX {
                seen.clear();
            }
        }
        seen.insert(key, (answer.clone(), Instant::now()));
        answer.map_err(|text| (StatusCode::FORBIDDEN, text))
    }
}

async fn require_token(
    State(checks): State<Arc<TokenChecks>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_string);
    let Some(token) = token else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "this MCP endpoint takes `Authorization: Bearer <agent token>`".into(),
        );
    };
    match checks.check(&token).await {
        Ok(()) => next.run(request).await,
        Err((status, text)) => problem(status, text),
    }
}

fn problem(status: StatusCode, detail: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        })
        .to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = header::HeaderValue::from_str("Bearer realm=\"pactum\"") {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}
