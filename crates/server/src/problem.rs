//! Errors as RFC 9457 problem details. Every error a handler returns is an [`ApiError`] with a
//! stable `code`; 5xx answers carry a generic message and the cause goes to the server log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answered as a problem detail.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, kebab-case code (also the last segment of `type`).
    pub code: &'static str,
    /// Human-readable explanation specific to this occurrence.
    pub detail: String,
    /// Extension members (for example `diagnostics`).
    pub extensions: Option<Value>,
}

impl ApiError {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extensions: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 with `code`.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500 `internal`: the cause is logged, the caller sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("pactum serve: internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the cause is in the server log",
        )
    }

    /// 503 `unavailable`: the evidence log or registry cannot take writes; nothing was acknowledged.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        eprintln!("pactum serve: storage unavailable: {cause}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage-unavailable",
            "the evidence log could not record this; nothing was acknowledged",
        )
    }

    /// Adds extension members.
    pub fn with_extensions(mut self, extensions: Value) -> Self {
        self.extensions = Some(extensions);
        self
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": format!("https://pactum.dev/problems/{}", self.code),
            "title": title(self.status),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let (Some(Value::Object(extra)), Some(object)) = (&self.extensions, body.as_object_mut())
        {
            for (name, value) in extra {
                object.insert(name.clone(), value.clone());
            }
        }
        body
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.status, self.body())
    }
}

/// A problem-detail response from a prepared body.
pub fn problem_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, format!("{body}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> Self {
        match err {
            store::StoreError::NotFound { index, size } => Self::not_found(
                "record-not-found",
                format!("no record at index {index}; the log has {size} records"),
            ),
            store::StoreError::Empty => {
                Self::not_found("log-empty", "the log is empty: nothing to prove or export")
            }
            store::StoreError::Merkle(err) => Self::bad_request("bad-range", err.to_string()),
            store::StoreError::WriterStopped(_) | store::StoreError::Sqlite(_) => {
                Self::unavailable(err)
            }
            other => Self::internal(other),
        }
    }
}

impl From<crate::registry::RegistryError> for ApiError {
    fn from(err: crate::registry::RegistryError) -> Self {
        Self::internal(err)
    }
}
