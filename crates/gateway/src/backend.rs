//! The gateway's only way to decide anything: Pactum's HTTP API. Either a server over a socket
//! (`--server URL`) or the same router in this process (`--data DIR`, one machine). Both take
//! the same requests, so there is one decide path, the server's.

use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Largest API response body the gateway reads, in bytes.
pub const API_RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Where the API is.
#[derive(Clone)]
pub enum Api {
    /// A `pactum serve` reached over HTTP at this base URL (no trailing `/`).
    Remote {
        base: String,
        client: reqwest::Client,
    },
    /// The router of a server opened in this process.
    Local(axum::Router),
}

/// What went wrong asking the API.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Nothing answered, or the answer could not be read.
    #[error("Pactum server unreachable: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("Pactum server did not answer within {0} ms")]
    Timeout(u64),
    /// An RFC 9457 problem from the server.
    #[error("{detail} ({status} {code})")]
    Problem {
        status: u16,
        code: String,
        detail: String,
    },
}

impl BackendError {
    /// Whether the server was not there to ask (as opposed to answering no).
    pub fn is_unavailable(&self) -> bool {
        match self {
            BackendError::Unreachable(_) | BackendError::Timeout(_) => true,
            BackendError::Problem { status, .. } => *status >= 500,
        }
    }
}

/// A client of the API with a deadline on every call.
#[derive(Clone)]
pub struct Backend {
    api: Api,
    timeout_ms: u64,
}

impl Backend {
    pub fn new(api: Api, timeout_ms: u64) -> Backend {
        Backend { api, timeout_ms }
    }

    /// A backend for a server at `base` (`http://host:port`).
    pub fn remote(base: &str, timeout_ms: u64) -> Result<Backend, BackendError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(timeout_ms))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|err| BackendError::Unreachable(err.to_string()))?;
        Ok(Backend::new(
            Api::Remote {
                base: base.trim_end_matches('/').to_string(),
                client,
            },
            timeout_ms,
        ))
    }

    /// One call: `method path` with `token`, an optional JSON body; the JSON answer of a 2xx.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, BackendError> {
        let body = match body {
            Some(value) => Some((
                serde_json::to_vec(value)
                    .map_err(|err| BackendError::Unreachable(err.to_string()))?,
                "application/json",
            )),
            None => None,
        };
        self.call_body(method, path, token, body).await
    }

    /// One call with a body of any type (a pact's YAML): `(bytes, content type)`.
    pub async fn call_body(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Value, BackendError> {
        let deadline = Duration::from_millis(self.timeout_ms);
        match tokio::time::timeout(deadline, self.call_inner(method, path, token, body)).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout(self.timeout_ms)),
        }
    }

    async fn call_inner(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Value, BackendError> {
        let (status, bytes) = match &self.api {
            Api::Remote { base, client } => {
                let method = reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|err| BackendError::Unreachable(err.to_string()))?;
                let mut request = client
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token);
                if let Some((bytes, content_type)) = body {
                    request = request.header("content-type", content_type).body(bytes);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|err| BackendError::Unreachable(describe(err)))?;
                let status = response.status().as_u16();
                let bytes = read_limited(response).await?;
                (status, bytes)
            }
            Api::Local(router) => {
                let mut builder = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"));
                let bytes = match body {
                    Some((bytes, content_type)) => {
                        builder = builder.header("content-type", content_type);
                        bytes
                    }
                    None => Vec::new(),
                };
                let request = builder
                    .body(Body::from(bytes))
                    .map_err(|err| BackendError::Unreachable(err.to_string()))?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(|err| BackendError::Unreachable(err.to_string()))?;
                let status = response.status().as_u16();
                let collected =
                    http_body_util::Limited::new(response.into_body(), API_RESPONSE_BYTES_MAX)
                        .collect()
                        .await
                        .map_err(|err| BackendError::Unreachable(err.to_string()))?;
                (status, collected.to_bytes().to_vec())
            }
        };
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|err| {
                BackendError::Unreachable(format!("the answer to {path} is not JSON: {err}"))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(BackendError::Problem {
            status,
            code: value
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            detail: value
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail")
                .to_string(),
        })
    }
}

/// reqwest's errors name the URL, which is already in the configuration; the causes say why.
fn describe(err: reqwest::Error) -> String {
    let connect = err.is_connect();
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if connect {
        text = format!("cannot connect ({text})");
    }
    text
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, BackendError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| BackendError::Unreachable(err.to_string()))?
    {
        if bytes.len() + chunk.len() > API_RESPONSE_BYTES_MAX {
            return Err(BackendError::Unreachable(format!(
                "the answer is over {API_RESPONSE_BYTES_MAX} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Percent-encodes one path segment (agent ids keep their `/`, as the API's routes expect).
pub fn agent_path(agent: &str) -> String {
    let mut out = String::with_capacity(agent.len());
    for byte in agent.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'/' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
