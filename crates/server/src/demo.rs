//! `pactum serve --demo`: registers the example agent `acme/support-bot` with the example
//! support-agent pact and activates it, through the API itself (so the demo records are the
//! same records a real setup writes). Safe to run on every start.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt as _;

use crate::app::AppState;
use crate::auth::Role;
use crate::wire::now_ms;

/// The demo agent's id.
pub const DEMO_AGENT: &str = "acme/support-bot";
/// The demo pact: `examples/support-agent/pact.yaml`.
pub const DEMO_PACT: &str = include_str!("../../../examples/support-agent/pact.yaml");

/// Errors setting up the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step was refused.
    #[error("demo setup: {step} answered {status}: {body}")]
    Step {
        /// The step.
        step: &'static str,
        /// Its status.
        status: StatusCode,
        /// Its body.
        body: String,
    },
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

async fn call(
    app: &AppState,
    token: &str,
    step: &'static str,
    method: &str,
    uri: &str,
    body: String,
    ok: &[StatusCode],
) -> Result<serde_json::Value, DemoError> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .map_err(|err| DemoError::Step {
            step,
            status: StatusCode::BAD_REQUEST,
            body: err.to_string(),
        })?;
    let response = crate::router(app.clone())
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !ok.contains(&status) {
        return Err(DemoError::Step {
            step,
            status,
            body: text,
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Registers and activates the demo agent unless it already is.
pub async fn install(app: &AppState) -> Result<(), DemoError> {
    let (secret, row) =
        app.registry()
            .create_token("demo-setup", Role::Admin.as_str(), None, now_ms())?;
    let result = install_with(app, &secret).await;
    app.registry().revoke_token(&row.id, now_ms())?;
    app.forget_cached_tokens();
    result
}

async fn install_with(app: &AppState, token: &str) -> Result<(), DemoError> {
    let register = json!({ "id": DEMO_AGENT, "owner": "support-platform@acme.example", "class": "customer-support", "tier": "high" });
    call(
        app,
        token,
        "register the demo agent",
        "POST",
        "/v1/agents",
        register.to_string(),
        &[StatusCode::CREATED, StatusCode::CONFLICT],
    )
    .await?;
    let uploaded = call(
        app,
        token,
        "upload the demo pact",
        "POST",
        &format!("/v1/agents/{DEMO_AGENT}/pacts"),
        DEMO_PACT.to_string(),
        &[StatusCode::CREATED, StatusCode::OK],
    )
    .await?;
    if uploaded["active"] != json!(true) {
        let version = uploaded["version"].as_u64().unwrap_or(0);
        call(
            app,
            token,
            "activate the demo pact",
            "POST",
            &format!("/v1/agents/{DEMO_AGENT}/pacts/{version}/activate"),
            String::new(),
            &[StatusCode::OK],
        )
        .await?;
    }
    Ok(())
}
