//! Outgoing notifications: each event goes to every configured webhook as a signed JSON POST,
//! retried with backoff, and every delivery (or final failure) becomes a `notification` record.
//!
//! The signature is HMAC-SHA256 over `"{t}.{body}"` with the webhook's secret, sent as
//! `Pactum-Signature: t=<unix ms>,v1=<hex>`; a receiver recomputes it over the raw body and
//! rejects stale `t` values. The record's `latency_ms` is the communication latency: from the
//! moment the event was raised to the moment a receiver acknowledged it with a 2xx answer.
//!
//! Only plain `http://` URLs are delivered (the server carries no TLS stack); reach an HTTPS
//! endpoint through a relay beside the server.

use std::time::{Duration, Instant};

use axum::http::{header, Request, Uri};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::app::{make_record, AppState};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "pactum-signature";
/// Longest webhook URL.
pub const URL_BYTES_MAX: usize = 2048;
/// Shortest secret: a shorter one is guessable.
pub const SECRET_BYTES_MIN: usize = 16;

/// One webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `http://host:port/path`.
    pub url: String,
    /// The HMAC key.
    pub secret: String,
}

/// Where and how notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The receivers; with none, nothing is sent and nothing is recorded (the `response` and
    /// incident records stand on their own).
    pub webhooks: Vec<Webhook>,
    /// Attempts per delivery, the first included.
    pub attempts_max: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub backoff_initial_ms: u64,
    /// Time allowed for one attempt (connect, send, answer).
    pub attempt_timeout_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            attempts_max: 5,
            backoff_initial_ms: 250,
            attempt_timeout_ms: 5_000,
        }
    }
}

/// Checks a webhook before the server starts, so a typo is an error at start-up rather than
/// a silent loss during an incident.
pub fn validate(webhook: &Webhook) -> Result<(), String> {
    if webhook.url.len() > URL_BYTES_MAX {
        return Err(format!("webhook URL longer than {URL_BYTES_MAX} bytes"));
    }
    let uri: Uri = webhook
        .url
        .parse()
        .map_err(|err| format!("webhook URL `{}`: {err}", webhook.url))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "webhook URL `{}`: only http:// is delivered; put an HTTPS relay beside the server",
                webhook.url
            ))
        }
        _ => return Err(format!("webhook URL `{}` needs http://", webhook.url)),
    }
    if uri.host().is_none() {
        return Err(format!("webhook URL `{}` has no host", webhook.url));
    }
    if webhook.secret.len() < SECRET_BYTES_MIN {
        return Err(format!(
            "the secret of webhook `{}` is shorter than {SECRET_BYTES_MIN} bytes",
            webhook.url
        ));
    }
    Ok(())
}

/// The `Pactum-Signature` value for `body` sent at `t_ms`.
pub fn signature(secret: &str, t_ms: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(t_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t_ms},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `delivered` or `failed`.
    pub status: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// The last HTTP status seen, if any answer came.
    pub http_status: Option<u16>,
    /// Raised -> acknowledged (or -> given up), in milliseconds.
    pub latency_ms: u64,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Raises `event` (a JSON object with at least `event` and `agent`): delivers it to every
/// webhook in the background and records each delivery. `cause` is the record index that
/// raised it. Returns at once.
pub fn raise(app: &AppState, event: Value, cause: u64, incident: Option<u64>) {
    let raised = Instant::now();
    let config = app.notify_config().clone();
    let agent = event["agent"].as_str().unwrap_or_default().to_owned();
    let name = event["event"].as_str().unwrap_or("event").to_owned();
    for webhook in config.webhooks.clone() {
        let app = app.clone();
        let config = config.clone();
        let event = event.clone();
        let agent = agent.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let body = event.to_string().into_bytes();
            let delivery = deliver(&config, &webhook, &body, raised).await;
            app.metrics()
                .observe_notification(delivery.status, delivery.latency_ms);
            let mut members = json!({
                "event": name,
                "url": webhook.url,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "http_status": delivery.http_status,
                "latency_ms": delivery.latency_ms,
                "refs": [{ "rel": "cause", "index": cause }],
            });
            if let Some(incident) = incident {
                members["incident"] = json!(incident);
            }
            if let Some(error) = delivery.error {
                members["error"] = json!(error);
            }
            let now = app.now_ms();
            match make_record("notification", &agent, now, members) {
                Ok(record) => {
                    if let Err(err) = app.append_one(record).await {
                        warn(&format!("recording a notification failed: {err:?}"));
                    }
                }
                Err(err) => warn(&format!("a notification is unrecordable: {err:?}")),
            }
        });
    }
}

fn warn(message: &str) {
    eprintln!("pactum serve: {message}");
}

async fn deliver(
    config: &NotifyConfig,
    webhook: &Webhook,
    body: &[u8],
    raised: Instant,
) -> Delivery {
    let mut backoff = Duration::from_millis(config.backoff_initial_ms);
    let mut last_status = None;
    let mut last_error = None;
    let attempts_max = config.attempts_max.max(1);
    for attempt in 1..=attempts_max {
        // The signature's time is the wall clock even under a simulated clock, so a receiver
        // that checks freshness accepts drill notifications too.
        let t_ms = crate::wire::now_ms();
        let sent = tokio::time::timeout(
            Duration::from_millis(config.attempt_timeout_ms),
            post(webhook, t_ms, body),
        )
        .await;
        match sent {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                return Delivery {
                    status: "delivered",
                    attempts: attempt,
                    http_status: Some(status),
                    latency_ms: elapsed_ms(raised),
                    error: None,
                }
            }
            Ok(Ok(status)) => {
                last_status = Some(status);
                last_error = Some(format!("answered {status}"));
                // A receiver that refuses the request itself will refuse it again.
                if (400..500).contains(&status) && status != 408 && status != 429 {
                    return Delivery {
                        status: "failed",
                        attempts: attempt,
                        http_status: last_status,
                        latency_ms: elapsed_ms(raised),
                        error: last_error,
                    };
                }
            }
            Ok(Err(err)) => last_error = Some(err),
            Err(_) => {
                last_error = Some(format!("no answer within {} ms", config.attempt_timeout_ms))
            }
        }
        if attempt < attempts_max {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    Delivery {
        status: "failed",
        attempts: attempts_max,
        http_status: last_status,
        latency_ms: elapsed_ms(raised),
        error: last_error,
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One POST; the answer's status.
async fn post(webhook: &Webhook, t_ms: u64, body: &[u8]) -> Result<u16, String> {
    let uri: Uri = webhook.url.parse().map_err(|err| format!("{err}"))?;
    let host = uri.host().ok_or("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|err| format!("connecting: {err}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("handshake: {err}"))?;
    tokio::spawn(connection);
    let path = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    let authority = uri
        .authority()
        .map_or(host.clone(), |authority| authority.to_string());
    let request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "pactum")
        .header(SIGNATURE_HEADER, signature(&webhook.secret, t_ms, body))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|err| format!("building the request: {err}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("sending: {err}"))?;
    let status = response.status().as_u16();
    // Drain the answer so the receiver sees a complete exchange; its content is not used.
    let _ = response.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // HMAC-SHA256(key = "0123456789abcdef", "5.{}") computed with Python's hmac module.
        let value = signature("0123456789abcdef", 5, b"{}");
        assert_eq!(
            value,
            "t=5,v1=6e2cb7401c2f8e178b2f9c3c1303832994a6ed65f18856dbf5e33aba41e3a683"
        );
    }

    #[test]
    fn webhooks_are_checked_before_start() {
        let ok = Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret: "0123456789abcdef".into(),
        };
        assert!(validate(&ok).is_ok());
        for (url, secret, want) in [
            ("https://x/hook", "0123456789abcdef", "HTTPS relay"),
            ("ftp://x/", "0123456789abcdef", "needs http://"),
            ("not a url", "0123456789abcdef", "webhook URL"),
            ("http://x/", "short", "shorter than 16"),
        ] {
            let err = validate(&Webhook {
                url: url.into(),
                secret: secret.into(),
            })
            .unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
        }
    }
}
