//! Checking: source text -> every diagnostic, and a [`Pact`] when there are no errors.
//!
//! The order is: parse (YAML/JSON with positions), shape (serde, one section at a time so one
//! mistake does not hide the next), meaning (names resolve, counters exist, limits hold), then
//! Cedar (each condition parsed alone, the generated policies validated in strict mode against
//! the schema generated from the catalog), then lints (dead rules, shadowed permits, unguarded
//! irreversible actions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use cedar_policy::{Expression, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{has_errors, Diagnostic, Position};
use crate::duration::parse_duration_ms;
use crate::model::{
    Action, Arg, ArgKind, AuthorityKey, AuthorityRequirement, Bulk, Counter, CounterKind, Effect,
    Pact, Rule,
};
use crate::source::{self, pointer_segment, Spans};
use crate::syntax::{
    ActionRef, ArgDoc, ArgTypeName, BulkDoc, KeyAlg, PactDoc, Response, Reversibility, SignalBound,
    Tier,
};

/// Most actions in one catalog.
pub const ACTIONS_MAX: usize = 2_000;
/// Most rules in one pact.
pub const RULES_MAX: usize = 2_000;
/// Most counters in one pact.
pub const COUNTERS_MAX: usize = 256;
/// Most canaries in one pact.
pub const CANARIES_MAX: usize = 100_000;
/// Shortest canary: shorter tokens collide with ordinary text.
pub const CANARY_CHARS_MIN: usize = 8;
/// Longest Cedar condition, in bytes.
pub const CONDITION_BYTES_MAX: usize = 8 * 1024;

/// Signals a consequence may name (see DESIGN.md's failure patterns).
pub const SIGNALS: &[&str] = &[
    "authority_missing",
    "boundary_probe_failure",
    "bulk_operation",
    "call_outside_catalog",
    "canary_seen",
    "evaluation_staleness",
    "input_shift",
    "jury_variance",
    "model_version_changed",
    "obligation_breach",
    "outcome_missing",
    "proxy_truth_divergence",
    "scope_violation_rate",
    "scope_violation_trend",
    "score_swing",
    "score_velocity",
];

/// The result of checking one source text.
#[derive(Debug)]
pub struct Checked {
    /// The pact, when there were no errors (warnings allowed).
    pub pact: Option<Pact>,
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks a pact source (YAML or JSON).
pub fn check(text: &str) -> Checked {
    let doc = match source::parse(text) {
        Ok(doc) => doc,
        Err(diagnostic) => {
            return Checked {
                pact: None,
                diagnostics: vec![diagnostic],
            }
        }
    };
    let mut cx = Cx {
        text,
        spans: &doc.spans,
        diagnostics: Vec::new(),
    };
    let pact_doc = shape(&doc.value, &mut cx);
    let pact = pact_doc.and_then(|pact_doc| build(pact_doc, &mut cx));
    let mut diagnostics = cx.diagnostics;
    diagnostics.sort_by_key(|diagnostic| diagnostic.position);
    let pact = if has_errors(&diagnostics) { None } else { pact };
    Checked { pact, diagnostics }
}

/// Parses a source into its document, checking only its shape (YAML, fields and types), not
/// its meaning. `pactum pact fmt` uses it: a file with a dangling rule can still be formatted.
pub fn parse_doc(text: &str) -> Result<PactDoc, Vec<Diagnostic>> {
    let doc = source::parse(text).map_err(|diagnostic| vec![diagnostic])?;
    let mut cx = Cx {
        text,
        spans: &doc.spans,
        diagnostics: Vec::new(),
    };
    match shape(&doc.value, &mut cx) {
        Some(pact_doc) if !has_errors(&cx.diagnostics) => Ok(pact_doc),
        _ => {
            let mut diagnostics = cx.diagnostics;
            diagnostics.sort_by_key(|diagnostic| diagnostic.position);
            Err(diagnostics)
        }
    }
}

/// Checks a pact source given as bytes, as read from a file: too-large and non-UTF-8 input are
/// diagnostics like any other, with the line and column of the first invalid byte.
pub fn check_bytes(bytes: &[u8]) -> Checked {
    let refuse = |diagnostic: Diagnostic| Checked {
        pact: None,
        diagnostics: vec![diagnostic],
    };
    if bytes.len() > source::PACT_BYTES_MAX {
        return refuse(Diagnostic::error(
            "too-large",
            format!(
                "the file is {} bytes; the limit is {} bytes",
                bytes.len(),
                source::PACT_BYTES_MAX
            ),
            Position::start(),
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => check(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(err) => {
            let valid = bytes.get(..err.valid_up_to()).unwrap_or_default();
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            refuse(Diagnostic::error(
                "encoding",
                format!(
                    "the file is not UTF-8: invalid byte at offset {}",
                    err.valid_up_to()
                ),
                Position { line, col },
            ))
        }
    }
}

struct Cx<'a> {
    text: &'a str,
    spans: &'a Spans,
    diagnostics: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn error(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        let position = self.spans.value_at(path);
        self.diagnostics
            .push(Diagnostic::error(code, message, position).with_path(path));
    }
    fn error_at_key(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        let position = self.spans.key_at(path);
        self.diagnostics
            .push(Diagnostic::error(code, message, position).with_path(path));
    }
    fn warning(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        let position = self.spans.value_at(path);
        self.diagnostics
            .push(Diagnostic::warning(code, message, position).with_path(path));
    }
    fn warning_at_key(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        let position = self.spans.key_at(path);
        self.diagnostics
            .push(Diagnostic::warning(code, message, position).with_path(path));
    }
    /// An error about byte `offset` of the condition at `path`: it points inside the condition
    /// when the scalar can be mapped back to the file, else at the condition's start.
    fn error_in_condition(
        &mut self,
        code: &'static str,
        path: &str,
        condition: &str,
        offset: Option<usize>,
        message: impl Into<String>,
    ) {
        let position = self.condition_position(path, condition, offset);
        self.diagnostics
            .push(Diagnostic::error(code, message, position).with_path(path));
    }
    fn warning_in_condition(
        &mut self,
        path: &str,
        condition: &str,
        offset: Option<usize>,
        message: impl Into<String>,
    ) {
        let position = self.condition_position(path, condition, offset);
        self.diagnostics
            .push(Diagnostic::warning("cedar-warning", message, position).with_path(path));
    }
    fn condition_position(&self, path: &str, condition: &str, offset: Option<usize>) -> Position {
        let start = self.spans.value_at(path);
        offset
            .and_then(|offset| scalar_offset_position(self.text, start, condition, offset))
            .unwrap_or(start)
    }
}

/// The file position of byte `offset` of the decoded scalar `decoded`, whose representation
/// starts at `start`. Handles plain, single-quoted and double-quoted scalars on one line and
/// literal block scalars (`|`); `None` when the representation cannot be followed (folding,
/// multi-line flow scalars), so the caller falls back to the scalar's start.
fn scalar_offset_position(
    text: &str,
    start: Position,
    decoded: &str,
    offset: usize,
) -> Option<Position> {
    let decoded_prefix = decoded.get(..offset)?;
    let line = text.lines().nth(start.line.checked_sub(1)?)?;
    let raw_idx = line
        .char_indices()
        .nth(start.col.checked_sub(1)?)
        .map(|(idx, _)| idx)?;
    let raw = line.get(raw_idx..)?;
    let mut raw_chars = raw.chars().peekable();
    let style = *raw_chars.peek()?;
    if style == '|' {
        return literal_block_position(text, start.line, decoded_prefix);
    }
    if style == '>' {
        return None;
    }
    let mut col = start.col;
    if style == '"' || style == '\'' {
        raw_chars.next();
        col += 1;
    }
    for decoded_char in decoded_prefix.chars() {
        let raw_char = raw_chars.next()?;
        match style {
            '"' if raw_char == '\\' => {
                let escape = raw_chars.next()?;
                let n_hex = match escape {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                for _ in 0..n_hex {
                    raw_chars.next()?;
                }
                col += 2 + n_hex;
            }
            '\'' if raw_char == '\'' => {
                if raw_chars.next()? != '\'' || decoded_char != '\'' {
                    return None;
                }
                col += 2;
            }
            _ => {
                if raw_char != decoded_char {
                    return None;
                }
                col += 1;
            }
        }
    }
    Some(Position {
        line: start.line,
        col,
    })
}

/// Follows a literal block scalar: decoded line `k` is file line `indicator_line + 1 + k`,
/// indented by the indentation of the block's first non-empty line.
fn literal_block_position(
    text: &str,
    indicator_line: usize,
    decoded_prefix: &str,
) -> Option<Position> {
    let line_idx = decoded_prefix.matches('\n').count();
    let in_line = decoded_prefix.rsplit('\n').next().unwrap_or("");
    let mut content_lines = text.lines().skip(indicator_line);
    let indent = content_lines
        .clone()
        .find(|candidate| !candidate.trim().is_empty())
        .map(|first| first.len() - first.trim_start_matches(' ').len())?;
    let target = content_lines.nth(line_idx)?;
    let target_content = target.get(indent..)?;
    if !target_content.starts_with(in_line) || target.get(..indent)?.trim() != "" {
        return None;
    }
    Some(Position {
        line: indicator_line + 1 + line_idx,
        col: indent + in_line.chars().count() + 1,
    })
}

/// The byte offset of the first labelled span of a Cedar error, if it has one.
fn label_offset(diagnostic: &dyn miette::Diagnostic) -> Option<usize> {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset())
}

const TOP_LEVEL_FIELDS: &[&str] = &[
    "pact",
    "version",
    "agent",
    "owner",
    "class",
    "tier",
    "description",
    "actions",
    "rules",
    "counters",
    "canaries",
    "authority",
    "obligations",
    "consequences",
    "recovery",
    "signals",
    "score",
];

/// The trust score's dimensions, which a pact's `score.weights` may name (the `score` crate
/// computes them; its tests check that the two lists agree).
pub const SCORE_DIMENSIONS: &[&str] = &[
    "task_accuracy",
    "source_grounding",
    "scope_adherence",
    "boundary_integrity",
    "injection_resistance",
    "authority_discipline",
    "persona_stability",
    "harness_stability",
    "outcome_reliability",
    "evaluation_freshness",
    "incident_history",
    "dispute_record",
];

/// Largest weight of one score dimension.
pub const SCORE_WEIGHT_MAX: u32 = 100;

/// Deserializes `value` as `T`, reporting a failure at the innermost path serde reached.
fn de<T: DeserializeOwned>(value: &Value, path: &str, cx: &mut Cx<'_>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let mut inner = path.to_string();
            for segment in err.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        inner.push_str(&format!("/{index}"));
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        inner.push('/');
                        inner.push_str(&pointer_segment(key));
                    }
                    _ => {}
                }
            }
            let message = err.into_inner().to_string();
            let message = clean_serde_message(&message);
            if message.starts_with("unknown field") {
                cx.error_at_key("unknown-field", &inner, message);
            } else {
                cx.error("shape", &inner, message);
            }
            None
        }
    }
}

/// serde's messages for untagged enums are unhelpful; say what shapes are accepted instead.
fn clean_serde_message(message: &str) -> String {
    if message.starts_with("data did not match any variant of untagged enum ArgDoc") {
        return "an argument is a type (`string`, `long`, `bool`, `path`, `url`, `set<string>`, \
                `set<long>`, `set<path>`, `set<url>`) or `{type, required, enum, max_bytes, min, \
                max, properties, items, description}`"
            .to_string();
    }
    if message.starts_with("data did not match any variant of untagged enum ActionRef") {
        return "expected an action name or a list of action names".to_string();
    }
    if message.starts_with("data did not match any variant of untagged enum BulkDoc") {
        return "`bulk` is an argument name or `{arg, review_above}`".to_string();
    }
    // serde names Rust types; say what to write instead.
    message
        .replace("expected u64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
}

/// Shape: deserialize each section on its own so that all shape errors are reported at once.
fn shape(value: &Value, cx: &mut Cx<'_>) -> Option<PactDoc> {
    let Some(top) = value.as_object() else {
        cx.error(
            "shape",
            "",
            "a pact is a map with `pact`, `version`, `agent`, `tier` and `actions`",
        );
        return None;
    };
    let errors_before = cx.diagnostics.len();
    for key in top.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            cx.error_at_key(
                "unknown-field",
                &format!("/{}", pointer_segment(key)),
                format!(
                    "unknown field `{key}`, expected one of {}",
                    TOP_LEVEL_FIELDS
                        .iter()
                        .map(|field| format!("`{field}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for required in ["pact", "version", "agent", "tier", "actions"] {
        if !top.contains_key(required) {
            cx.error("missing-field", "", format!("missing field `{required}`"));
        }
    }
    for (key, item) in top {
        let path = format!("/{}", pointer_segment(key));
        match (key.as_str(), item) {
            ("actions" | "counters", Value::Object(entries)) => {
                for (name, entry) in entries {
                    let entry_path = format!("{path}/{}", pointer_segment(name));
                    if key == "actions" {
                        de::<crate::syntax::ActionDoc>(entry, &entry_path, cx);
                    } else {
                        de::<crate::syntax::CounterDoc>(entry, &entry_path, cx);
                    }
                }
            }
            ("rules", Value::Array(items)) => {
                for (idx, entry) in items.iter().enumerate() {
                    de::<crate::syntax::RuleDoc>(entry, &format!("{path}/{idx}"), cx);
                }
            }
            ("obligations", Value::Array(items)) => {
                for (idx, entry) in items.iter().enumerate() {
                    de::<crate::syntax::ObligationDoc>(entry, &format!("{path}/{idx}"), cx);
                }
            }
            ("consequences", Value::Array(items)) => {
                for (idx, entry) in items.iter().enumerate() {
                    de::<crate::syntax::ConsequenceDoc>(entry, &format!("{path}/{idx}"), cx);
                }
            }
            ("signals", Value::Object(entries)) => {
                for (name, entry) in entries {
                    let entry_path = format!("{path}/{}", pointer_segment(name));
                    de::<crate::syntax::SignalDoc>(entry, &entry_path, cx);
                }
            }
            // The other fields are checked one by one too, so a wrong `version` is reported
            // next to a missing `agent` rather than after it is fixed.
            ("pact" | "agent" | "owner" | "class" | "description", _) => {
                de::<String>(item, &path, cx);
            }
            ("version", _) => {
                de::<u64>(item, &path, cx);
            }
            ("tier", _) => {
                de::<Tier>(item, &path, cx);
            }
            ("canaries", _) => {
                de::<Vec<String>>(item, &path, cx);
            }
            ("authority", _) => {
                de::<crate::syntax::AuthorityDoc>(item, &path, cx);
            }
            ("recovery", _) => {
                de::<crate::syntax::RecoveryDoc>(item, &path, cx);
            }
            ("score", _) => {
                de::<crate::syntax::ScoreDoc>(item, &path, cx);
            }
            _ => {}
        }
    }
    if cx.diagnostics.len() > errors_before {
        return None;
    }
    de::<PactDoc>(value, "", cx)
}

/// Meaning and Cedar: turn a well-shaped document into a pact.
fn build(doc: PactDoc, cx: &mut Cx<'_>) -> Option<Pact> {
    check_identity(&doc, cx);
    if doc.actions.len() > ACTIONS_MAX {
        cx.error(
            "limit",
            "/actions",
            format!("{} actions; the limit is {ACTIONS_MAX}", doc.actions.len()),
        );
    }
    if doc.rules.len() > RULES_MAX {
        cx.error(
            "limit",
            "/rules",
            format!("{} rules; the limit is {RULES_MAX}", doc.rules.len()),
        );
    }
    if doc.counters.len() > COUNTERS_MAX {
        cx.error(
            "limit",
            "/counters",
            format!(
                "{} counters; the limit is {COUNTERS_MAX}",
                doc.counters.len()
            ),
        );
    }
    check_canaries(&doc, cx);
    check_obligations(&doc, cx);
    let action_names: Vec<&str> = doc.actions.keys().map(String::as_str).collect();
    let action_idx: HashMap<String, usize> = action_names
        .iter()
        .enumerate()
        .map(|(idx, name)| (name.to_string(), idx))
        .collect();

    let args_by_action = check_args(&doc, cx);
    let counters = check_counters(&doc, &action_idx, &args_by_action, cx);
    let rules = check_rules(&doc, &action_idx, cx);
    check_consequences(&doc, cx);
    check_signals(&doc, cx);
    check_score(&doc, cx);
    let authority_keys = check_authority(&doc, cx);
    let token_lifetime_ms_max = match doc.authority.as_ref().and_then(|a| a.max_lifetime.as_ref()) {
        Some(text) => match parse_duration_ms(text) {
            Ok(ms) => ms,
            Err(message) => {
                cx.error("duration", "/authority/max_lifetime", message);
                0
            }
        },
        None => 3_600_000,
    };

    let schema_text = cedar_schema_text(&doc, &args_by_action);
    let schema = match Schema::from_cedarschema_str(&schema_text) {
        Ok((schema, _warnings)) => schema,
        Err(err) => {
            cx.error(
                "cedar-schema",
                "/actions",
                format!("the catalog does not make a valid Cedar schema: {err}"),
            );
            return None;
        }
    };
    // Conditions are type-checked even when other parts have errors, so one run reports every
    // problem; `compile_rules` stops before building policies if there are any.
    let compiled = compile_rules(&doc, &rules, &schema, cx)?;
    lint(&doc, &rules, cx);

    let mut actions = Vec::with_capacity(doc.actions.len());
    for (idx, (name, action_doc)) in doc.actions.iter().enumerate() {
        let uid =
            match cedar_policy::EntityUid::from_str(&format!("Action::{}", cedar_string(name))) {
                Ok(uid) => uid,
                Err(err) => {
                    cx.error(
                        "cedar-schema",
                        &format!("/actions/{}", pointer_segment(name)),
                        err.to_string(),
                    );
                    return None;
                }
            };
        let bulk = action_doc.bulk.as_ref().map(|bulk| match bulk {
            BulkDoc::Arg(arg) => Bulk {
                arg: arg.clone(),
                review_above: default_bulk_review_above(doc.tier),
            },
            BulkDoc::Full { arg, review_above } => Bulk {
                arg: arg.clone(),
                review_above: review_above.unwrap_or_else(|| default_bulk_review_above(doc.tier)),
            },
        });
        let (policies, review_policies) = compiled.per_action.get(idx).cloned().unwrap_or_default();
        actions.push(Action {
            name: name.clone(),
            reversibility: action_doc.reversibility,
            sensitivity: action_doc.sensitivity,
            category: action_doc.category.clone().unwrap_or_else(|| name.clone()),
            bulk,
            args: args_by_action.get(idx).cloned().unwrap_or_default(),
            uid,
            policies,
            review_policies,
            rule_idxs: rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.action_idxs.contains(&idx))
                .map(|(rule_idx, _)| rule_idx)
                .collect(),
            counter_idxs: counters
                .iter()
                .enumerate()
                .filter(|(_, counter)| counter.action_idxs.contains(&idx))
                .map(|(counter_idx, _)| counter_idx)
                .collect(),
        });
    }
    let principal_uid =
        match cedar_policy::EntityUid::from_str(&format!("Agent::{}", cedar_string(&doc.agent))) {
            Ok(uid) => uid,
            Err(err) => {
                cx.error("identity", "/agent", err.to_string());
                return None;
            }
        };
    let value = match serde_json::to_value(&doc) {
        Ok(value) => value,
        Err(err) => {
            cx.error("shape", "", err.to_string());
            return None;
        }
    };
    let digest = crate::canonical::digest_of(&value);
    Some(Pact {
        doc,
        digest,
        actions,
        action_idx,
        rules,
        counters,
        authority_keys,
        token_lifetime_ms_max,
        principal_uid,
        schema,
        schema_text,
        policies_text: compiled.text,
    })
}

/// The review threshold for a bulk argument with none given: stricter for riskier agents.
fn default_bulk_review_above(tier: Tier) -> i64 {
    match tier {
        Tier::Low => 1_000,
        Tier::Medium => 500,
        Tier::High => 100,
        Tier::Critical => 10,
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_identity(doc: &PactDoc, cx: &mut Cx<'_>) {
    if doc.pact.trim().is_empty() {
        cx.error("identity", "/pact", "the pact id must not be empty");
    }
    if doc.agent.trim().is_empty() {
        cx.error("identity", "/agent", "the agent id must not be empty");
    }
    if doc.version == 0 {
        cx.error("identity", "/version", "versions start at 1");
    }
    if doc.actions.is_empty() {
        cx.error(
            "empty",
            "/actions",
            "the catalog has no actions; an agent with none can do nothing",
        );
    }
}

fn check_canaries(doc: &PactDoc, cx: &mut Cx<'_>) {
    if doc.canaries.len() > CANARIES_MAX {
        cx.error(
            "limit",
            "/canaries",
            format!(
                "{} canaries; the limit is {CANARIES_MAX}",
                doc.canaries.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (idx, canary) in doc.canaries.iter().enumerate() {
        let path = format!("/canaries/{idx}");
        if canary.chars().count() < CANARY_CHARS_MIN {
            cx.error("canary", &path, format!("canary `{canary}` is shorter than {CANARY_CHARS_MIN} characters and would match ordinary text"));
        }
        if canary.chars().any(char::is_whitespace) {
            cx.error(
                "canary",
                &path,
                format!("canary `{canary}` contains white space"),
            );
        }
        if !seen.insert(canary.as_str()) {
            cx.warning(
                "canary",
                &path,
                format!("canary `{canary}` is listed twice"),
            );
        }
    }
}

fn check_obligations(doc: &PactDoc, cx: &mut Cx<'_>) {
    let mut ids = BTreeSet::new();
    for (idx, obligation) in doc.obligations.iter().enumerate() {
        let path = format!("/obligations/{idx}");
        if !ids.insert(obligation.id.as_str()) {
            cx.error(
                "duplicate-id",
                &format!("{path}/id"),
                format!("obligation id `{}` is used twice", obligation.id),
            );
        }
        let measured = &obligation.measured_by;
        if measured.suite.is_none() && measured.production.is_none() {
            cx.error("obligation", &format!("{path}/measured_by"), "an obligation needs a measurement method: a `suite` (with judges) or a `production` source");
        }
        if measured.suite.is_some() && measured.judges.is_empty() {
            cx.error(
                "obligation",
                &format!("{path}/measured_by"),
                "a suite needs at least one judge",
            );
        }
        if let Some(production) = &measured.production {
            if production != "verdicts" && production != "outcomes" {
                cx.error(
                    "obligation",
                    &format!("{path}/measured_by/production"),
                    format!(
                        "unknown production source `{production}`; use `verdicts` or `outcomes`"
                    ),
                );
            }
        }
        match (obligation.threshold.min, obligation.threshold.max) {
            (Some(_), Some(_)) | (None, None) => cx.error(
                "obligation",
                &format!("{path}/threshold"),
                "a threshold is exactly one of `min` or `max`",
            ),
            (Some(bound), None) | (None, Some(bound)) => {
                if !bound.is_finite() || bound < 0.0 {
                    cx.error(
                        "obligation",
                        &format!("{path}/threshold"),
                        "a threshold is a finite number, zero or more",
                    );
                }
            }
        }
        if obligation.min_samples == 0 {
            cx.error(
                "obligation",
                &format!("{path}/min_samples"),
                "an obligation needs at least one sample",
            );
        }
        for field in ["window", "freshness"] {
            let text = if field == "window" {
                &obligation.window
            } else {
                &obligation.freshness
            };
            if let Err(message) = parse_duration_ms(text) {
                cx.error("duration", &format!("{path}/{field}"), message);
            }
        }
    }
}

/// Deepest nesting of `object` and `set` types in one argument: `set<string>` and an object of
/// strings are 1 deep, a set of objects 2. It bounds the guard's walk over a call's arguments
/// and the Cedar record types conditions are checked against.
pub const ARG_DEPTH_MAX: usize = 4;

fn check_args(doc: &PactDoc, cx: &mut Cx<'_>) -> Vec<Vec<Arg>> {
    let mut out = Vec::with_capacity(doc.actions.len());
    for (name, action) in &doc.actions {
        let path = format!("/actions/{}", pointer_segment(name));
        let mut args = Vec::with_capacity(action.args.len());
        for (arg_name, arg_doc) in &action.args {
            let arg_path = format!("{path}/args/{}", pointer_segment(arg_name));
            if !is_identifier(arg_name) {
                cx.error_at_key("name", &arg_path, format!("argument name `{arg_name}` must be an identifier (letters, digits, `_`) so conditions can name it"));
            }
            args.push(check_arg(arg_name, arg_doc, &arg_path, 0, cx));
        }
        if let Some(bulk) = &action.bulk {
            let (bulk_arg, bulk_path) = match bulk {
                BulkDoc::Arg(arg) => (arg, format!("{path}/bulk")),
                BulkDoc::Full { arg, .. } => (arg, format!("{path}/bulk/arg")),
            };
            match args.iter().find(|arg| &arg.name == bulk_arg) {
                None => cx.error(
                    "unknown-arg",
                    &bulk_path,
                    format!("bulk argument `{bulk_arg}` is not an argument of `{name}`"),
                ),
                Some(arg) if arg.kind != ArgKind::Long => cx.error(
                    "arg",
                    &bulk_path,
                    format!("bulk argument `{bulk_arg}` must be a `long`"),
                ),
                Some(_) => {}
            }
        }
        args.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(args);
    }
    out
}

/// Checks one argument, object member or set item (`name` empty) at `path`, whose container
/// is `depth` levels of `object`/`set` deep.
fn check_arg(name: &str, arg_doc: &ArgDoc, path: &str, depth: usize, cx: &mut Cx<'_>) -> Arg {
    let scalar = |arg_type: ArgTypeName| match arg_type {
        ArgTypeName::String => Some(ArgKind::String),
        ArgTypeName::Long => Some(ArgKind::Long),
        ArgTypeName::Bool => Some(ArgKind::Bool),
        ArgTypeName::Path => Some(ArgKind::Path),
        ArgTypeName::Url => Some(ArgKind::Url),
        _ => None,
    };
    let item_of = |arg_type: ArgTypeName| match arg_type {
        ArgTypeName::SetString => Some(ArgKind::String),
        ArgTypeName::SetLong => Some(ArgKind::Long),
        ArgTypeName::SetPath => Some(ArgKind::Path),
        ArgTypeName::SetUrl => Some(ArgKind::Url),
        _ => None,
    };
    let plain_item = |kind: ArgKind| Arg {
        name: String::new(),
        arg_type: kind.legacy_type(),
        kind,
        required: true,
        allowed: None,
        max_bytes: None,
        min: None,
        max: None,
    };
    let (arg_type, full) = match arg_doc {
        ArgDoc::Type(arg_type) => (*arg_type, None),
        ArgDoc::Full(full) => (full.arg_type, Some(full)),
    };
    let nested = scalar(arg_type).is_none();
    if nested && depth >= ARG_DEPTH_MAX {
        cx.error(
            "limit",
            path,
            format!(
                "the argument nests `object` and `set` {} deep; the limit is {ARG_DEPTH_MAX}",
                depth + 1
            ),
        );
    }
    let deeper = nested && depth < ARG_DEPTH_MAX;
    let kind = match (scalar(arg_type), item_of(arg_type), arg_type) {
        (Some(kind), _, _) => kind,
        (None, Some(item), _) => ArgKind::Set(Box::new(plain_item(item))),
        (None, None, ArgTypeName::Set) => match full.and_then(|full| full.items.as_deref()) {
            Some(items) if deeper => {
                let item = check_arg("", items, &format!("{path}/items"), depth + 1, cx);
                ArgKind::Set(Box::new(item))
            }
            Some(_) => ArgKind::Set(Box::new(plain_item(ArgKind::String))),
            None => {
                cx.error(
                    "arg",
                    path,
                    "a `set` argument needs `items`: `{ type: set, items: <type> }`",
                );
                ArgKind::Set(Box::new(plain_item(ArgKind::String)))
            }
        },
        (None, None, _) => match full.and_then(|full| full.properties.as_ref()) {
            Some(properties) => {
                let mut members = Vec::with_capacity(properties.len());
                for (member_name, member_doc) in properties {
                    let member_path = format!("{path}/properties/{}", pointer_segment(member_name));
                    if !is_identifier(member_name) {
                        cx.error_at_key("name", &member_path, format!("member name `{member_name}` must be an identifier (letters, digits, `_`) so conditions can name it"));
                    }
                    if deeper {
                        members.push(check_arg(
                            member_name,
                            member_doc,
                            &member_path,
                            depth + 1,
                            cx,
                        ));
                    }
                }
                members.sort_by(|a, b| a.name.cmp(&b.name));
                ArgKind::Object(members)
            }
            None => {
                cx.error(
                    "arg",
                    path,
                    "an `object` argument declares its members: `{ type: object, properties: { ... } }`",
                );
                ArgKind::Object(Vec::new())
            }
        },
    };
    let mut arg = plain_item(kind);
    arg.name = name.to_string();
    let Some(full) = full else {
        return arg;
    };
    if full.allowed.is_some() && arg.kind != ArgKind::String {
        cx.error(
            "arg",
            &format!("{path}/enum"),
            "`enum` applies to string arguments only",
        );
    }
    if (full.min.is_some() || full.max.is_some()) && arg.kind != ArgKind::Long {
        let field = if full.min.is_some() { "min" } else { "max" };
        cx.error(
            "arg",
            &format!("{path}/{field}"),
            "`min` and `max` apply to long arguments only",
        );
    }
    if let (Some(min), Some(max)) = (full.min, full.max) {
        if min > max {
            cx.error(
                "arg",
                &format!("{path}/min"),
                format!("`min` ({min}) is greater than `max` ({max})"),
            );
        }
    }
    if full.max_bytes.is_some()
        && !matches!(arg.kind, ArgKind::String | ArgKind::Path | ArgKind::Url)
    {
        cx.error(
            "arg",
            &format!("{path}/max_bytes"),
            "`max_bytes` applies to string, path and url arguments only",
        );
    }
    if full.items.is_some() && arg_type != ArgTypeName::Set {
        cx.error_at_key(
            "arg",
            &format!("{path}/items"),
            "`items` applies to `type: set` only",
        );
    }
    if full.properties.is_some() && arg_type != ArgTypeName::Object {
        cx.error_at_key(
            "arg",
            &format!("{path}/properties"),
            "`properties` applies to `type: object` only",
        );
    }
    if name.is_empty() && !full.required {
        cx.error_at_key(
            "arg",
            &format!("{path}/required"),
            "the items of a set are always required",
        );
    }
    arg.required = full.required || name.is_empty();
    arg.allowed = full.allowed.clone();
    arg.max_bytes = full.max_bytes;
    arg.min = full.min;
    arg.max = full.max;
    arg
}

/// Resolves action names (`"*"` is every action) to indexes, reporting unknown ones.
fn resolve_actions(
    actions: &ActionRef,
    path: &str,
    action_idx: &HashMap<String, usize>,
    cx: &mut Cx<'_>,
) -> Vec<usize> {
    let names = actions.names();
    if names.contains(&"*") {
        let mut all: Vec<usize> = action_idx.values().copied().collect();
        all.sort_unstable();
        return all;
    }
    let mut idxs = Vec::with_capacity(names.len());
    let is_list = matches!(actions, ActionRef::Many(_));
    for (name_idx, name) in names.into_iter().enumerate() {
        match action_idx.get(name) {
            Some(idx) => idxs.push(*idx),
            None => {
                let mut known: Vec<&String> = action_idx.keys().collect();
                known.sort();
                let hint = closest(name, known.iter().map(|name| name.as_str()));
                let name_path = if is_list {
                    format!("{path}/{name_idx}")
                } else {
                    path.to_string()
                };
                cx.error(
                    "unknown-action",
                    &name_path,
                    format!("unknown action `{name}`{hint}"),
                );
            }
        }
    }
    idxs.sort_unstable();
    idxs.dedup();
    idxs
}

/// ", did you mean `x`?" for the closest candidate by edit distance, when one is close.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(name, candidate);
        if distance <= 3 && best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    match best {
        Some((_, candidate)) => format!("; did you mean `{candidate}`?"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b_chars.iter().enumerate() {
            let substitution =
                previous.get(j).copied().unwrap_or(0) + usize::from(a_char != *b_char);
            let insertion = current.get(j).copied().unwrap_or(0) + 1;
            let deletion = previous.get(j + 1).copied().unwrap_or(0) + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

fn check_counters(
    doc: &PactDoc,
    action_idx: &HashMap<String, usize>,
    args_by_action: &[Vec<Arg>],
    cx: &mut Cx<'_>,
) -> Vec<Counter> {
    let mut counters = Vec::with_capacity(doc.counters.len());
    for (name, counter) in &doc.counters {
        let path = format!("/counters/{}", pointer_segment(name));
        if !is_identifier(name) {
            cx.error_at_key(
                "name",
                &path,
                format!("counter name `{name}` must be an identifier (letters, digits, `_`)"),
            );
        }
        let action_idxs = resolve_actions(&counter.of, &format!("{path}/of"), action_idx, cx);
        let kind = match (&counter.sum, &counter.count) {
            (Some(arg), None) => {
                for idx in &action_idxs {
                    let declared = args_by_action
                        .get(*idx)
                        .and_then(|args| args.iter().find(|candidate| &candidate.name == arg));
                    let action_name = doc
                        .actions
                        .keys()
                        .nth(*idx)
                        .map(String::as_str)
                        .unwrap_or("?");
                    match declared {
                        None => cx.error("unknown-arg", &format!("{path}/sum"), format!("counter sums `{arg}`, which `{action_name}` does not declare")),
                        Some(found) if found.kind != ArgKind::Long => cx.error("arg", &format!("{path}/sum"), format!("counter sums `{arg}`, which is not a `long` in `{action_name}`")),
                        Some(found) if !found.required => cx.error("arg", &format!("{path}/sum"), format!("counter sums `{arg}`, which is optional in `{action_name}`; a summed argument must be required")),
                        Some(_) => {}
                    }
                }
                CounterKind::Sum { arg: arg.clone() }
            }
            (None, Some(_)) => CounterKind::Calls,
            _ => {
                cx.error(
                    "counter",
                    &path,
                    "a counter has exactly one of `sum: <argument>` or `count: calls`",
                );
                CounterKind::Calls
            }
        };
        let window_ms = match &counter.window {
            Some(text) => match parse_duration_ms(text) {
                Ok(ms) => Some(ms),
                Err(message) => {
                    cx.error("duration", &format!("{path}/window"), message);
                    None
                }
            },
            None => None,
        };
        let per_session = counter.per == Some(crate::syntax::CounterScope::Session);
        if counter.window.is_none() && !per_session {
            cx.error(
                "counter",
                &path,
                "a counter needs a `window`, or `per: session` to count for the whole session",
            );
        }
        counters.push(Counter {
            name: name.clone(),
            kind,
            action_idxs,
            window_ms,
            per_session,
        });
    }
    counters
}

fn check_rules(doc: &PactDoc, action_idx: &HashMap<String, usize>, cx: &mut Cx<'_>) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(doc.rules.len());
    let mut ids = BTreeSet::new();
    for (rule_idx, rule) in doc.rules.iter().enumerate() {
        let path = format!("/rules/{rule_idx}");
        if rule.id.trim().is_empty() || rule.id.starts_with("pactum:") {
            cx.error(
                "rule-id",
                &format!("{path}/id"),
                "a rule id must not be empty or start with `pactum:`",
            );
        }
        if !ids.insert(rule.id.as_str()) {
            cx.error(
                "duplicate-id",
                &format!("{path}/id"),
                format!("rule id `{}` is used twice", rule.id),
            );
        }
        let (effect, actions, field) = match (&rule.permit, &rule.forbid) {
            (Some(actions), None) => (Effect::Permit, actions, "permit"),
            (None, Some(actions)) => (Effect::Forbid, actions, "forbid"),
            _ => {
                cx.error(
                    "rule",
                    &path,
                    format!(
                        "rule `{}` needs exactly one of `permit` or `forbid`",
                        rule.id
                    ),
                );
                continue;
            }
        };
        let action_idxs = resolve_actions(actions, &format!("{path}/{field}"), action_idx, cx);
        if effect == Effect::Forbid {
            for (set, name) in [
                (rule.require_approval, "require_approval"),
                (rule.require_authority.is_some(), "require_authority"),
                (rule.review_when.is_some(), "review_when"),
            ] {
                if set {
                    cx.error(
                        "rule",
                        &format!("{path}/{name}"),
                        format!("`{name}` applies to permits; a forbid always denies"),
                    );
                }
            }
        }
        for (condition, name) in [
            (&rule.when, "when"),
            (&rule.unless, "unless"),
            (&rule.review_when, "review_when"),
        ] {
            let Some(condition) = condition else { continue };
            let condition_path = format!("{path}/{name}");
            if condition.len() > CONDITION_BYTES_MAX {
                cx.error(
                    "limit",
                    &condition_path,
                    format!(
                        "condition is {} bytes; the limit is {CONDITION_BYTES_MAX}",
                        condition.len()
                    ),
                );
                continue;
            }
            if let Err(message) = check_condition_size(condition) {
                cx.error("limit", &condition_path, message);
                continue;
            }
            for (offset, counter) in referenced_counters(condition) {
                if !doc.counters.contains_key(counter) {
                    let hint = closest(counter, doc.counters.keys().map(String::as_str));
                    cx.error_in_condition(
                        "unknown-counter",
                        &condition_path,
                        condition,
                        Some(offset),
                        format!(
                            "counter `{counter}` is used but not declared under `counters`{hint}"
                        ),
                    );
                }
            }
            if let Err(err) = Expression::from_str(condition) {
                cx.error_in_condition(
                    "cedar-parse",
                    &condition_path,
                    condition,
                    label_offset(&err),
                    format!("condition does not parse: {}", one_line(&err.to_string())),
                );
            }
        }
        let require_authority =
            rule.require_authority
                .as_ref()
                .map(|requirement| AuthorityRequirement {
                    role: requirement.role.clone(),
                    claims: requirement.claims.clone(),
                });
        if let Some(requirement) = &require_authority {
            if requirement.role.is_none() && requirement.claims.is_empty() {
                cx.error(
                    "rule",
                    &format!("{path}/require_authority"),
                    "`require_authority` needs a `role` or `claims`",
                );
            }
            if doc.authority.is_none() {
                cx.error("authority", &format!("{path}/require_authority"), "the rule requires authority but the pact lists no `authority.keys` to verify tokens with");
            }
        }
        rules.push(Rule {
            id: rule.id.clone(),
            effect,
            action_idxs,
            require_approval: rule.require_approval,
            require_authority,
            has_review_when: rule.review_when.is_some(),
            reason: rule.reason.clone(),
        });
    }
    rules
}

/// Counter names referenced as `context.counters.<name>` or `context.counters["<name>"]`, with
/// the byte offset of each name in the condition.
fn referenced_counters(condition: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let needle = "context.counters";
    let mut rest = condition;
    while let Some(idx) = rest.find(needle) {
        rest = rest.get(idx + needle.len()..).unwrap_or("");
        let trimmed = rest.trim_start();
        let name = if let Some(after_dot) = trimmed.strip_prefix('.') {
            let after_dot = after_dot.trim_start();
            let end = after_dot
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after_dot.len());
            after_dot.get(..end)
        } else if let Some(after_bracket) = trimmed.strip_prefix("[\"") {
            after_bracket
                .find('"')
                .and_then(|end| after_bracket.get(..end))
        } else {
            None
        };
        if let Some(name) = name.filter(|name| !name.is_empty()) {
            // `name` is a subslice of `condition`, so the pointer difference is its offset.
            let offset = name.as_ptr() as usize - condition.as_ptr() as usize;
            out.push((offset, name));
        }
    }
    out
}

/// Deepest bracket nesting in one condition. Cedar's parser recurses per bracket and can
/// overflow the stack long before the byte limit.
pub const CONDITION_NESTING_MAX: usize = 16;
/// Most operators in one condition. Cedar's type checker gives up silently past a certain tree
/// depth (it reports no error at all), so a long chain of operators could hide a type error;
/// this bound keeps every accepted condition fully checked.
pub const CONDITION_OPERATORS_MAX: usize = 64;

/// Checks the nesting and operator count of a condition, outside string literals.
fn check_condition_size(condition: &str) -> Result<(), String> {
    let mut depth: usize = 0;
    let mut depth_max: usize = 0;
    let mut n_operators: usize = 0;
    let mut in_string = false;
    let mut chars = condition.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if matches!(word.as_str(), "in" | "has" | "like" | "is" | "if") {
            n_operators += 1;
        }
        word.clear();
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                depth_max = depth_max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '.' | '+' | '-' | '*' | '!' | '<' | '>' => n_operators += 1,
            '&' | '|' | '=' => {
                // Two-character operators count once.
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                n_operators += 1;
            }
            _ => {}
        }
    }
    if matches!(word.as_str(), "in" | "has" | "like" | "is" | "if") {
        n_operators += 1;
    }
    if depth_max > CONDITION_NESTING_MAX {
        return Err(format!(
            "condition nests brackets {depth_max} deep; the limit is {CONDITION_NESTING_MAX}"
        ));
    }
    if n_operators > CONDITION_OPERATORS_MAX {
        return Err(format!(
            "condition has {n_operators} operators; the limit is {CONDITION_OPERATORS_MAX}: \
             split it over several rules, or test membership with `[...].contains(...)`"
        ));
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn check_consequences(doc: &PactDoc, cx: &mut Cx<'_>) {
    let categories: BTreeSet<String> = doc
        .actions
        .iter()
        .map(|(name, action)| action.category.clone().unwrap_or_else(|| name.clone()))
        .collect();
    for (idx, consequence) in doc.consequences.iter().enumerate() {
        let path = format!("/consequences/{idx}");
        if !SIGNALS.contains(&consequence.signal.as_str()) {
            let hint = closest(&consequence.signal, SIGNALS.iter().copied());
            cx.error(
                "unknown-signal",
                &format!("{path}/signal"),
                format!("unknown signal `{}`{hint}", consequence.signal),
            );
        }
        match (&consequence.response, &consequence.category) {
            (Response::Restrict, None) => cx.error(
                "consequence",
                &path,
                "`restrict` needs the `category` to restrict",
            ),
            (_, Some(category)) if !categories.contains(category) => cx.error(
                "unknown-category",
                &format!("{path}/category"),
                format!("unknown action category `{category}`"),
            ),
            _ => {}
        }
        if let Some(obligation) = &consequence.obligation {
            if !doc
                .obligations
                .iter()
                .any(|candidate| &candidate.id == obligation)
            {
                cx.error(
                    "unknown-obligation",
                    &format!("{path}/obligation"),
                    format!("unknown obligation `{obligation}`"),
                );
            }
        }
    }
}

/// How a signal's `warning` and `critical` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoundKind {
    /// A rate or divergence, 0..=1.
    Fraction,
    /// A non-negative number (points, a ratio, a fall in correlation).
    Number,
    /// A duration (`30d`).
    Duration,
}

/// Signals whose thresholds a pact may set: the kind of `warning`/`critical`, and whether it
/// takes `window`, `periods` and `timeout`. The others trip on any occurrence
/// (`obligation_breach` on the obligation's own threshold). The `signals` crate gives the meaning.
const SIGNAL_SETTINGS: &[(&str, BoundKind, bool, bool, bool)] = &[
    (
        "boundary_probe_failure",
        BoundKind::Fraction,
        false,
        false,
        false,
    ),
    (
        "evaluation_staleness",
        BoundKind::Duration,
        false,
        false,
        false,
    ),
    ("input_shift", BoundKind::Fraction, true, false, false),
    ("jury_variance", BoundKind::Number, false, true, false),
    ("outcome_missing", BoundKind::Fraction, true, false, true),
    (
        "proxy_truth_divergence",
        BoundKind::Number,
        true,
        false,
        false,
    ),
    (
        "scope_violation_rate",
        BoundKind::Fraction,
        true,
        false,
        false,
    ),
    (
        "scope_violation_trend",
        BoundKind::Fraction,
        false,
        true,
        false,
    ),
    ("score_swing", BoundKind::Number, true, false, false),
    ("score_velocity", BoundKind::Number, false, true, false),
];

/// Most consecutive periods a signal may ask for.
const SIGNAL_PERIODS_MAX: u32 = 52;

fn check_score(doc: &PactDoc, cx: &mut Cx<'_>) {
    let Some(score) = &doc.score else { return };
    for (name, weight) in &score.weights {
        let path = format!("/score/weights/{}", pointer_segment(name));
        if !SCORE_DIMENSIONS.contains(&name.as_str()) {
            let hint = closest(name, SCORE_DIMENSIONS.iter().copied());
            cx.error_at_key(
                "score",
                &path,
                format!("unknown score dimension `{name}`{hint}"),
            );
        } else if *weight > SCORE_WEIGHT_MAX {
            cx.error(
                "score",
                &path,
                format!("a weight is 0 to {SCORE_WEIGHT_MAX}, not {weight}"),
            );
        }
    }
    if let Some(text) = &score.freshness {
        if let Err(message) = parse_duration_ms(text) {
            cx.error("duration", "/score/freshness", message);
        }
    }
}

fn check_signals(doc: &PactDoc, cx: &mut Cx<'_>) {
    for (name, setting) in &doc.signals {
        let path = format!("/signals/{}", pointer_segment(name));
        if !SIGNALS.contains(&name.as_str()) {
            let hint = closest(name, SIGNALS.iter().copied());
            cx.error_at_key(
                "unknown-signal",
                &path,
                format!("unknown signal `{name}`{hint}"),
            );
            continue;
        }
        let Some((_, kind, takes_window, takes_periods, takes_timeout)) = SIGNAL_SETTINGS
            .iter()
            .find(|(candidate, ..)| *candidate == name.as_str())
            .copied()
        else {
            cx.error_at_key(
                "signal",
                &path,
                format!("signal `{name}` trips on any occurrence and has no thresholds to set"),
            );
            continue;
        };
        let mut bounds = Vec::new();
        for (field, bound) in [
            ("warning", &setting.warning),
            ("critical", &setting.critical),
        ] {
            let Some(bound) = bound else { continue };
            let field_path = format!("{path}/{field}");
            let value = match (kind, bound) {
                (BoundKind::Duration, SignalBound::Duration(text)) => {
                    match parse_duration_ms(text) {
                        Ok(ms) => Some(ms as f64),
                        Err(message) => {
                            cx.error("duration", &field_path, message);
                            None
                        }
                    }
                }
                (BoundKind::Duration, SignalBound::Number(_)) => {
                    cx.error(
                        "signal",
                        &field_path,
                        format!("`{name}` takes a duration (`30d`)"),
                    );
                    None
                }
                (_, SignalBound::Duration(_)) => {
                    cx.error("signal", &field_path, format!("`{name}` takes a number"));
                    None
                }
                (BoundKind::Fraction, SignalBound::Number(number))
                    if !(0.0..=1.0).contains(number) =>
                {
                    cx.error(
                        "signal",
                        &field_path,
                        format!("`{name}` is a fraction from 0 to 1"),
                    );
                    None
                }
                (_, SignalBound::Number(number)) if !number.is_finite() || *number < 0.0 => {
                    cx.error(
                        "signal",
                        &field_path,
                        "a threshold is a finite number, zero or more",
                    );
                    None
                }
                (_, SignalBound::Number(number)) => Some(*number),
            };
            bounds.push(value);
        }
        if let [Some(warning), Some(critical)] = bounds.as_slice() {
            if warning > critical {
                cx.error(
                    "signal",
                    &format!("{path}/warning"),
                    "`warning` is above `critical`",
                );
            }
        }
        for (field, value, takes) in [
            ("window", &setting.window, takes_window),
            ("timeout", &setting.timeout, takes_timeout),
        ] {
            let Some(text) = value else { continue };
            let field_path = format!("{path}/{field}");
            if !takes {
                cx.error_at_key(
                    "signal",
                    &field_path,
                    format!("`{name}` takes no `{field}`"),
                );
            } else if let Err(message) = parse_duration_ms(text) {
                cx.error("duration", &field_path, message);
            }
        }
        if let Some(periods) = setting.periods {
            let field_path = format!("{path}/periods");
            if !takes_periods {
                cx.error_at_key(
                    "signal",
                    &field_path,
                    format!("`{name}` takes no `periods`"),
                );
            } else if periods == 0 || periods > SIGNAL_PERIODS_MAX {
                cx.error(
                    "signal",
                    &field_path,
                    format!("`periods` is from 1 to {SIGNAL_PERIODS_MAX}"),
                );
            }
        }
    }
}

fn check_authority(doc: &PactDoc, cx: &mut Cx<'_>) -> Vec<AuthorityKey> {
    let Some(authority) = &doc.authority else {
        return Vec::new();
    };
    let mut keys = Vec::with_capacity(authority.keys.len());
    let mut ids = BTreeSet::new();
    if authority.keys.is_empty() {
        cx.error("authority", "/authority/keys", "`authority.keys` is empty");
    }
    for (idx, key) in authority.keys.iter().enumerate() {
        let path = format!("/authority/keys/{idx}");
        if !ids.insert(key.id.as_str()) {
            cx.error(
                "duplicate-id",
                &format!("{path}/id"),
                format!("key id `{}` is used twice", key.id),
            );
        }
        let pem = key.public_key.as_bytes();
        let parsed = match key.alg {
            KeyAlg::EdDSA => {
                DecodingKey::from_ed_pem(pem).map(|decoded| (Algorithm::EdDSA, decoded))
            }
            KeyAlg::ES256 => {
                DecodingKey::from_ec_pem(pem).map(|decoded| (Algorithm::ES256, decoded))
            }
        };
        match parsed {
            Ok((algorithm, decoded)) => keys.push(AuthorityKey {
                id: key.id.clone(),
                algorithm,
                key: decoded,
                issuer: key.issuer.clone(),
            }),
            Err(_) => cx.error(
                "authority",
                &format!("{path}/public_key"),
                format!(
                    "key `{}` is not a valid {:?} public key in PEM (SubjectPublicKeyInfo)",
                    key.id, key.alg
                ),
            ),
        }
    }
    keys
}

/// A Cedar string literal.
pub(crate) fn cedar_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Cedar schema the catalog implies. Conditions are type-checked against it.
fn cedar_schema_text(doc: &PactDoc, args_by_action: &[Vec<Arg>]) -> String {
    let mut out = String::from("entity Agent;\nentity Session;\n");
    out.push_str("type PrincipalInfo = { id: String, verified: Bool, roles: Set<String> };\n");
    out.push_str("type CounterValues = {");
    let counter_fields: Vec<String> = doc
        .counters
        .keys()
        .map(|name| format!(" {}: Long", cedar_string(name)))
        .collect();
    out.push_str(&counter_fields.join(","));
    out.push_str(" };\n");
    for (idx, name) in doc.actions.keys().enumerate() {
        let args: Vec<String> = args_by_action
            .get(idx)
            .map(|args| {
                args.iter()
                    .map(|arg| {
                        format!(
                            " {}{}: {}",
                            cedar_string(&arg.name),
                            if arg.required { "" } else { "?" },
                            arg.kind.cedar_type()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "action {} appliesTo {{ principal: [Agent], resource: [Session], context: {{ args: {{{} }}, counters: CounterValues, principal: PrincipalInfo, session: String }} }};\n",
            cedar_string(name),
            args.join(",")
        ));
    }
    out
}

struct Compiled {
    /// Per action: (permits and forbids, review policies).
    per_action: Vec<(PolicySet, PolicySet)>,
    text: String,
}

/// The scope of a policy: `action == Action::"a"` or `action in [...]`.
fn action_scope(doc: &PactDoc, action_idxs: &[usize]) -> String {
    let names: Vec<String> = action_idxs
        .iter()
        .filter_map(|idx| doc.actions.keys().nth(*idx))
        .map(|name| format!("Action::{}", cedar_string(name)))
        .collect();
    match names.as_slice() {
        [one] => format!("action == {one}"),
        _ => format!("action in [{}]", names.join(", ")),
    }
}

fn policy_text(effect: Effect, scope: &str, conditions: &[(&str, &str)]) -> String {
    let mut text = format!(
        "{}(principal, {scope}, resource)",
        if effect == Effect::Permit {
            "permit"
        } else {
            "forbid"
        }
    );
    for (keyword, condition) in conditions {
        text.push_str(&format!("\n  {keyword} {{ {condition} }}"));
    }
    text.push(';');
    text
}

/// Parses, validates and slices every rule's policies by action.
fn compile_rules(
    doc: &PactDoc,
    rules: &[Rule],
    schema: &Schema,
    cx: &mut Cx<'_>,
) -> Option<Compiled> {
    let validator = Validator::new(schema.clone());
    // Conditions that already have an error (too long, unknown counter, no parse) are not
    // type-checked again: Cedar would only repeat the problem.
    let paths_with_errors: BTreeSet<String> = cx
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == crate::diag::Severity::Error)
        .map(|diagnostic| diagnostic.path.clone())
        .collect();
    // Validate each condition alone first, so a type error points at the field it is in.
    for (rule_idx, (rule_doc, rule)) in doc.rules.iter().zip(rules).enumerate() {
        if rule.action_idxs.is_empty() {
            continue;
        }
        let scope = action_scope(doc, &rule.action_idxs);
        for (condition, name) in [
            (&rule_doc.when, "when"),
            (&rule_doc.unless, "unless"),
            (&rule_doc.review_when, "review_when"),
        ] {
            let Some(condition) = condition else { continue };
            let path = format!("/rules/{rule_idx}/{name}");
            if paths_with_errors.contains(&path) {
                continue;
            }
            let text = policy_text(Effect::Permit, &scope, &[("when", condition)]);
            // Where the condition starts in the probe policy (`policy_text` ends it with
            // ` };`), to map Cedar's byte offsets back into the condition.
            let condition_start = text
                .len()
                .checked_sub(condition.len() + " };".len())
                .filter(|start| {
                    text.get(*start..)
                        .is_some_and(|rest| rest.starts_with(condition.as_str()))
                });
            let in_condition = |offset: Option<usize>| {
                let relative = offset?.checked_sub(condition_start?)?;
                (relative < condition.len()).then_some(relative)
            };
            let policy = match Policy::parse(Some(PolicyId::new(format!("probe{rule_idx}"))), &text)
            {
                Ok(policy) => policy,
                Err(err) => {
                    cx.error_in_condition(
                        "cedar-parse",
                        &path,
                        condition,
                        in_condition(label_offset(&err)),
                        format!("condition does not parse: {}", one_line(&err.to_string())),
                    );
                    continue;
                }
            };
            let mut set = PolicySet::new();
            if set.add(policy).is_err() {
                continue;
            }
            let result = validator.validate(&set, ValidationMode::Strict);
            let mut reported_never = false;
            for error in result.validation_errors() {
                cx.error_in_condition(
                    "cedar-type",
                    &path,
                    condition,
                    in_condition(label_offset(error)),
                    format!(
                        "condition does not type-check: {}",
                        describe_validation(error)
                    ),
                );
            }
            for warning in result.validation_warnings() {
                let message = warning.to_string();
                if message.contains("impossible") {
                    let dead = if name == "unless" {
                        "is always true, so the rule never applies"
                    } else {
                        "can never be true, so the rule never applies"
                    };
                    cx.error("never-matches", &path, format!("condition {dead}"));
                    reported_never = true;
                } else {
                    cx.warning_in_condition(
                        &path,
                        condition,
                        in_condition(label_offset(warning)),
                        without_policy_name(&one_line(&message)),
                    );
                }
            }
            let literal = condition.trim();
            if !reported_never
                && ((name == "when" && literal == "false")
                    || (name == "unless" && literal == "true"))
            {
                cx.error(
                    "never-matches",
                    &path,
                    format!("rule `{}` can never match", rule.id),
                );
            }
        }
    }
    if has_errors(&cx.diagnostics) {
        return None;
    }
    let mut per_action: Vec<(PolicySet, PolicySet)> = (0..doc.actions.len())
        .map(|_| (PolicySet::new(), PolicySet::new()))
        .collect();
    let mut text_all = String::new();
    for (rule_idx, (rule_doc, rule)) in doc.rules.iter().zip(rules).enumerate() {
        let path = format!("/rules/{rule_idx}");
        let mut conditions: Vec<(&str, &str)> = Vec::new();
        if let Some(when) = &rule_doc.when {
            conditions.push(("when", when));
        }
        if let Some(unless) = &rule_doc.unless {
            conditions.push(("unless", unless));
        }
        // Each action gets its own copy of the policy with a single-action scope, so the
        // guard evaluates exactly the policies of the action asked about.
        for action_idx in &rule.action_idxs {
            let scope = action_scope(doc, &[*action_idx]);
            let text = policy_text(rule.effect, &scope, &conditions);
            let Some((policies, review_policies)) = per_action.get_mut(*action_idx) else {
                continue;
            };
            add_policy(policies, &rule.id, &text, &path, cx)?;
            if let Some(review_when) = &rule_doc.review_when {
                let mut review_conditions = conditions.clone();
                review_conditions.push(("when", review_when));
                let review_text = policy_text(Effect::Permit, &scope, &review_conditions);
                add_policy(review_policies, &rule.id, &review_text, &path, cx)?;
            }
        }
        text_all.push_str(&format!(
            "@id({})\n{}\n\n",
            cedar_string(&rule.id),
            policy_text(
                rule.effect,
                &action_scope(doc, &rule.action_idxs),
                &conditions
            )
        ));
    }
    for (policies, review_policies) in &per_action {
        for set in [policies, review_policies] {
            let result = validator.validate(set, ValidationMode::Strict);
            let first_error = result.validation_errors().next().map(describe_validation);
            if let Some(message) = first_error {
                cx.error(
                    "cedar-type",
                    "/rules",
                    format!("generated policies do not validate: {message}"),
                );
                return None;
            }
        }
    }
    Some(Compiled {
        per_action,
        text: text_all,
    })
}

fn add_policy(
    set: &mut PolicySet,
    rule_id: &str,
    text: &str,
    path: &str,
    cx: &mut Cx<'_>,
) -> Option<()> {
    match Policy::parse(Some(PolicyId::new(rule_id)), text) {
        Ok(policy) => match set.add(policy) {
            Ok(()) => Some(()),
            Err(err) => {
                cx.error("cedar-parse", path, err.to_string());
                None
            }
        },
        Err(err) => {
            cx.error(
                "cedar-parse",
                path,
                format!("rule does not parse: {}", one_line(&err.to_string())),
            );
            None
        }
    }
}

/// Cedar names the probe policy in its messages; the position already says which rule it is.
fn without_policy_name(message: &str) -> String {
    message
        .strip_prefix("for policy `")
        .and_then(|rest| rest.split_once("`, "))
        .map_or_else(|| message.to_string(), |(_, rest)| rest.to_string())
}

fn describe_validation(error: &cedar_policy::ValidationError) -> String {
    use miette::Diagnostic as _;
    let mut message = without_policy_name(&one_line(&error.to_string()))
        .replace(
            "__cedar::internal::AnyEntity, or __cedar::internal::OpenRecord{}",
            "an entity or a record",
        )
        .replace("__cedar::internal::AnyEntity", "an entity")
        .replace("__cedar::internal::OpenRecord{}", "a record");
    if let Some(help) = error.help() {
        message.push_str(&format!(" ({})", one_line(&help.to_string())));
    }
    message
}

/// Lints that need the whole rule set: shadowed permits and unguarded irreversible actions.
fn lint(doc: &PactDoc, rules: &[Rule], cx: &mut Cx<'_>) {
    let unconditional_forbids: BTreeMap<usize, &str> = doc
        .rules
        .iter()
        .zip(rules)
        .filter(|(rule_doc, rule)| {
            rule.effect == Effect::Forbid && rule_doc.when.is_none() && rule_doc.unless.is_none()
        })
        .flat_map(|(_, rule)| {
            rule.action_idxs
                .iter()
                .map(move |idx| (*idx, rule.id.as_str()))
        })
        .collect();
    for (rule_idx, rule) in rules.iter().enumerate() {
        if rule.effect != Effect::Permit || rule.action_idxs.is_empty() {
            continue;
        }
        let shadowing: Vec<&str> = rule
            .action_idxs
            .iter()
            .filter_map(|idx| unconditional_forbids.get(idx).copied())
            .collect();
        if shadowing.len() == rule.action_idxs.len() {
            let mut names: Vec<&str> = shadowing;
            names.sort_unstable();
            names.dedup();
            cx.error(
                "shadowed",
                &format!("/rules/{rule_idx}/permit"),
                format!(
                    "permit `{}` is shadowed: forbid {} always excludes every action it names",
                    rule.id,
                    names
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for (idx, (name, action)) in doc.actions.iter().enumerate() {
        if action.reversibility != Reversibility::Irreversible
            || unconditional_forbids.contains_key(&idx)
        {
            continue;
        }
        let permits: Vec<&Rule> = rules
            .iter()
            .filter(|rule| rule.effect == Effect::Permit && rule.action_idxs.contains(&idx))
            .collect();
        let guarded = permits
            .iter()
            .any(|rule| rule.require_approval || rule.require_authority.is_some());
        if !permits.is_empty() && !guarded {
            cx.warning_at_key(
                "irreversible-unguarded",
                &format!("/actions/{}", pointer_segment(name)),
                format!("irreversible action `{name}` is permitted with neither `require_approval` nor `require_authority`"),
            );
        }
    }
}
