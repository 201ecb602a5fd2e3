//! The API through its router, in process (`tower::ServiceExt::oneshot`): the role table, bad
//! input, the kill switch, evidence and restarts.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use crate::http::{call, call_router, Reply};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use serde_json::{json, Value};
use server::auth::Role;
use server::{AppConfig, AppState, Limits};
use tower::ServiceExt as _;

const PACT: &str = include_str!("../../../../examples/support-agent/pact.yaml");
pub(crate) const AGENT: &str = "acme/support-bot";
const OTHER_AGENT: &str = "acme/other-bot";

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) app: AppState,
    pub(crate) admin: String,
    pub(crate) operator: String,
    pub(crate) auditor: String,
    pub(crate) agent: String,
    pub(crate) other_agent: String,
}

fn open(dir: &Path, limits: Limits) -> (AppState, Option<String>) {
    let opened = AppState::open(AppConfig {
        data_dir: dir.to_path_buf(),
        limits,
        simulated_clock: true,
        notify: Default::default(),
    })
    .unwrap();
    (opened.app, opened.new_admin_token)
}

async fn setup(app: &AppState, admin: &str) {
    for id in [AGENT, OTHER_AGENT] {
        let reply = call(
            app,
            "POST",
            "/v1/agents",
            Some(admin),
            &json!({ "id": id, "tier": "high" }).to_string(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let reply = call(
        app,
        "POST",
        &format!("/v1/agents/{AGENT}/pacts"),
        Some(admin),
        PACT,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reply = call(
        app,
        "POST",
        &format!("/v1/agents/{AGENT}/pacts/3/activate"),
        Some(admin),
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

async fn token(app: &AppState, admin: &str, role: &str, agent: Option<&str>) -> String {
    let reply = call(
        app,
        "POST",
        "/v1/tokens",
        Some(admin),
        &json!({ "name": role, "role": role, "agent": agent }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()["token"].as_str().unwrap().to_string()
}

async fn fixture_with(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = open(dir.path(), limits);
    let admin = admin.expect("a new data directory creates an admin token");
    setup(&app, &admin).await;
    let operator = token(&app, &admin, "operator", None).await;
    let auditor = token(&app, &admin, "auditor", None).await;
    let agent = token(&app, &admin, "agent", Some(AGENT)).await;
    let other_agent = token(&app, &admin, "agent", Some(OTHER_AGENT)).await;
    Fixture {
        _dir: dir,
        app,
        admin,
        operator,
        auditor,
        agent,
        other_agent,
    }
}

pub(crate) async fn fixture() -> Fixture {
    fixture_with(Limits::default()).await
}

fn question() -> String {
    json!({ "agent": AGENT, "action": "answer_product_question", "args": { "question": "size?" } })
        .to_string()
}

async fn decide(app: &AppState, token: &str, body: &str) -> Reply {
    call(app, "POST", "/v1/decide", Some(token), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_its_roles() {
    let f = fixture().await;
    let verdict = decide(&f.app, &f.admin, &question()).await;
    assert_eq!(verdict.status, StatusCode::OK, "{}", verdict.text);
    let verdict_idx = verdict.json()["record"].as_u64().unwrap();
    let q = question();
    let batch = json!({ "requests": [serde_json::from_str::<Value>(&q).unwrap()] }).to_string();
    let outcome = json!({ "verdict": verdict_idx, "status": "succeeded" }).to_string();
    let restrict = json!({ "reason": "review", "category": "refunds" }).to_string();
    let reason = json!({ "reason": "drill" }).to_string();
    let agent_path = format!("/v1/agents/{AGENT}");
    // (method, path, body, roles allowed); `self` is an agent token bound to AGENT, `other` one
    // bound to another agent, `public` needs no token at all.
    let table: Vec<(&str, String, String, &[&str])> = vec![
        ("GET", "/healthz".into(), String::new(), &["public"]),
        ("GET", "/readyz".into(), String::new(), &["public"]),
        (
            "GET",
            format!("/v1/oracle/{AGENT}"),
            String::new(),
            &["public"],
        ),
        (
            "POST",
            "/v1/agents".into(),
            json!({ "id": "acme/new-bot" }).to_string(),
            &["admin"],
        ),
        (
            "GET",
            "/v1/agents".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            agent_path.clone(),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "PATCH",
            agent_path.clone(),
            json!({ "tier": "high" }).to_string(),
            &["admin"],
        ),
        (
            "GET",
            format!("{agent_path}/pacts"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "GET",
            format!("{agent_path}/pacts/3"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "POST",
            format!("{agent_path}/pacts"),
            PACT.to_string(),
            &["admin"],
        ),
        (
            "POST",
            format!("{agent_path}/pacts/3/activate"),
            String::new(),
            &["admin"],
        ),
        (
            "POST",
            format!("{agent_path}/restrict"),
            restrict.clone(),
            &["admin", "operator"],
        ),
        (
            "POST",
            format!("{agent_path}/unrestrict"),
            restrict.clone(),
            &["admin", "operator"],
        ),
        (
            "POST",
            format!("{agent_path}/halt"),
            reason.clone(),
            &["admin", "operator"],
        ),
        (
            "POST",
            format!("{agent_path}/resume"),
            reason.clone(),
            &["admin", "operator"],
        ),
        ("POST", "/v1/decide".into(), q.clone(), &["admin", "self"]),
        ("POST", "/v1/decide/batch".into(), batch, &["admin", "self"]),
        ("POST", "/v1/outcomes".into(), outcome, &["admin", "self"]),
        (
            "POST",
            "/v1/scans".into(),
            json!({ "agent": AGENT, "source": "resource", "origin": "file:///a", "bytes": 1, "sha256": format!("sha256:{}", "0".repeat(64)), "text": "x" }).to_string(),
            &["admin", "self"],
        ),
        (
            "POST",
            format!("{agent_path}/tools"),
            json!({ "tools": [] }).to_string(),
            &["admin", "self"],
        ),
        (
            "GET",
            format!("{agent_path}/tools"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "POST",
            format!("{agent_path}/tools/read_file/accept"),
            json!({ "digest": "sha256:00", "reason": "checked" }).to_string(),
            &["admin", "operator"],
        ),
        (
            "GET",
            format!("{agent_path}/shadow?since=1h"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "GET",
            "/v1/log/checkpoint".into(),
            String::new(),
            &["admin", "operator", "auditor", "self", "other"],
        ),
        (
            "GET",
            "/v1/log/records/0".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/log/records/0/proof".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/log/consistency?old=1&new=2".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "POST",
            "/v1/log/bundle".into(),
            json!({ "agent": AGENT }).to_string(),
            &["admin", "auditor"],
        ),
        ("GET", "/v1/tokens".into(), String::new(), &["admin"]),
        (
            "POST",
            "/v1/tokens".into(),
            json!({ "name": "n", "role": "auditor" }).to_string(),
            &["admin"],
        ),
        (
            "DELETE",
            "/v1/tokens/tok_000000000000".into(),
            String::new(),
            &["admin"],
        ),
        (
            "GET",
            "/v1/approvals".into(),
            String::new(),
            &["admin", "operator", "auditor", "self", "other"],
        ),
        (
            "GET",
            format!("/v1/approvals?agent={AGENT}"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "POST",
            format!("/v1/approvals/{verdict_idx}/approve"),
            String::new(),
            &["admin", "operator"],
        ),
        (
            "POST",
            format!("/v1/approvals/{verdict_idx}/reject"),
            reason.clone(),
            &["admin", "operator"],
        ),
        (
            "GET",
            format!("/v1/events?agent={AGENT}"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "GET",
            "/v1/events".into(),
            String::new(),
            &["admin", "operator", "auditor", "self", "other"],
        ),
        (
            "GET",
            "/metrics".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        ("GET", "/v1/openapi.json".into(), String::new(), &["public"]),
        (
            "POST",
            "/v1/observations".into(),
            format!(r#"{{"agent": "{AGENT}", "metric": "csat", "value": 4.2}}"#),
            &["admin", "operator", "self"],
        ),
        (
            "GET",
            format!("/v1/agents/{AGENT}/signals"),
            String::new(),
            &["admin", "operator", "auditor", "self"],
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/signals"),
            String::new(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents".into(),
            format!(r#"{{"agent": "{AGENT}", "reason": "roles check"}}"#),
            &["admin", "operator"],
        ),
        (
            "GET",
            "/v1/incidents".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/incidents/999999".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "PATCH",
            "/v1/incidents/999999".into(),
            r#"{"reason": "r", "severity": "low"}"#.into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/state".into(),
            r#"{"to": "contained", "reason": "r"}"#.into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/changes".into(),
            r#"{"change": "threshold", "detail": "d", "broken_assumption": "b"}"#.into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/approvals".into(),
            "{}".into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/postmortem".into(),
            r#"{"visible_failure": "v", "structural_failure": "s", "broken_assumption": "b", "operating_model_change": "o"}"#.into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/resume".into(),
            r#"{"reason": "r"}"#.into(),
            &["admin", "operator"],
        ),
        (
            "POST",
            "/v1/incidents/999999/bundle".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/program".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/clock".into(),
            String::new(),
            &["admin", "operator", "auditor", "self", "other"],
        ),
        (
            "POST",
            "/v1/clock".into(),
            r#"{"advance_ms": 0}"#.into(),
            &["admin"],
        ),
        (
            "POST",
            "/v1/suites".into(),
            "suite: s\nversion: 1\ncases: []\n".into(),
            &["admin"],
        ),
        (
            "GET",
            "/v1/suites".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/suites/s".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "POST",
            "/v1/trials".into(),
            json!({ "agent": AGENT, "suite": "no-such-suite" }).to_string(),
            &["admin", "operator"],
        ),
        (
            "GET",
            format!("/v1/trials?agent={AGENT}"),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/trials/999999".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "GET",
            "/v1/trials/999999/events".into(),
            String::new(),
            &["admin", "operator", "auditor"],
        ),
        (
            "DELETE",
            "/v1/trials/999999".into(),
            String::new(),
            &["admin", "operator"],
        ),
    ];
    let callers: [(&str, Option<&str>); 6] = [
        ("none", None),
        ("admin", Some(&f.admin)),
        ("operator", Some(&f.operator)),
        ("auditor", Some(&f.auditor)),
        ("self", Some(&f.agent)),
        ("other", Some(&f.other_agent)),
    ];
    let mut failures = Vec::new();
    for (method, path, body, allowed) in &table {
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        for (name, token) in callers {
            let reply = call(&f.app, method, path, token, body).await;
            let is_public = allowed.contains("public");
            let ok = if is_public || allowed.contains(name) {
                !matches!(
                    reply.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) && !reply.status.is_server_error()
            } else if token.is_none() {
                reply.status == StatusCode::UNAUTHORIZED && reply.code() == "unauthenticated"
            } else {
                reply.status == StatusCode::FORBIDDEN && reply.code() == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {name}: {} {}",
                    reply.status, reply.text
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role table violations:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        Role::ALL.len(),
        4,
        "a new role needs a column in this table"
    );
}

/// (method, path, token, body, expected status, expected problem code)
type BadCase<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    String,
    StatusCode,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_problem_never_a_500() {
    let f = fixture_with(Limits {
        body_bytes_max: 2 * 1024 * 1024,
        batch_requests_max: 4,
        ..Limits::default()
    })
    .await;
    let a = Some(f.admin.as_str());
    let long_reason = json!({ "reason": "x".repeat(5000) }).to_string();
    let big_args = json!({ "agent": AGENT, "action": "answer_product_question", "args": { "question": "q".repeat(60_000) } }).to_string();
    let batch5 =
        json!({ "requests": vec![serde_json::from_str::<Value>(&question()).unwrap(); 5] })
            .to_string();
    let cases: Vec<BadCase> = vec![
        (
            "POST",
            "/v1/decide".into(),
            a,
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed-json",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            "{} trailing".into(),
            StatusCode::BAD_REQUEST,
            "malformed-json",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            "[1,2]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "agent": AGENT, "action": "x", "surprise": 1 }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "agent": AGENT, "action": 7 }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "action": "x" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing-agent",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "agent": "acme/ghost", "action": "x" }).to_string(),
            StatusCode::NOT_FOUND,
            "unknown-agent",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "agent": OTHER_AGENT, "action": "x" }).to_string(),
            StatusCode::CONFLICT,
            "no-active-pact",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            json!({ "agent": AGENT, "action": "x", "args": { "n": 9007199254740993u64 } })
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unrecordable",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            big_args,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request-too-large",
        ),
        (
            "POST",
            "/v1/decide".into(),
            a,
            "x".repeat(3 * 1024 * 1024),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
        ),
        (
            "POST",
            "/v1/decide".into(),
            Some("pct_wrong"),
            question(),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "POST",
            "/v1/decide/batch".into(),
            a,
            batch5,
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-too-large",
        ),
        (
            "POST",
            "/v1/decide/batch".into(),
            a,
            json!({ "requests": [] }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty-batch",
        ),
        (
            "POST",
            "/v1/decide/batch".into(),
            a,
            json!({ "requests": [{ "agent": AGENT, "action": 1 }] }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            "POST",
            "/v1/agents".into(),
            a,
            json!({ "id": "bad id" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-agent-id",
        ),
        (
            "POST",
            "/v1/agents".into(),
            a,
            json!({ "id": "acme/x", "tier": "extreme" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-tier",
        ),
        (
            "POST",
            "/v1/agents".into(),
            a,
            json!({ "id": "acme/x", "colour": "red" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            "POST",
            "/v1/agents".into(),
            a,
            json!({ "id": AGENT }).to_string(),
            StatusCode::CONFLICT,
            "agent-exists",
        ),
        (
            "GET",
            "/v1/agents/acme/ghost".into(),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "unknown-agent",
        ),
        (
            "GET",
            format!("/v1/agents/{AGENT}/pacts/99"),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "unknown-pact-version",
        ),
        (
            "GET",
            format!("/v1/agents/{AGENT}/pacts/latest"),
            a,
            String::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-pact-ref",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/pacts/99/activate"),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "unknown-pact-version",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/pacts"),
            a,
            PACT.replace("agent: acme/support-bot", "agent: acme/other-bot"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "pact-agent-mismatch",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/pacts"),
            a,
            PACT.replace("tier: high", "tier: high\ncolour: red"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "pact-invalid",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/pacts"),
            a,
            PACT.replace(
                "reason: \"refunds are decided by people\"",
                "reason: \"people decide\"",
            ),
            StatusCode::CONFLICT,
            "pact-version-exists",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/halt"),
            a,
            "{}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/halt"),
            a,
            json!({ "reason": " " }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-reason",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/halt"),
            a,
            long_reason,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-reason",
        ),
        (
            "POST",
            format!("/v1/agents/{AGENT}/restrict"),
            a,
            json!({ "reason": "r" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing-category",
        ),
        (
            "PUT",
            format!("/v1/agents/{AGENT}/halt"),
            a,
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        ),
        (
            "PUT",
            "/v1/decide".into(),
            a,
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        ),
        (
            "POST",
            "/v1/outcomes".into(),
            a,
            json!({ "verdict": 0, "status": "succeeded" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-a-verdict",
        ),
        (
            "POST",
            "/v1/outcomes".into(),
            a,
            json!({ "verdict": 99999, "status": "succeeded" }).to_string(),
            StatusCode::NOT_FOUND,
            "unknown-verdict",
        ),
        (
            "POST",
            "/v1/outcomes".into(),
            a,
            json!({ "verdict": 0, "status": "great" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-status",
        ),
        (
            "GET",
            "/v1/log/records/abc".into(),
            a,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid-index",
        ),
        (
            "GET",
            "/v1/log/records/99999".into(),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "record-not-found",
        ),
        (
            "GET",
            "/v1/log/records/99999/proof".into(),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "record-not-found",
        ),
        (
            "GET",
            "/v1/log/consistency?old=5".into(),
            a,
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "GET",
            "/v1/log/consistency?old=5&new=2".into(),
            a,
            String::new(),
            StatusCode::BAD_REQUEST,
            "bad-range",
        ),
        (
            "GET",
            "/v1/log/consistency?old=1&new=99999".into(),
            a,
            String::new(),
            StatusCode::NOT_FOUND,
            "record-not-found",
        ),
        (
            "POST",
            "/v1/log/bundle".into(),
            a,
            json!({ "agent": "acme/ghost" }).to_string(),
            StatusCode::NOT_FOUND,
            "unknown-agent",
        ),
        (
            "POST",
            "/v1/log/bundle".into(),
            a,
            json!({ "everything": true }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        ),
        (
            "POST",
            "/v1/tokens".into(),
            a,
            json!({ "name": "n", "role": "agent" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-role",
        ),
        (
            "POST",
            "/v1/tokens".into(),
            a,
            json!({ "name": "n", "role": "root" }).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-role",
        ),
        (
            "GET",
            "/v1/oracle/acme/ghost".into(),
            None,
            String::new(),
            StatusCode::NOT_FOUND,
            "unknown-agent",
        ),
        (
            "GET",
            "/v2/anything".into(),
            None,
            String::new(),
            StatusCode::NOT_FOUND,
            "no-such-route",
        ),
    ];
    let size_before = f.app.log().size().unwrap();
    let mut failures = Vec::new();
    for (method, path, token, body, status, code) in cases {
        let reply = call(&f.app, method, &path, token, &body).await;
        if reply.status != status
            || reply.code() != code
            || reply.content_type != "application/problem+json"
        {
            failures.push(format!(
                "{method} {path}: want {status} {code}, got {} {} ({})",
                reply.status,
                reply.text.chars().take(300).collect::<String>(),
                reply.content_type
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        f.app.log().size().unwrap(),
        size_before,
        "refused requests write nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pact_diagnostics_carry_line_and_column() {
    let f = fixture().await;
    let broken = PACT.replace(
        "context.args.amount_cents <= 5000",
        "context.args.amout_cents <= 5000",
    );
    let reply = call(
        &f.app,
        "POST",
        &format!("/v1/agents/{AGENT}/pacts"),
        Some(&f.admin),
        &broken,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    let diagnostics = reply.json()["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cedar = diagnostics
        .iter()
        .find(|d| d["code"] == "cedar-type")
        .expect("a cedar-type diagnostic");
    let line = PACT
        .lines()
        .position(|line| line.contains("context.args.amount_cents"))
        .unwrap()
        + 1;
    assert_eq!(cedar["line"], json!(line));
    assert!(cedar["col"].as_u64().unwrap() > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_are_in_the_log_before_the_answer_and_prove_inclusion() {
    let f = fixture().await;
    let refund = json!({ "agent": AGENT, "action": "issue_refund", "args": { "order_id": "A-1", "amount_cents": 1200 }, "principal": { "id": "c-1", "token": "secret-jwt" } }).to_string();
    let reply = decide(&f.app, &f.agent, &refund).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let verdict = reply.json();
    assert_eq!(verdict["decision"], "deny");
    assert_eq!(verdict["rules"], json!(["no-refunds"]));
    let idx = verdict["record"].as_u64().unwrap();
    assert!(
        f.app.log().size().unwrap() > idx,
        "acknowledged means durable"
    );
    let record = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{idx}"),
        Some(&f.auditor),
        "",
    )
    .await
    .json();
    assert_eq!(record["record"]["kind"], "verdict");
    assert_eq!(record["record"]["verdict"]["decision"], "deny");
    assert!(
        !record["canonical"].as_str().unwrap().contains("secret-jwt"),
        "tokens are recorded as digests"
    );
    let proof_text = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{idx}/proof"),
        Some(&f.auditor),
        "",
    )
    .await
    .text;
    let proof = ledger::TlogProof::parse(&proof_text).unwrap();
    proof
        .verify(
            record["canonical"].as_str().unwrap().as_bytes(),
            f.app.log().verifier_key(),
        )
        .unwrap();
    let tampered = record["canonical"]
        .as_str()
        .unwrap()
        .replace("deny", "allow");
    assert!(proof
        .verify(tampered.as_bytes(), f.app.log().verifier_key())
        .is_err());

    let outcome = call(
        &f.app,
        "POST",
        "/v1/outcomes",
        Some(&f.agent),
        &json!({ "verdict": idx, "status": "cancelled" }).to_string(),
    )
    .await;
    assert_eq!(outcome.status, StatusCode::CREATED, "{}", outcome.text);
    let outcome_idx = outcome.json()["record"].as_u64().unwrap();
    let outcome_record = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{outcome_idx}"),
        Some(&f.admin),
        "",
    )
    .await
    .json();
    assert_eq!(
        outcome_record["record"]["refs"],
        json!([{ "rel": "verdict", "index": idx }])
    );

    let batch = json!({ "requests": [serde_json::from_str::<Value>(&question()).unwrap(), serde_json::from_str::<Value>(&refund).unwrap()] });
    let reply = call(
        &f.app,
        "POST",
        "/v1/decide/batch",
        Some(&f.agent),
        &batch.to_string(),
    )
    .await;
    let verdicts = reply.json()["verdicts"].as_array().cloned().unwrap();
    let decisions: Vec<&str> = verdicts
        .iter()
        .map(|v| v["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny"]);
    assert_eq!(
        verdicts[1]["record"].as_u64().unwrap(),
        verdicts[0]["record"].as_u64().unwrap() + 1
    );

    let bundle = call(
        &f.app,
        "POST",
        "/v1/log/bundle",
        Some(&f.auditor),
        &json!({ "agent": AGENT }).to_string(),
    )
    .await;
    assert_eq!(bundle.status, StatusCode::OK);
    let parsed = ledger::Bundle::from_json(bundle.text.as_bytes()).unwrap();
    let summary = parsed.verify(f.app.log().verifier_key()).unwrap();
    assert!(
        summary.n_selected >= 6,
        "registration, pact, activation, 3 verdicts, outcome: {summary:?}"
    );

    let consistency = call(
        &f.app,
        "GET",
        "/v1/log/consistency?old=2&new=5",
        Some(&f.auditor),
        "",
    )
    .await
    .json();
    assert!(!consistency["proof"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oracle_is_public_and_counts_decisions() {
    let f = fixture().await;
    decide(&f.app, &f.agent, &question()).await;
    decide(
        &f.app,
        &f.agent,
        &json!({ "agent": AGENT, "action": "delete_customer" }).to_string(),
    )
    .await;
    let oracle = call(&f.app, "GET", &format!("/v1/oracle/{AGENT}"), None, "")
        .await
        .json();
    // A call outside the catalog is an immediate halt (DESIGN.md's default response).
    assert_eq!(oracle["status"], "halted");
    assert_eq!(oracle["counts"], json!({ "decisions": 2, "denials": 1 }));
    let incidents = call(&f.app, "GET", "/v1/incidents", Some(&f.auditor), "")
        .await
        .json();
    assert_eq!(incidents["incidents"][0]["pattern"], json!("injection"));
    assert_eq!(incidents["incidents"][0]["state"], json!("contained"));
    assert!(oracle["pact"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let rules = oracle["pact"]["summary"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|rule| rule["summary"]
        .as_str()
        .unwrap()
        .contains("forbids `issue_refund`")));
    assert!(oracle["log"]["checkpoint"].as_str().unwrap().contains('\n'));
    // The score, from the two production verdicts: one in scope, one outside the pact.
    let scope = &oracle["score"]["dimensions"]["scope_adherence"];
    assert_eq!(scope["n_samples"], json!(2), "{oracle}");
    assert_eq!(scope["value_bp"], json!(5000), "{oracle}");
    assert!(oracle["score"]["points"].as_u64().is_some(), "{oracle}");
    assert_eq!(oracle["score"]["confidence"], json!("low"), "{oracle}");
    // Minutes of history: no velocity, and the oracle says why instead of publishing a number.
    let velocity = &oracle["score"]["velocity"];
    assert_eq!(velocity["points_per_week"], Value::Null, "{oracle}");
    assert!(
        velocity["missing"]
            .as_str()
            .unwrap()
            .starts_with("not enough history"),
        "{oracle}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrictions_deny_their_category_until_lifted() {
    let f = fixture().await;
    let small_return = json!({ "agent": AGENT, "action": "initiate_return_request", "args": { "order_id": "A", "amount_cents": 100 } }).to_string();
    assert_eq!(
        decide(&f.app, &f.agent, &small_return).await.json()["decision"],
        "allow"
    );
    let body = json!({ "reason": "returns spike", "category": "returns" }).to_string();
    let reply = call(
        &f.app,
        "POST",
        &format!("/v1/agents/{AGENT}/restrict"),
        Some(&f.operator),
        &body,
    )
    .await;
    assert_eq!(reply.json()["status"], "restricted");
    let denied = decide(&f.app, &f.agent, &small_return).await.json();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["rules"], json!(["pactum:restricted"]));
    call(
        &f.app,
        "POST",
        &format!("/v1/agents/{AGENT}/unrestrict"),
        Some(&f.operator),
        &body,
    )
    .await;
    assert_eq!(
        decide(&f.app, &f.agent, &small_return).await.json()["decision"],
        "allow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_outcome_per_verdict_even_when_the_index_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = open(dir.path(), Limits::default());
    let admin = admin.unwrap();
    setup(&app, &admin).await;
    let outcome = |verdict: u64| json!({ "verdict": verdict, "status": "succeeded" }).to_string();
    let report = |app: AppState, body: String| {
        let admin = admin.clone();
        tokio::spawn(async move { call(&app, "POST", "/v1/outcomes", Some(&admin), &body).await })
    };

    // Reports of one call sent together: exactly one is recorded.
    let first = decide(&app, &admin, &question()).await.json()["record"]
        .as_u64()
        .unwrap();
    let racing: Vec<_> = (0..8)
        .map(|_| report(app.clone(), outcome(first)))
        .collect();
    let mut statuses = Vec::new();
    for reply in racing {
        statuses.push(reply.await.unwrap().status);
    }
    let n_created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let n_refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((n_created, n_refused), (1, 7), "{statuses:?}");

    // A second verdict's outcome, then a crash that loses the unsynced index rows and the mark
    // (no shutdown): the restart reads them back from the log.
    let second = decide(&app, &admin, &question()).await.json()["record"]
        .as_u64()
        .unwrap();
    let reply = report(app.clone(), outcome(second)).await.unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    drop(app);
    let registry = rusqlite::Connection::open(dir.path().join("registry.sqlite")).unwrap();
    registry
        .execute_batch("DELETE FROM outcomes; DELETE FROM marks;")
        .unwrap();
    drop(registry);
    let (app, _) = open(dir.path(), Limits::default());
    for verdict in [first, second] {
        let again = report(app.clone(), outcome(verdict)).await.unwrap();
        assert_eq!(
            (again.status, again.code().as_str()),
            (StatusCode::CONFLICT, "outcome-exists"),
            "verdict {verdict}: {}",
            again.text
        );
    }
    let third = decide(&app, &admin, &question()).await.json()["record"]
        .as_u64()
        .unwrap();
    let reply = report(app.clone(), outcome(third)).await.unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halts_and_restrictions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = open(dir.path(), Limits::default());
    let admin = admin.unwrap();
    setup(&app, &admin).await;
    decide(&app, &admin, &question()).await;
    let halt = call(
        &app,
        "POST",
        &format!("/v1/agents/{AGENT}/halt"),
        Some(&admin),
        &json!({ "reason": "canary seen" }).to_string(),
    )
    .await;
    assert_eq!(halt.status, StatusCode::OK, "{}", halt.text);
    call(
        &app,
        "POST",
        &format!("/v1/agents/{AGENT}/restrict"),
        Some(&admin),
        &json!({ "reason": "r", "category": "policy" }).to_string(),
    )
    .await;
    app.shutdown().unwrap();
    drop(app);

    let (app, new_admin) = open(dir.path(), Limits::default());
    assert!(new_admin.is_none(), "the admin token is created once");
    let saved = std::fs::read_to_string(dir.path().join(server::ADMIN_TOKEN_FILE)).unwrap();
    assert_eq!(saved.trim(), admin);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join(server::ADMIN_TOKEN_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "admin.token is owner-only");
    let verdict = decide(&app, &admin, &question()).await.json();
    assert_eq!(verdict["decision"], "halted", "{verdict}");
    let shown = call(
        &app,
        "GET",
        &format!("/v1/agents/{AGENT}"),
        Some(&admin),
        "",
    )
    .await
    .json();
    assert_eq!(shown["halt"]["reason"], "canary seen");
    assert_eq!(shown["restricted"], json!(["policy"]));
    assert_eq!(shown["decisions"], json!(2), "counts saved at shutdown");
    call(
        &app,
        "POST",
        &format!("/v1/agents/{AGENT}/resume"),
        Some(&admin),
        &json!({ "reason": "fixed" }).to_string(),
    )
    .await;
    assert_eq!(
        decide(&app, &admin, &question()).await.json()["decision"],
        "allow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_decision_started_after_a_halt_returned_is_allowed() {
    let f = fixture().await;
    let app = f.app.clone();
    let token = f.agent.clone();
    let halt_returned: std::sync::Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let app = app.clone();
        let token = token.clone();
        let halt_returned = halt_returned.clone();
        workers.push(tokio::spawn(async move {
            let mut violations = 0;
            let mut n_after = 0;
            for _ in 0..150 {
                let started = Instant::now();
                let reply = decide(&app, &token, &question()).await.json();
                let halted_before_start = halt_returned
                    .lock()
                    .unwrap()
                    .is_some_and(|at| at <= started);
                if halted_before_start {
                    n_after += 1;
                    if reply["decision"] != "halted" {
                        violations += 1;
                    }
                }
            }
            (violations, n_after)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let reply = call(
        &app,
        "POST",
        &format!("/v1/agents/{AGENT}/halt"),
        Some(&f.operator),
        &json!({ "reason": "drill" }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    *halt_returned.lock().unwrap() = Some(Instant::now());
    let mut violations = 0;
    let mut n_after = 0;
    for worker in workers {
        let (v, n) = worker.await.unwrap();
        violations += v;
        n_after += n;
    }
    assert_eq!(violations, 0);
    assert!(n_after > 0, "some decisions started after the halt");
}

async fn boom() -> &'static str {
    panic!("boom")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_answered_500_and_the_server_lives_on() {
    let f = fixture().await;
    let routes = server::routes().route("/boom", get(boom));
    let router = server::with_layers(routes, f.app.clone());
    let reply = call_router(router.clone(), "GET", "/boom", None, "").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.code(), "internal");
    assert!(
        !reply.text.contains("boom"),
        "the cause is logged, not sent"
    );
    let health = call_router(router, "GET", "/healthz", None, "").await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_stop_working_and_secrets_are_not_listed() {
    let f = fixture().await;
    let created = call(
        &f.app,
        "POST",
        "/v1/tokens",
        Some(&f.admin),
        &json!({ "name": "ci", "role": "auditor" }).to_string(),
    )
    .await
    .json();
    let secret = created["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&f.app, "GET", "/v1/log/checkpoint", Some(&secret), "")
            .await
            .status,
        StatusCode::OK
    );
    let listed = call(&f.app, "GET", "/v1/tokens", Some(&f.admin), "")
        .await
        .text;
    assert!(!listed.contains(&secret));
    let id = created["id"].as_str().unwrap();
    let revoked = call(
        &f.app,
        "DELETE",
        &format!("/v1/tokens/{id}"),
        Some(&f.admin),
        "",
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        call(&f.app, "GET", "/v1/log/checkpoint", Some(&secret), "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn next_event(body: &mut axum::body::BodyDataStream) -> String {
    use futures_util::StreamExt as _;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
            .await
            .expect("an event arrives")
            .expect("the stream is open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_filtered_records_as_they_become_durable() {
    let f = fixture().await;
    let request = Request::builder()
        .uri(format!("/v1/events?agent={}&kind=halt,approval", AGENT))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.agent))
        .body(Body::empty())
        .unwrap();
    let response = server::router(f.app.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    decide(&f.app, &f.agent, &question()).await;
    call(
        &f.app,
        "POST",
        &format!("/v1/agents/{OTHER_AGENT}/halt"),
        Some(&f.operator),
        &json!({ "reason": "other" }).to_string(),
    )
    .await;
    call(
        &f.app,
        "POST",
        &format!("/v1/agents/{AGENT}/halt"),
        Some(&f.operator),
        &json!({ "reason": "drill" }).to_string(),
    )
    .await;
    let event = next_event(&mut body).await;
    assert!(event.starts_with("event: halt\n"), "{event}");
    assert!(
        event.contains("drill") && !event.contains("other"),
        "only this agent's halts: {event}"
    );
    let bad = call(&f.app, "GET", "/v1/events?kind=weather", Some(&f.admin), "").await;
    assert_eq!(bad.code(), "invalid-event-kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewed_calls_wait_for_an_operator_who_is_recorded() {
    let f = fixture().await;
    let statement = json!({ "agent": AGENT, "action": "make_policy_statement", "args": { "text": "30 days", "source_id": "kb-1" } }).to_string();
    let verdict = decide(&f.app, &f.agent, &statement).await.json();
    assert_eq!(verdict["decision"], "review", "{verdict}");
    let verdict_idx = verdict["record"].as_u64().unwrap();
    let pending = call(&f.app, "GET", "/v1/approvals", Some(&f.operator), "")
        .await
        .json();
    assert_eq!(pending["approvals"][0]["verdict"], json!(verdict_idx));
    assert_eq!(pending["approvals"][0]["action"], "make_policy_statement");
    let approved = call(
        &f.app,
        "POST",
        &format!("/v1/approvals/{verdict_idx}/approve"),
        Some(&f.operator),
        &json!({ "reason": "cites kb-1" }).to_string(),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    let record_idx = approved.json()["record"].as_u64().unwrap();
    let record = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{record_idx}"),
        Some(&f.auditor),
        "",
    )
    .await
    .json();
    assert_eq!(record["record"]["kind"], "approval");
    assert_eq!(record["record"]["decision"], "approved");
    assert!(record["record"]["by"]
        .as_str()
        .unwrap()
        .starts_with("operator (tok_"));
    assert_eq!(
        record["record"]["refs"],
        json!([{ "rel": "verdict", "index": verdict_idx }])
    );
    let again = call(
        &f.app,
        "POST",
        &format!("/v1/approvals/{verdict_idx}/reject"),
        Some(&f.admin),
        "",
    )
    .await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (StatusCode::CONFLICT, "already-settled")
    );
    let pending = call(&f.app, "GET", "/v1/approvals", Some(&f.operator), "")
        .await
        .json();
    assert_eq!(pending["approvals"], json!([]));
    let settled = call(
        &f.app,
        "GET",
        "/v1/approvals?status=approved",
        Some(&f.auditor),
        "",
    )
    .await
    .json();
    assert_eq!(
        settled["approvals"][0]["decided_by"],
        record["record"]["by"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_decisions_by_outcome() {
    let f = fixture().await;
    decide(&f.app, &f.agent, &question()).await;
    decide(&f.app, &f.agent, &question()).await;
    decide(
        &f.app,
        &f.agent,
        &json!({ "agent": AGENT, "action": "nope" }).to_string(),
    )
    .await;
    let metrics = call(&f.app, "GET", "/metrics", Some(&f.auditor), "").await;
    assert!(metrics.content_type.starts_with("text/plain"));
    for line in [
        "pactum_decisions_total{decision=\"allow\"} 2",
        "pactum_decisions_total{decision=\"deny\"} 1",
        "pactum_decide_duration_seconds_count 3",
        "pactum_append_records_bucket{le=\"1\"} ",
    ] {
        assert!(
            metrics.text.contains(line),
            "missing `{line}` in\n{}",
            metrics.text
        );
    }
    let size = f.app.log().size().unwrap();
    assert!(metrics
        .text
        .contains(&format!("pactum_log_records {size}\n")));
    // Every record of this new log went through exactly one group-commit batch.
    assert!(
        metrics
            .text
            .contains(&format!("pactum_log_batch_records_sum {size}\n")),
        "{}",
        metrics.text
    );
    // The program's metrics too, the same figures `GET /v1/program` answers.
    let program = call(&f.app, "GET", "/v1/program", Some(&f.auditor), "")
        .await
        .json();
    let fields = program.as_object().unwrap();
    assert!(fields.contains_key("time_to_containment_ms_mean"));
    let mut n_gauges = 0;
    for (name, value) in fields {
        if let Some(number) = value.as_u64() {
            let line = format!("\npactum_program_{name} {number}\n");
            assert!(metrics.text.contains(&line), "{line}: {}", metrics.text);
            n_gauges += 1;
        }
    }
    assert!(n_gauges >= 10, "{program}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let f = fixture().await;
    let doc: Value = serde_json::from_str(server::OPENAPI).unwrap();
    let served = call(&f.app, "GET", "/v1/openapi.json", None, "")
        .await
        .json();
    assert_eq!(served, doc);
    let mut n_operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{agent}", AGENT)
            .replace("{ref}", "3")
            .replace("{version}", "3")
            .replace("{verdict}", "0")
            .replace("{name}", "read_file")
            .replace("{idx}", "0")
            .replace(
                "{id}",
                if path.starts_with("/v1/incidents") {
                    "1"
                } else {
                    "tok_x"
                },
            );
        let concrete = if path == "/v1/log/consistency" {
            format!("{concrete}?old=1&new=2")
        } else {
            concrete
        };
        for method in item.as_object().unwrap().keys() {
            n_operations += 1;
            let reply = call(
                &f.app,
                &method.to_uppercase(),
                &concrete,
                Some(&f.admin),
                "{}",
            )
            .await;
            assert!(
                !matches!(
                    reply.code().as_str(),
                    "no-such-route" | "method-not-allowed"
                ),
                "{method} {path} is documented but not routed: {}",
                reply.text
            );
        }
    }
    assert_eq!(n_operations, 63, "every route is documented once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_has_a_request_rate() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        token_requests_per_s: 5,
        ..Limits::default()
    };
    let (app, admin) = open(dir.path(), limits);
    let admin = admin.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            call(&app, "GET", "/v1/log/checkpoint", Some(&admin), "")
                .await
                .status,
        );
    }
    let n_limited = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((2..=3).contains(&n_limited), "{statuses:?}");
    let (auditor, _) = app
        .registry()
        .create_token("auditor", "auditor", None, 0)
        .unwrap();
    let other = call(&app, "GET", "/v1/log/checkpoint", Some(&auditor), "").await;
    assert_eq!(other.status, StatusCode::OK, "buckets are per token");
    let limited = call(&app, "GET", "/v1/log/checkpoint", Some(&admin), "").await;
    assert_eq!(limited.code(), "rate-limited");
}

async fn slow() -> &'static str {
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    "late"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = open(
        dir.path(),
        Limits {
            request_timeout_ms: 50,
            ..Limits::default()
        },
    );
    let routes = server::routes().route("/slow", get(slow));
    let reply = call_router(server::with_layers(routes, app), "GET", "/slow", None, "").await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(reply.code(), "request-timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_an_undecidable_request_decides_nothing() {
    let fixture = fixture().await;
    let ret = json!({ "agent": AGENT, "action": "initiate_return_request", "args": { "order_id": "A-1", "amount_cents": 1000 } });
    let orphan = json!({ "agent": OTHER_AGENT, "action": "anything", "args": {} });
    let reply = call(
        &fixture.app,
        "POST",
        "/v1/decide/batch",
        Some(&fixture.admin),
        &json!({ "requests": [ret, orphan] }).to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.code(), "no-active-pact");
    assert_eq!(reply.json()["index"], 1);
    // The first request was not decided: its amount is not in the 24-hour counter.
    let next = decide(&fixture.app, &fixture.admin, &ret.to_string()).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    assert_eq!(next.json()["counters"]["returns_24h_cents"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oracle_is_rate_limited_per_client_address() {
    let limits = Limits {
        oracle_requests_per_s: 3,
        ..Limits::default()
    };
    let fixture = fixture_with(limits).await;
    let ask = |address: &str| {
        let address: std::net::SocketAddr = address.parse().unwrap();
        let request = Request::builder()
            .method("GET")
            .uri(format!("/v1/oracle/{AGENT}"))
            .extension(axum::extract::ConnectInfo(address))
            .body(Body::empty())
            .unwrap();
        let router = server::router(fixture.app.clone());
        async move { router.oneshot(request).await.unwrap().status() }
    };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(ask("192.0.2.7:5000").await);
    }
    let n_limited = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((2..=3).contains(&n_limited), "{statuses:?}");
    // Another address, even on the same port, has its own bucket.
    assert_eq!(ask("198.51.100.9:5000").await, StatusCode::OK);
    // The limit is per address, not per port.
    assert_eq!(ask("192.0.2.7:6000").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_clock_moves_forward_only_by_admin_request() {
    let f = fixture().await;
    let before = call(&f.app, "GET", "/v1/clock", Some(&f.auditor), "")
        .await
        .json();
    assert_eq!(before["simulated"], json!(true));
    let week = 7 * 24 * 60 * 60 * 1000_u64;
    let moved = call(
        &f.app,
        "POST",
        "/v1/clock",
        Some(&f.admin),
        &format!(r#"{{"advance_ms": {week}}}"#),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let now = moved.json()["now_ms"].as_u64().unwrap();
    assert!(now >= before["now_ms"].as_u64().unwrap() + week);
    // Records carry the moved time.
    let halted = call(
        &f.app,
        "POST",
        &format!("/v1/agents/{AGENT}/halt"),
        Some(&f.admin),
        r#"{"reason": "drill"}"#,
    )
    .await
    .json();
    let idx = halted["record"].as_u64().unwrap();
    let record = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{idx}"),
        Some(&f.admin),
        "",
    )
    .await
    .json();
    assert!(record["record"]["ts"].as_u64().unwrap() >= now);
    let too_far = call(
        &f.app,
        "POST",
        "/v1/clock",
        Some(&f.admin),
        r#"{"advance_ms": 999999999999999}"#,
    )
    .await;
    assert_eq!(too_far.code(), "invalid-clock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_clock_cannot_be_moved() {
    let dir = tempfile::tempdir().unwrap();
    let opened = AppState::open(AppConfig {
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
        simulated_clock: false,
        notify: Default::default(),
    })
    .unwrap();
    let admin = opened.new_admin_token.unwrap();
    let reply = call(
        &opened.app,
        "POST",
        "/v1/clock",
        Some(&admin),
        r#"{"advance_ms": 1000}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "clock-not-simulated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_are_recorded_in_thousandths_and_checked() {
    let f = fixture().await;
    let reply = call(
        &f.app,
        "POST",
        "/v1/observations",
        Some(&f.agent),
        &format!(r#"{{"agent": "{AGENT}", "metric": "csat", "value": 4.2105, "n_samples": 40}}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let idx = reply.json()["record"].as_u64().unwrap();
    let record = call(
        &f.app,
        "GET",
        &format!("/v1/log/records/{idx}"),
        Some(&f.admin),
        "",
    )
    .await
    .json();
    assert_eq!(record["record"]["kind"], json!("observation"));
    assert_eq!(record["record"]["value_milli"], json!(4211));
    assert_eq!(record["record"]["n_samples"], json!(40));
    for (body, code) in [
        (
            format!(r#"{{"agent": "{AGENT}", "metric": "CSAT!", "value": 1}}"#),
            "invalid-metric",
        ),
        (
            format!(r#"{{"agent": "{AGENT}", "metric": "csat", "value": 1e300}}"#),
            "invalid-value",
        ),
        (
            r#"{"agent": "nobody", "metric": "csat", "value": 1}"#.to_string(),
            "unknown-agent",
        ),
    ] {
        let reply = call(&f.app, "POST", "/v1/observations", Some(&f.admin), &body).await;
        assert_eq!(reply.code(), code, "{body}: {}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_signed_retried_and_recorded() {
    use std::sync::{Arc, Mutex};
    // A receiver that fails the first attempt and accepts the second.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let receiver = {
        let seen = Arc::clone(&seen);
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = Arc::clone(&seen);
                async move {
                    let signature = headers
                        .get("pactum-signature")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut seen = seen.lock().unwrap();
                    seen.push((signature, body));
                    if seen.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().unwrap();
    let secret = "a-webhook-secret-of-some-length";
    let opened = AppState::open(AppConfig {
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
        simulated_clock: false,
        notify: server::notify::NotifyConfig {
            webhooks: vec![server::notify::Webhook {
                url: format!("http://{address}/hook"),
                secret: secret.into(),
            }],
            backoff_initial_ms: 10,
            ..Default::default()
        },
    })
    .unwrap();
    let app = opened.app;
    let cause = server::app::make_record("note", "acme/bot", 1, json!({})).unwrap();
    let cause = app.append_one(cause).await.unwrap();
    server::notify::raise(
        &app,
        json!({"event": "escalation", "agent": "acme/bot", "signal": "canary_seen"}),
        cause,
        Some(cause),
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let record = loop {
        let size = app.log().size().unwrap();
        if size > 1 {
            let bytes = app.log().get(size - 1).unwrap();
            break serde_json::from_slice::<Value>(&bytes).unwrap();
        }
        assert!(Instant::now() < deadline, "no notification was recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record["kind"], json!("notification"));
    assert_eq!(record["status"], json!("delivered"));
    assert_eq!(record["attempts"], json!(2));
    assert_eq!(record["http_status"], json!(200));
    assert_eq!(record["incident"], json!(cause));
    assert_eq!(record["refs"], json!([{"rel": "cause", "index": cause}]));
    assert!(record["latency_ms"].as_u64().unwrap() >= 10, "{record}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let (signature, body) = &seen[1];
    let t_ms: u64 = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        &server::notify::signature(secret, t_ms, body.as_bytes())
    );
    assert!(body.contains("canary_seen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_signals_stay_answered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (app, admin) = open(dir.path(), Limits::default());
    let admin = admin.unwrap();
    setup(&app, &admin).await;
    // A call outside the catalog: answered at once (halt, escalate, an incident).
    let outside = json!({ "agent": AGENT, "action": "delete_customer" }).to_string();
    decide(&app, &admin, &outside).await;
    let n_responses = |app: &AppState| {
        app.log()
            .agent_records(AGENT, 0, &["response", "signal"], usize::MAX)
            .unwrap()
            .iter()
            .filter(|(_, bytes)| {
                serde_json::from_slice::<Value>(bytes).unwrap()["signal"] == "call_outside_catalog"
            })
            .count()
    };
    let answered = n_responses(&app);
    assert!(answered >= 2, "a signal and its responses: {answered}");
    app.shutdown().unwrap();
    drop(app);

    let (app, _) = open(dir.path(), Limits::default());
    let path = format!("/v1/agents/{AGENT}/signals");
    let evaluated = call(&app, "POST", &path, Some(&admin), "{}").await;
    assert_eq!(evaluated.status, StatusCode::OK, "{}", evaluated.text);
    let body = evaluated.json();
    let reading = body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|reading| reading["signal"] == "call_outside_catalog")
        .cloned()
        .unwrap();
    assert_eq!(reading["level"], "critical", "still in force: {reading}");
    let again: Vec<&Value> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|taken| taken["signal"] == "call_outside_catalog")
        .collect();
    assert!(again.is_empty(), "answered before the restart: {again:?}");
    assert_eq!(n_responses(&app), answered);
}
