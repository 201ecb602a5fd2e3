//! The guard: `decide(request, pact, state, now) -> verdict`, pure and deterministic.
//!
//! [`Guard`] is one pact version made ready for deciding (its Cedar policies were parsed,
//! validated and sliced by action when the pact was checked; the canary automaton is built
//! here, once). [`decide`] takes a [`Request`], the agent's mutable [`State`] (counters, halt and
//! restrictions, verified-token cache) and the time `now_ms`, and returns a [`Verdict`] naming
//! the rules that decided it, so any verdict can be replayed from its record.
//!
//! The order of checks, each failing closed:
//! 1. halted agent -> `halted`; wrong agent -> `deny`;
//! 2. action outside the catalog -> `deny`; restricted category -> `deny`;
//! 3. arguments against the catalog's schema (undeclared, missing, wrong type, enum, bounds, a
//!    relative path or a URL that does not parse) -> `deny`; paths are normalised and URLs
//!    parsed before conditions see them ([`Verdict::normalized_args`] tells when that changed
//!    a path);
//! 4. canaries in any outbound argument, plain or encoded -> `deny`;
//! 5. Cedar: any satisfied forbid -> `deny`; any evaluation error -> `deny`; no satisfied permit -> `deny`;
//! 6. every satisfied permit's requirements: verified authority (else `deny`), approval,
//!    `review_when`, bulk thresholds (-> `review`);
//! 7. content passed along is scanned: injection taints the session, so its elevated actions
//!    (irreversible, partial, sensitive, or needing authority or approval) get `review` for the
//!    rest of the session; an authority claim sends this call's elevated action to `review`;
//! 8. `allow`, and only then the counters grow.

mod args;
mod authority;
pub mod fixture;
mod result;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityId, EntityTypeName, EntityUid,
    Request as CedarRequest, RestrictedExpression,
};
use detect::canary::{CanaryEncoding, CanarySet};
use detect::{Detector, DetectorConfig};
use pact::syntax::{Reversibility, Sensitivity};
use pact::{Effect, Pact};

pub use args::SET_ITEMS_MAX;
pub use authority::VerifiedAuthority;
pub use result::{record_forwarded, scan_result, ResultScan};
pub use state::{Halt, State, Taint, SESSIONS_MAX, TOKEN_CACHE_MAX};

/// Rule ids the guard itself names in verdicts (pact rule ids may not start with `pactum:`).
pub mod rule_ids {
    pub const HALTED: &str = "pactum:halted";
    pub const WRONG_AGENT: &str = "pactum:wrong-agent";
    pub const UNKNOWN_ACTION: &str = pact::RULE_ID_UNKNOWN_ACTION;
    pub const RESTRICTED: &str = "pactum:restricted";
    pub const INVALID_ARGS: &str = "pactum:invalid-args";
    pub const CANARY: &str = "pactum:canary";
    pub const DEFAULT_DENY: &str = "pactum:default-deny";
    pub const EVALUATION_ERROR: &str = "pactum:evaluation-error";
    pub const BULK: &str = pact::RULE_ID_BULK;
    pub const SESSION_TAINT: &str = "pactum:session-taint";
    pub const AUTHORITY_CLAIM: &str = "pactum:authority-claim";
}

/// Largest request the guard accepts, summed over argument and content bytes.
pub const REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// What the agent asks to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The agent asking; when set it must be the pact's agent.
    pub agent: Option<String>,
    pub action: String,
    pub args: serde_json::Map<String, serde_json::Value>,
    /// The session (conversation, task) the call belongs to.
    pub session: String,
    pub principal: Principal,
    /// Content the agent is passing along (scanned by detectors).
    pub content: Vec<Content>,
}

/// On whose behalf the agent acts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    /// The id the caller asserts; only a verified token makes it authority.
    pub id: Option<String>,
    /// A signed authority token (JWT, EdDSA or ES256).
    pub token: Option<String>,
}

/// Where a piece of content came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentSource {
    User,
    Tool,
    Document,
    Output,
}

/// A piece of content the agent passes along with the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub source: ContentSource,
    pub text: String,
}

/// The guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow,
    Review,
    Deny,
    Halted,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Review => "review",
            Decision::Deny => "deny",
            Decision::Halted => "halted",
        }
    }

    /// Parses `allow`, `review`, `deny` or `halted`.
    pub fn parse(text: &str) -> Option<Decision> {
        match text {
            "allow" => Some(Decision::Allow),
            "review" => Some(Decision::Review),
            "deny" => Some(Decision::Deny),
            "halted" => Some(Decision::Halted),
            _ => None,
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// A canary token in an outbound argument.
    Canary {
        arg: String,
        token_idx: usize,
        encoding: CanaryEncoding,
    },
    UnknownAction,
    InvalidArgs,
    /// The agent is halted.
    Halted,
    Restricted,
    /// A permit needs verified authority that the request does not carry.
    AuthorityMissing,
    /// A token was presented and did not verify.
    AuthorityInvalid,
    /// A token verified; its subject and roles are now the principal's.
    AuthorityVerified,
    /// A bulk operation above its review threshold.
    Bulk {
        records: i64,
        review_above: i64,
    },
    /// A condition failed to evaluate.
    EvaluationError,
    /// A detector finding in content passed along (injection, hidden text, authority claim...).
    Content {
        /// The detector's finding kind (`injection`, `authority_claim`, ...).
        detector_kind: detect::FindingKind,
        /// Index of the content item.
        content_idx: usize,
        /// Score, in thousandths (integers in anything recorded).
        score_milli: u16,
    },
    /// The session passed flagged content earlier; elevated actions need review.
    SessionTainted,
}

impl FindingKind {
    pub fn name(&self) -> &'static str {
        match self {
            FindingKind::Canary { .. } => "canary",
            FindingKind::UnknownAction => "unknown_action",
            FindingKind::InvalidArgs => "invalid_args",
            FindingKind::Halted => "halted",
            FindingKind::Restricted => "restricted",
            FindingKind::AuthorityMissing => "authority_missing",
            FindingKind::AuthorityInvalid => "authority_invalid",
            FindingKind::AuthorityVerified => "authority_verified",
            FindingKind::Bulk { .. } => "bulk",
            FindingKind::EvaluationError => "evaluation_error",
            FindingKind::Content { detector_kind, .. } => detector_kind.as_str(),
            FindingKind::SessionTainted => "session_tainted",
        }
    }
}

/// One finding with a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub message: String,
}

/// The verdict, with everything needed to explain and replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// The rule ids that decided it (pact rules, or `pactum:*` for the guard's own checks).
    pub rules: Vec<String>,
    pub findings: Vec<Finding>,
    /// The counters handed to the conditions (values including this call).
    pub counters: BTreeMap<String, i64>,
    pub pact_id: String,
    pub pact_version: u64,
    pub pact_digest: String,
    pub action: String,
    pub session: String,
    pub at_ms: u64,
    /// The arguments as conditions saw them (every argument sent, `path` ones normalised,
    /// `url` ones as sent), only when normalising changed at least one path; `None` otherwise,
    /// and whenever the arguments were refused or never checked.
    pub normalized_args: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One pact version, ready for deciding.
pub struct Guard {
    pact: Arc<Pact>,
    canaries: CanarySet,
    detector: Detector,
    /// Per action (by index): whether it is elevated (see [`is_elevated`]).
    elevated: Vec<bool>,
    session_type: EntityTypeName,
    authorizer: Authorizer,
    entities: Entities,
}

/// Errors building a guard.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("canaries: {0}")]
    Canary(#[from] detect::canary::CanaryError),
    #[error("cedar: {0}")]
    Cedar(String),
    #[error("detector: {0}")]
    Detector(#[from] detect::DetectError),
}

impl Guard {
    /// Prepares a checked pact for deciding.
    pub fn new(pact: Arc<Pact>) -> Result<Guard, GuardError> {
        let canaries = CanarySet::new(pact.canaries())?;
        let session_type: EntityTypeName = "Session"
            .parse()
            .map_err(|err: cedar_policy::ParseErrors| GuardError::Cedar(err.to_string()))?;
        let action_names: Vec<String> = pact
            .actions()
            .iter()
            .map(|action| action.name.clone())
            .collect();
        let detector = Detector::new(&DetectorConfig::default(), &action_names)?;
        let elevated = (0..pact.actions().len())
            .map(|idx| is_elevated(&pact, idx))
            .collect();
        Ok(Guard {
            pact,
            canaries,
            detector,
            elevated,
            session_type,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
        })
    }

    pub fn pact(&self) -> &Pact {
        &self.pact
    }

    pub fn pact_arc(&self) -> &Arc<Pact> {
        &self.pact
    }
}

struct Outcome {
    decision: Decision,
    rules: Vec<String>,
    findings: Vec<Finding>,
}

impl Outcome {
    fn deny(rule: &str, kind: FindingKind, message: String) -> Outcome {
        Outcome {
            decision: Decision::Deny,
            rules: vec![rule.to_string()],
            findings: vec![Finding { kind, message }],
        }
    }
}

/// Decides one request. Pure: the same request, pact, state and `now_ms` give the same verdict
/// and the same new state.
pub fn decide(guard: &Guard, request: &Request, state: &mut State, now_ms: u64) -> Verdict {
    let mut counters = BTreeMap::new();
    // Content is scanned whatever the verdict: injection passed along with a denied call still
    // taints the session for the calls after it.
    let mut content_findings = Vec::new();
    let content = if state.halt().is_some() {
        ContentScan::default()
    } else {
        scan_content(guard, request, &mut content_findings)
    };
    if content.injection {
        state.taint_session(&request.session, content.reason.clone(), now_ms);
    }
    let mut normalized_args = None;
    let mut outcome = decide_inner(
        guard,
        request,
        state,
        now_ms,
        &content,
        &mut counters,
        &mut normalized_args,
    );
    outcome.findings.extend(content_findings);
    if outcome.decision == Decision::Allow {
        if let Some(action_idx) = guard.pact.action_idx(&request.action) {
            state.record_allowed(&guard.pact, action_idx, request, now_ms);
        }
    }
    outcome.rules.dedup();
    Verdict {
        decision: outcome.decision,
        rules: outcome.rules,
        findings: outcome.findings,
        counters,
        pact_id: guard.pact.id().to_string(),
        pact_version: guard.pact.version(),
        pact_digest: guard.pact.digest().to_string(),
        action: request.action.clone(),
        session: request.session.clone(),
        at_ms: now_ms,
        normalized_args,
    }
}

fn decide_inner(
    guard: &Guard,
    request: &Request,
    state: &mut State,
    now_ms: u64,
    content: &ContentScan,
    counters_out: &mut BTreeMap<String, i64>,
    normalized_out: &mut Option<serde_json::Map<String, serde_json::Value>>,
) -> Outcome {
    let pact = &guard.pact;
    if let Some(halt) = state.halt() {
        return Outcome {
            decision: Decision::Halted,
            rules: vec![rule_ids::HALTED.to_string()],
            findings: vec![Finding {
                kind: FindingKind::Halted,
                message: format!("agent is halted: {}", halt.reason),
            }],
        };
    }
    if let Some(agent) = &request.agent {
        if agent != pact.agent() {
            return Outcome::deny(
                rule_ids::WRONG_AGENT,
                FindingKind::InvalidArgs,
                format!(
                    "request is for agent `{agent}` but the pact governs `{}`",
                    pact.agent()
                ),
            );
        }
    }
    let Some(action_idx) = pact.action_idx(&request.action) else {
        return Outcome::deny(
            rule_ids::UNKNOWN_ACTION,
            FindingKind::UnknownAction,
            format!("action `{}` is not in the pact's catalog", request.action),
        );
    };
    let Some(action) = pact.actions().get(action_idx) else {
        return Outcome::deny(
            rule_ids::UNKNOWN_ACTION,
            FindingKind::UnknownAction,
            format!("action `{}` is not in the pact's catalog", request.action),
        );
    };
    if state.is_restricted(&action.category) {
        return Outcome::deny(
            rule_ids::RESTRICTED,
            FindingKind::Restricted,
            format!("action category `{}` is restricted", action.category),
        );
    }
    let request_bytes: usize = request
        .content
        .iter()
        .map(|content| content.text.len())
        .sum::<usize>()
        + args::json_bytes(&request.args);
    if request_bytes > REQUEST_BYTES_MAX {
        return Outcome::deny(
            rule_ids::INVALID_ARGS,
            FindingKind::InvalidArgs,
            format!("request is {request_bytes} bytes; the limit is {REQUEST_BYTES_MAX}"),
        );
    }
    let mut typed_args = match args::check_args(action, &request.args) {
        Ok(typed) => typed,
        Err(message) => {
            return Outcome::deny(rule_ids::INVALID_ARGS, FindingKind::InvalidArgs, message)
        }
    };
    *normalized_out = typed_args.normalized.take();
    if !guard.canaries.is_empty() {
        let mut findings = Vec::new();
        args::for_each_string(&request.args, &mut |arg_path, text| {
            for hit in guard.canaries.scan(text) {
                findings.push(Finding {
                    kind: FindingKind::Canary {
                        arg: arg_path.to_string(),
                        token_idx: hit.token_idx,
                        encoding: hit.encoding,
                    },
                    message: format!(
                        "canary token #{} found in argument `{arg_path}` ({})",
                        hit.token_idx,
                        hit.encoding.as_str()
                    ),
                });
            }
        });
        if !findings.is_empty() {
            return Outcome {
                decision: Decision::Deny,
                rules: vec![rule_ids::CANARY.to_string()],
                findings,
            };
        }
    }

    let mut findings = Vec::new();
    let authority = match &request.principal.token {
        Some(token) => match state.verify_token(pact, token, now_ms) {
            Ok(verified) => {
                findings.push(Finding {
                    kind: FindingKind::AuthorityVerified,
                    message: format!(
                        "authority token verified for `{}` with roles [{}]",
                        verified.subject,
                        verified.roles.join(", ")
                    ),
                });
                Some(verified)
            }
            Err(message) => {
                findings.push(Finding {
                    kind: FindingKind::AuthorityInvalid,
                    message: format!("authority token refused: {message}"),
                });
                None
            }
        },
        None => None,
    };

    let counter_values = state.projected_counters(pact, action_idx, request, &typed_args, now_ms);
    let mut counter_pairs = Vec::with_capacity(counter_values.len());
    for (counter, value) in pact.counters().iter().zip(&counter_values) {
        counters_out.insert(counter.name.clone(), *value);
        counter_pairs.push((counter.name.clone(), RestrictedExpression::new_long(*value)));
    }
    let principal_id = match &authority {
        Some(verified) => verified.subject.clone(),
        None => request.principal.id.clone().unwrap_or_default(),
    };
    let roles = authority
        .as_ref()
        .map(|verified| {
            verified
                .roles
                .iter()
                .map(|role| RestrictedExpression::new_string(role.clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let context = (|| {
        let args_record =
            RestrictedExpression::new_record(typed_args.cedar).map_err(|err| err.to_string())?;
        let counters_record =
            RestrictedExpression::new_record(counter_pairs).map_err(|err| err.to_string())?;
        let principal_record = RestrictedExpression::new_record([
            (
                "id".to_string(),
                RestrictedExpression::new_string(principal_id),
            ),
            (
                "verified".to_string(),
                RestrictedExpression::new_bool(authority.is_some()),
            ),
            ("roles".to_string(), RestrictedExpression::new_set(roles)),
        ])
        .map_err(|err| err.to_string())?;
        Context::from_pairs([
            ("args".to_string(), args_record),
            ("counters".to_string(), counters_record),
            ("principal".to_string(), principal_record),
            (
                "session".to_string(),
                RestrictedExpression::new_string(request.session.clone()),
            ),
        ])
        .map_err(|err| err.to_string())
    })();
    let context = match context {
        Ok(context) => context,
        Err(message) => {
            return Outcome::deny(
                rule_ids::EVALUATION_ERROR,
                FindingKind::EvaluationError,
                format!("could not build the request context: {message}"),
            )
        }
    };
    let session_uid = EntityUid::from_type_name_and_id(
        guard.session_type.clone(),
        EntityId::new(&request.session),
    );
    let cedar_request = match CedarRequest::new(
        pact.principal_uid().clone(),
        action.uid.clone(),
        session_uid,
        context,
        None,
    ) {
        Ok(cedar_request) => cedar_request,
        Err(err) => {
            return Outcome::deny(
                rule_ids::EVALUATION_ERROR,
                FindingKind::EvaluationError,
                format!("could not build the request: {err}"),
            )
        }
    };
    let response =
        guard
            .authorizer
            .is_authorized(&cedar_request, &action.policies, &guard.entities);
    let errored: Vec<String> = response
        .diagnostics()
        .errors()
        .map(errored_policy)
        .collect();
    if !errored.is_empty() {
        findings.push(Finding {
            kind: FindingKind::EvaluationError,
            message: format!(
                "rules failed to evaluate and so deny: {}",
                errored.join(", ")
            ),
        });
        let mut rules = errored;
        rules.sort();
        return Outcome {
            decision: Decision::Deny,
            rules,
            findings,
        };
    }
    let mut satisfied: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    satisfied.sort();
    if response.decision() == CedarDecision::Deny {
        if satisfied.is_empty() {
            return Outcome {
                decision: Decision::Deny,
                rules: vec![rule_ids::DEFAULT_DENY.to_string()],
                findings,
            };
        }
        return Outcome {
            decision: Decision::Deny,
            rules: satisfied,
            findings,
        };
    }

    // Allowed by Cedar: every satisfied permit's requirements apply.
    let permits: Vec<&pact::Rule> = action
        .rule_idxs
        .iter()
        .filter_map(|idx| pact.rule(*idx))
        .filter(|rule| rule.effect == Effect::Permit && satisfied.iter().any(|id| id == &rule.id))
        .collect();
    let mut missing_authority = Vec::new();
    for rule in &permits {
        if let Some(requirement) = &rule.require_authority {
            match &authority {
                Some(verified) if verified.meets(requirement) => {}
                _ => missing_authority.push(rule.id.clone()),
            }
        }
    }
    if !missing_authority.is_empty() {
        findings.push(Finding {
            kind: FindingKind::AuthorityMissing,
            message: format!(
                "rules {} need verified authority ({}) and the request carries none that qualifies",
                missing_authority.join(", "),
                permits
                    .iter()
                    .filter_map(|rule| rule.require_authority.as_ref())
                    .map(describe_requirement)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
        return Outcome {
            decision: Decision::Deny,
            rules: missing_authority,
            findings,
        };
    }
    let mut review_rules: Vec<String> = permits
        .iter()
        .filter(|rule| rule.require_approval)
        .map(|rule| rule.id.clone())
        .collect();
    if permits.iter().any(|rule| rule.has_review_when) {
        let review = guard.authorizer.is_authorized(
            &cedar_request,
            &action.review_policies,
            &guard.entities,
        );
        let review_errors: Vec<String> =
            review.diagnostics().errors().map(errored_policy).collect();
        if !review_errors.is_empty() {
            findings.push(Finding {
                kind: FindingKind::EvaluationError,
                message: format!(
                    "review conditions failed to evaluate and so deny: {}",
                    review_errors.join(", ")
                ),
            });
            return Outcome {
                decision: Decision::Deny,
                rules: review_errors,
                findings,
            };
        }
        if review.decision() == CedarDecision::Allow {
            review_rules.extend(review.diagnostics().reason().map(|id| id.to_string()));
        }
    }
    if let Some(bulk) = &action.bulk {
        if let Some(records) = request
            .args
            .get(&bulk.arg)
            .and_then(serde_json::Value::as_i64)
        {
            if records > bulk.review_above {
                findings.push(Finding {
                    kind: FindingKind::Bulk {
                        records,
                        review_above: bulk.review_above,
                    },
                    message: format!(
                        "bulk operation on {records} records; review above {}",
                        bulk.review_above
                    ),
                });
                review_rules.push(rule_ids::BULK.to_string());
            }
        }
    }
    let elevated = guard.elevated.get(action_idx).copied().unwrap_or(true);
    if let Some(taint) = state.session_taint(&request.session) {
        if elevated {
            findings.push(Finding {
                kind: FindingKind::SessionTainted,
                message: format!(
                    "session `{}` passed flagged content: {}",
                    request.session, taint.reason
                ),
            });
            review_rules.push(rule_ids::SESSION_TAINT.to_string());
        }
    }
    if content.authority_claimed && elevated {
        review_rules.push(rule_ids::AUTHORITY_CLAIM.to_string());
    }
    if !review_rules.is_empty() {
        review_rules.sort();
        review_rules.dedup();
        return Outcome {
            decision: Decision::Review,
            rules: review_rules,
            findings,
        };
    }
    Outcome {
        decision: Decision::Allow,
        rules: satisfied,
        findings,
    }
}

/// What scanning the content passed along found.
#[derive(Default)]
struct ContentScan {
    injection: bool,
    authority_claimed: bool,
    reason: String,
}

fn detect_source(source: ContentSource) -> detect::Source {
    match source {
        ContentSource::User => detect::Source::User,
        ContentSource::Tool => detect::Source::Tool,
        ContentSource::Document => detect::Source::Document,
        ContentSource::Output => detect::Source::Output,
    }
}

/// Scans each content item; findings go into the verdict with the content item they came from.
fn scan_content(guard: &Guard, request: &Request, findings: &mut Vec<Finding>) -> ContentScan {
    let mut out = ContentScan {
        injection: false,
        authority_claimed: false,
        reason: String::new(),
    };
    for (content_idx, content) in request.content.iter().enumerate() {
        let scan = guard
            .detector
            .scan(&content.text, detect_source(content.source));
        if scan.authority_claimed {
            out.authority_claimed = true;
        }
        // A flagged text is an injection for the session, unless all it carries is an authority
        // claim from the user, which is a claim, not an attack.
        let only_claims = scan
            .findings
            .iter()
            .all(|finding| finding.kind == detect::FindingKind::AuthorityClaim);
        if scan.flagged && !only_claims && !out.injection {
            out.injection = true;
            out.reason = format!(
                "{} content #{content_idx} flagged ({})",
                detect::Source::as_str(detect_source(content.source)),
                scan.findings
                    .first()
                    .map(|finding| finding.reason.as_str())
                    .unwrap_or("combined score")
            );
        }
        for finding in scan.findings {
            findings.push(Finding {
                message: format!("content #{content_idx}: {}", finding.reason),
                kind: FindingKind::Content {
                    detector_kind: finding.kind,
                    content_idx,
                    score_milli: (finding.score.clamp(0.0, 1.0) * 1000.0).round() as u16,
                },
            });
        }
    }
    out
}

/// Elevated actions are those a tainted session or a claimed authority must not take unreviewed:
/// anything not fully reversible, touching personal, financial or secret data, or guarded by
/// approval or authority in the pact.
fn is_elevated(pact: &Pact, action_idx: usize) -> bool {
    let Some(action) = pact.actions().get(action_idx) else {
        return true;
    };
    let guarded = action
        .rule_idxs
        .iter()
        .filter_map(|idx| pact.rule(*idx))
        .any(|rule| rule.require_approval || rule.require_authority.is_some());
    action.reversibility != Reversibility::Reversible
        || matches!(
            action.sensitivity,
            Sensitivity::Personal | Sensitivity::Financial | Sensitivity::Secret
        )
        || guarded
}

fn describe_requirement(requirement: &pact::AuthorityRequirement) -> String {
    let mut parts = Vec::new();
    if let Some(role) = &requirement.role {
        parts.push(format!("role `{role}`"));
    }
    for (claim, value) in &requirement.claims {
        parts.push(format!("claim `{claim}` = `{value}`"));
    }
    parts.join(", ")
}

fn errored_policy(error: &cedar_policy::AuthorizationError) -> String {
    match error {
        cedar_policy::AuthorizationError::PolicyEvaluationError(inner) => {
            inner.policy_id().to_string()
        }
    }
}
