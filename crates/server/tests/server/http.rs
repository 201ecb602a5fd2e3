//! Calling the router in process (`tower::ServiceExt::oneshot`), shared by every test module.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;
use server::AppState;
use tower::ServiceExt as _;

/// An answer: its status, content type and body text.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    /// The problem detail's stable `code`, or empty.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A JSON request, with a bearer token when given.
pub fn request(method: &str, uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// One call through `router`. An event stream never ends: only its status and type are read.
pub async fn call_router(
    router: axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let response = router
        .oneshot(request(method, uri, token, body))
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type == "text/event-stream" {
        return Reply {
            status,
            content_type,
            text: String::new(),
        };
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        content_type,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// One call through the app's router.
pub async fn call(
    app: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    call_router(server::router(app.clone()), method, uri, token, body).await
}
