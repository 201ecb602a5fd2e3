//! JSON bodies: read within the body limit and parsed with the path of the first problem, so
//! malformed JSON, unknown fields and wrong types become 4xx problem details, never 500s.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::problem::ApiError;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Reads the whole body, answering 413 `body-too-large` over the limit.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "the request body is over the server's body_bytes_max",
                )
            } else {
                ApiError::bad_request("unreadable-body", rejection.body_text())
            }
        })
}

/// Parses JSON text into `T`: 400 `malformed-json` for syntax, 422 `invalid-field` (with the
/// `path` of the offending member) for shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            ApiError::unprocessable("invalid-field", format!("at `{path}`: {inner}"))
                .with_extensions(json!({ "path": path }))
        } else {
            ApiError::bad_request(
                "malformed-json",
                format!("the body is not valid JSON: {inner}"),
            )
        }
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::bad_request("malformed-json", format!("trailing data: {err}")))?;
    Ok(value)
}

/// A JSON response with a status; the body ends with a newline so `curl` output reads well.
pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, format!("{value}\n")).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}
