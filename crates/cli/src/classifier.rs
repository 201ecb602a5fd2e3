//! The optional external classifier hook: a model server the user runs, asked over HTTP for an
//! injection score that is combined with the built-in detectors' verdict.
//!
//! It lives here, at the IO edge, and not in the pure `detect` crate: it needs the network and a
//! clock. It is off unless a URL is given (`--classifier-url` or `PACTUM_CLASSIFIER_URL`).
//!
//! # Protocol
//!
//! For each text, one `POST` to the URL with `Content-Type: application/json` and the body
//!
//! ```json
//! {"text": "...", "source": "user|tool|document|output", "inputs": "..."}
//! ```
//!
//! (`inputs` repeats the text: it is the field Hugging Face inference servers read). Answers
//! accepted, with a 2xx status:
//!
//! - `{"score": 0.97}`: the probability that the text is an injection, in `0..=1`;
//! - `{"label": "INJECTION", "score": 0.97}` as Hugging Face text-classification servers return,
//!   or a list of such objects (`[{"label": ..., "score": ...}, ...]`, possibly nested once, as a
//!   batched pipeline returns). Labels are read case-insensitively: `INJECTION`, `JAILBREAK`,
//!   `MALICIOUS`, `UNSAFE` and `LABEL_1` are attack labels; `SAFE`, `LEGIT`, `BENIGN` and
//!   `LABEL_0` are benign labels. The injection score is the sum of the attack labels' scores
//!   (capped at 1) when any is listed, otherwise one minus the best benign label's score.
//!
//! # Combination
//!
//! A text is flagged when the built-in detectors flag it, or when the classifier's score is at or
//! above its own threshold (`--classifier-threshold`, default 0.9). A low classifier score never
//! clears a built-in flag. Any failure (connection refused, timeout, non-2xx status, a body that
//! is not one of the shapes above, a score outside `0..=1`) leaves the built-in verdict standing
//! and is reported as `"classifier": {"error": "..."}`; it never fails the scan. After
//! [`FAILURES_BEFORE_PAUSE`] failures in a row the classifier is not asked for
//! [`PAUSE_MS`] milliseconds (those texts report `"error": "skipped: ..."`), so a stream of
//! JSON lines does not wait out a timeout per line while the server is down.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

/// Default time allowed for one classifier request, in milliseconds.
pub const TIMEOUT_MS_DEFAULT: u64 = 200;
/// Longest timeout accepted, in milliseconds.
pub const TIMEOUT_MS_MAX: u64 = 60_000;
/// Default classifier score at or above which a text is flagged.
pub const THRESHOLD_DEFAULT: f32 = 0.9;
/// Failures in a row after which the classifier is left alone for [`PAUSE_MS`].
pub const FAILURES_BEFORE_PAUSE: u32 = 3;
/// How long the classifier is left alone after [`FAILURES_BEFORE_PAUSE`] failures, in ms.
pub const PAUSE_MS: u64 = 5_000;
/// Largest answer body read from the classifier, in bytes.
const RESPONSE_BYTES_MAX: u64 = 64 * 1024;

/// Labels that name an attack, compared case-insensitively.
const ATTACK_LABELS: &[&str] = &["injection", "jailbreak", "malicious", "unsafe", "label_1"];
/// Labels that name benign text, compared case-insensitively.
const BENIGN_LABELS: &[&str] = &["safe", "legit", "benign", "label_0"];

/// Settings of the classifier hook.
#[derive(Debug, Clone)]
pub struct ClassifierConfig {
    /// `http://host:port/path` of the model server.
    pub url: String,
    /// Time allowed for one request (connect, send, answer), in milliseconds.
    pub timeout_ms: u64,
    /// Classifier score at or above which a text is flagged.
    pub threshold: f32,
}

/// A configured classifier hook: one HTTP agent reused for every text.
pub struct Classifier {
    agent: ureq::Agent,
    config: ClassifierConfig,
    n_failures_in_row: Cell<u32>,
    paused_until: Cell<Option<Instant>>,
}

/// What the classifier said about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierAnswer {
    /// The injection score in `0..=1`, or why there is none.
    pub score: Result<f32, String>,
    /// The label the server gave, if it gave one.
    pub label: Option<String>,
    /// How long the request took, in microseconds.
    pub latency_us: u64,
}

impl Classifier {
    /// Checks the settings (a bad URL or threshold is a usage error, unlike a server that is down).
    pub fn new(config: ClassifierConfig) -> anyhow::Result<Classifier> {
        if !(0.0..=1.0).contains(&config.threshold) {
            bail!(
                "`--classifier-threshold {}` is not between 0 and 1",
                config.threshold
            );
        }
        if config.timeout_ms == 0 || config.timeout_ms > TIMEOUT_MS_MAX {
            bail!(
                "`--classifier-timeout-ms {}` is out of range; it must be between 1 and {TIMEOUT_MS_MAX}",
                config.timeout_ms
            );
        }
        // Model servers run beside the agent; TLS is not built in (a local proxy can add it).
        if !config.url.starts_with("http://") {
            bail!(
                "classifier URL `{}` must start with `http://` (HTTPS is not supported)",
                config.url
            );
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_millis(config.timeout_ms))
            .redirects(0)
            .build();
        Ok(Classifier {
            agent,
            config,
            n_failures_in_row: Cell::new(0),
            paused_until: Cell::new(None),
        })
    }

    /// Asks the server about `text`. Never fails: a failure is the answer's `score` error.
    pub fn classify(&self, text: &str, source: &str) -> ClassifierAnswer {
        let started = Instant::now();
        if let Some(until) = self.paused_until.get() {
            if started < until {
                let left_ms = until.duration_since(started).as_millis();
                return ClassifierAnswer {
                    score: Err(format!(
                        "skipped: the classifier failed {FAILURES_BEFORE_PAUSE} times in a row; next try in {left_ms} ms"
                    )),
                    label: None,
                    latency_us: 0,
                };
            }
            self.paused_until.set(None);
        }
        let body = json!({ "text": text, "source": source, "inputs": text }).to_string();
        let result = self
            .agent
            .post(&self.config.url)
            .set("Content-Type", "application/json")
            .set("Accept", "application/json")
            .send_string(&body);
        let answer = match result {
            Ok(response) => read_body(response).and_then(|body| parse_answer(&body)),
            Err(ureq::Error::Status(code, _)) => Err(format!("classifier answered HTTP {code}")),
            Err(ureq::Error::Transport(transport)) => Err(transport.to_string()),
        };
        let elapsed = started.elapsed();
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if answer.is_ok() {
            self.n_failures_in_row.set(0);
        } else {
            let n_failures = self.n_failures_in_row.get().saturating_add(1);
            self.n_failures_in_row.set(n_failures);
            if n_failures >= FAILURES_BEFORE_PAUSE {
                self.n_failures_in_row.set(0);
                self.paused_until
                    .set(Some(Instant::now() + Duration::from_millis(PAUSE_MS)));
            }
        }
        match answer {
            Ok((score, label)) => ClassifierAnswer {
                score: Ok(score),
                label,
                latency_us,
            },
            Err(message) => {
                // ureq reports a timeout as an IO error whose wording varies with where it struck.
                let timed_out = elapsed >= Duration::from_millis(self.config.timeout_ms);
                let message = if timed_out {
                    format!("timed out after {} ms ({message})", self.config.timeout_ms)
                } else {
                    message
                };
                ClassifierAnswer {
                    score: Err(message),
                    label: None,
                    latency_us,
                }
            }
        }
    }

    /// Whether this answer flags the text on its own.
    pub fn flags(&self, answer: &ClassifierAnswer) -> bool {
        matches!(answer.score, Ok(score) if score >= self.config.threshold)
    }

    /// The `classifier` object of a scan's JSON output.
    pub fn answer_json(&self, answer: &ClassifierAnswer) -> Value {
        let latency_ms = answer.latency_us as f64 / 1000.0;
        match &answer.score {
            Ok(score) => {
                let mut value = json!({
                    "score": (f64::from(*score) * 1000.0).round() / 1000.0,
                    "threshold": f64::from(self.config.threshold),
                    "flagged": self.flags(answer),
                    "latency_ms": latency_ms,
                });
                if let (Some(label), Some(object)) = (&answer.label, value.as_object_mut()) {
                    object.insert("label".to_string(), Value::String(label.clone()));
                }
                value
            }
            Err(error) => json!({ "error": error, "latency_ms": latency_ms }),
        }
    }
}

fn read_body(response: ureq::Response) -> Result<String, String> {
    use std::io::Read as _;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(RESPONSE_BYTES_MAX + 1)
        .read_to_end(&mut body)
        .map_err(|err| format!("could not read the classifier's answer: {err}"))?;
    if body.len() as u64 > RESPONSE_BYTES_MAX {
        return Err(format!(
            "classifier answer is over the limit of {RESPONSE_BYTES_MAX} bytes"
        ));
    }
    String::from_utf8(body).map_err(|_| "classifier answer is not UTF-8".to_string())
}

/// Reads one of the accepted answer shapes into (injection score, label).
pub fn parse_answer(body: &str) -> Result<(f32, Option<String>), String> {
    let value: Value = serde_json::from_str(body.trim()).map_err(|err| {
        let excerpt: String = body.chars().take(60).collect();
        format!("classifier answer is not JSON ({err}): `{excerpt}`")
    })?;
    // A batched pipeline nests the list once: `[[{"label": ..., "score": ...}]]`.
    let value = match value {
        Value::Array(mut items)
            if items.len() == 1 && items.first().is_some_and(Value::is_array) =>
        {
            items.pop().unwrap_or(Value::Null)
        }
        other => other,
    };
    let entries: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&value],
        _ => return Err(malformed()),
    };
    if entries.is_empty() {
        return Err(malformed());
    }
    let mut attack: Option<(f64, String)> = None;
    let mut benign: Option<(f64, String)> = None;
    let mut plain: Option<f64> = None;
    for entry in entries {
        let score = entry
            .get("score")
            .and_then(Value::as_f64)
            .ok_or_else(malformed)?;
        if !(0.0..=1.0).contains(&score) {
            return Err(format!("classifier score `{score}` is not between 0 and 1"));
        }
        match entry.get("label") {
            None | Some(Value::Null) => plain = Some(score),
            Some(Value::String(label)) => {
                let lower = label.to_ascii_lowercase();
                if ATTACK_LABELS.contains(&lower.as_str()) {
                    let (sum, names) = attack.get_or_insert((0.0, String::new()));
                    *sum += score;
                    if names.is_empty() {
                        *names = label.clone();
                    }
                } else if BENIGN_LABELS.contains(&lower.as_str()) {
                    if benign.as_ref().is_none_or(|(best, _)| score > *best) {
                        benign = Some((score, label.clone()));
                    }
                } else {
                    return Err(format!("classifier label `{label}` is unknown"));
                }
            }
            Some(_) => return Err(malformed()),
        }
    }
    let (score, label) = match (attack, benign, plain) {
        (Some((sum, label)), _, _) => (sum.min(1.0), Some(label)),
        (None, Some((best, label)), _) => (1.0 - best, Some(label)),
        (None, None, Some(score)) => (score, None),
        (None, None, None) => return Err(malformed()),
    };
    Ok((score as f32, label))
}

fn malformed() -> String {
    "classifier answer has no `score` in 0..=1 (expected `{\"score\": x}` or `[{\"label\": ..., \"score\": x}]`)".to_string()
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn answers_in_every_accepted_shape() {
        assert_eq!(parse_answer("{\"score\": 0.25}").unwrap(), (0.25, None));
        let (score, label) = parse_answer("{\"label\": \"INJECTION\", \"score\": 0.9}").unwrap();
        assert!((score - 0.9).abs() < 1e-6);
        assert_eq!(label.as_deref(), Some("INJECTION"));
        let (score, _) = parse_answer("[{\"label\": \"SAFE\", \"score\": 0.8}]").unwrap();
        assert!((score - 0.2).abs() < 1e-6);
        let (score, _) = parse_answer(
            "[[{\"label\": \"BENIGN\", \"score\": 0.1}, {\"label\": \"INJECTION\", \"score\": 0.5}, {\"label\": \"JAILBREAK\", \"score\": 0.4}]]",
        )
        .unwrap();
        assert!((score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            "{\"score\": \"high\"}",
            "{\"score\": 1.5}",
            "{\"score\": -0.1}",
            "[{\"label\": \"SPAM\", \"score\": 0.5}]",
            "42",
        ] {
            assert!(parse_answer(body).is_err(), "{body}");
        }
    }
}
