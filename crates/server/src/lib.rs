//! The trust service: `pactum serve`'s HTTP API on axum and tokio.
//!
//! [`AppState::open`] opens a data directory (evidence log, signing key, registry) and reloads
//! agents, active pacts, halts and restrictions; [`router`] builds the `/v1` API over it;
//! [`serve`] runs it until a shutdown signal, finishing in-flight requests. Wire types
//! ([`wire`], the handlers' request bodies) are kept apart from the domain types of `guard`,
//! `pact` and `ledger`. Every error is an RFC 9457 problem detail with a stable `code`
//! ([`problem::ApiError`]); a panic in a handler is caught and answered with 500.
//!
//! Routes and the roles that may call them:
//!
//! | route | roles |
//! |---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /v1/oracle/{agent}`, `GET /v1/openapi.json` | public |
//! | `POST /v1/agents`, `PATCH /v1/agents/{id}`, `POST /v1/agents/{id}/pacts`, `POST /v1/agents/{id}/pacts/{version}/activate`, `/v1/tokens`, `DELETE /v1/tokens/{id}` | admin |
//! | `GET /v1/agents` | admin, operator, auditor |
//! | `GET /v1/agents/{id}`, `GET /v1/agents/{id}/pacts`, `GET /v1/agents/{id}/pacts/{version-or-digest}` | admin, operator, auditor, agent (itself) |
//! | `POST /v1/agents/{id}/halt|resume|restrict|unrestrict`, `POST /v1/agents/{id}/signals` | admin, operator |
//! | `GET /v1/agents/{id}/signals` | admin, operator, auditor, agent (itself) |
//! | `POST /v1/decide`, `POST /v1/decide/batch`, `POST /v1/outcomes`, `POST /v1/scans` | admin, agent (itself) |
//! | `POST /v1/agents/{id}/tools` | admin, agent (itself) |
//! | `GET /v1/agents/{id}/tools`, `GET /v1/agents/{id}/shadow?since=` | admin, operator, auditor, agent (itself) |
//! | `POST /v1/agents/{id}/tools/{name}/accept` | admin, operator |
//! | `POST /v1/observations` | admin, operator, agent (itself) |
//! | `GET /v1/log/checkpoint`, `GET /v1/tokens/self` | every role |
//! | `GET /v1/log/records/{idx}`, `.../proof`, `GET /v1/log/consistency` | admin, operator, auditor |
//! | `POST /v1/log/bundle` | admin, auditor |
//! | `GET /v1/approvals`, `GET /v1/approvals/{verdict}` | admin, operator, auditor, agent (itself) |
//! | `POST /v1/approvals/{verdict}/approve|reject` | admin, operator |
//! | `GET /v1/events?agent=&kind=` | admin, operator, auditor; any role for its own agent |
//! | `GET /metrics` | admin, operator, auditor |
//! | `POST /v1/incidents`, `PATCH /v1/incidents/{id}`, `POST /v1/incidents/{id}/state\|changes\|approvals\|postmortem\|resume` | admin, operator |
//! | `GET /v1/incidents`, `GET /v1/incidents/{id}`, `POST /v1/incidents/{id}/bundle`, `GET /v1/program` | admin, operator, auditor |
//! | `GET /v1/clock` | every role |
//! | `POST /v1/clock` (only with `--simulated-clock`) | admin |
//! | `GET /v1/openapi.json` | public |
//! | `POST /v1/suites` | admin |
//! | `GET /v1/suites`, `GET /v1/suites/{id-or-digest}` | admin, operator, auditor |
//! | `POST /v1/trials`, `DELETE /v1/trials/{id}` | admin, operator |
//! | `GET /v1/trials?agent=`, `GET /v1/trials/{id}`, `GET /v1/trials/{id}/events` | admin, operator, auditor |

pub mod agents;
pub mod app;
mod approvals;
pub mod auth;
pub mod decide;
pub mod demo;
pub mod evidence;
pub mod incidents;
pub mod json;
pub mod notify;
pub mod observe;
pub mod outcomes;
pub mod problem;
pub mod registry;
pub mod respond;
pub mod scan;
pub mod shadow;
pub mod tokens;
pub mod tools;
pub mod trials;
pub mod watch;
pub mod wire;

use std::any::Any;
use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{any, delete, get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

pub use app::{AppConfig, AppState, Limits, OpenError, Opened, ADMIN_TOKEN_FILE};
use problem::ApiError;

/// The API's routes, without state or layers (tests add routes before [`with_layers`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(evidence::healthz))
        .route("/readyz", get(evidence::readyz))
        .route("/v1/agents", post(agents::register).get(agents::list))
        .route("/v1/agents/{*path}", any(agents::agent_path))
        .route("/v1/decide", post(decide::decide))
        .route("/v1/decide/batch", post(decide::decide_batch))
        .route(
            "/v1/outcomes",
            post(decide::outcome).layer(DefaultBodyLimit::max(scan::SCAN_BODY_BYTES_MAX)),
        )
        .route(
            "/v1/scans",
            post(scan::scan).layer(DefaultBodyLimit::max(scan::SCAN_BODY_BYTES_MAX)),
        )
        .route("/v1/observations", post(decide::observation))
        .route("/v1/log/checkpoint", get(evidence::checkpoint))
        .route("/v1/log/records/{idx}", get(evidence::record))
        .route("/v1/log/records/{idx}/proof", get(evidence::proof))
        .route("/v1/log/consistency", get(evidence::consistency))
        .route("/v1/log/bundle", post(evidence::bundle))
        .route("/v1/oracle/{*agent}", get(evidence::oracle))
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/self", get(tokens::whoami))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/{verdict}", get(approvals::show))
        .route("/v1/approvals/{verdict}/{action}", post(approvals::settle))
        .route("/v1/events", get(observe::events))
        .route("/metrics", get(observe::metrics))
        .route(
            "/v1/clock",
            get(observe::clock).post(observe::advance_clock),
        )
        .route("/v1/incidents", post(incidents::open).get(incidents::list))
        .route(
            "/v1/incidents/{id}",
            get(incidents::show).patch(incidents::update),
        )
        .route("/v1/incidents/{id}/state", post(incidents::transition))
        .route(
            "/v1/incidents/{id}/changes",
            post(incidents::operating_model_change),
        )
        .route("/v1/incidents/{id}/approvals", post(incidents::approve))
        .route("/v1/incidents/{id}/postmortem", post(incidents::postmortem))
        .route("/v1/incidents/{id}/resume", post(incidents::resume))
        .route("/v1/incidents/{id}/bundle", post(incidents::bundle))
        .route("/v1/program", get(incidents::program))
        .route("/v1/openapi.json", get(openapi))
        .route(
            "/v1/suites",
            post(trials::upload_suite)
                .get(trials::list_suites)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/suites/{*id}", get(trials::get_suite))
        .route("/v1/trials", post(trials::start).get(trials::list))
        .route("/v1/trials/{id}", get(trials::show).delete(trials::cancel))
        .route("/v1/trials/{id}/events", get(trials::events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Adds state and the cross-cutting layers: body limit, request time limit (408
/// `request-timeout`) and panic catching. Headers are bounded by hyper (100 headers, 400 KiB).
pub fn with_layers(routes: Router<AppState>, app: AppState) -> Router {
    let body_bytes_max = app.limits().body_bytes_max;
    let timeout = std::time::Duration::from_millis(app.limits().request_timeout_ms);
    routes
        .with_state(app)
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(timed_out))
                .layer(tower::timeout::TimeoutLayer::new(timeout)),
        )
        .layer(CatchPanicLayer::custom(panic_response))
}

async fn timed_out(_: tower::BoxError) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        "the request took longer than request_timeout_ms",
    )
}

/// The whole API over `app`.
pub fn router(app: AppState) -> Router {
    with_layers(routes(), app)
}

/// The OpenAPI 3.1 document of this API, hand-written; a test checks it against the routes.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    let mut response = axum::response::IntoResponse::into_response(OPENAPI);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found("no-such-route", format!("no route `{}`", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not allowed on `{}`", uri.path()),
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    axum::response::IntoResponse::into_response(ApiError::internal(format!(
        "a handler panicked: {message}"
    )))
}

/// Runs the API on `listener` until `shutdown` resolves; then stops accepting, finishes
/// in-flight requests (each acknowledged only after its records are durable) and saves the
/// decision counts.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let serving = app.clone();
    let scheduler = trials::spawn_scheduler(app.clone());
    let watcher = watch::spawn_watcher(app.clone());
    let result = axum::serve(
        listener,
        router(serving).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    for task in [scheduler, watcher].into_iter().flatten() {
        task.abort();
    }
    // Running trials are recorded as incomplete, never left without their `trial` record.
    app.cancel_trials(std::time::Duration::from_secs(60)).await;
    result?;
    app.shutdown().map_err(std::io::Error::other)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
