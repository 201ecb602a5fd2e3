//! The pact file as written: serde types that mirror the YAML/JSON document one to one.
//!
//! These types only describe shape. Meaning (known actions, typed conditions, declared counters) is
//! established by [`crate::check`], which turns a [`PactDoc`] into a checked [`crate::Pact`].
//! The JSON Schema published by `pactum pact schema` is derived from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A pact: the versioned contract for one agent — what it may do (actions and rules), what it
/// promises (obligations), and what happens when it breaks a promise. Check it with
/// `pactum pact check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PactDoc {
    /// The pact's id, stable across versions (for example `support-agent`).
    pub pact: String,
    /// The version number; each published version is immutable.
    pub version: u64,
    /// The agent this pact governs (for example `acme/support-bot`).
    pub agent: String,
    /// Who answers for the agent: a team or a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The agent's class (for example `customer-support`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The risk tier; it sets defaults for review, trials and responses.
    pub tier: Tier,
    /// A human summary of what the agent is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every tool the agent may call. Calls to anything else are denied.
    pub actions: BTreeMap<String, ActionDoc>,
    /// Scope rules: permits, forbids and their requirements. Deny by default; forbid wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDoc>,
    /// Windowed counters the guard keeps and hands to conditions as `context.counters.<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, CounterDoc>,
    /// Tokens seeded into the agent's data that must never appear in outbound arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canaries: Vec<String>,
    /// Keys that sign authority tokens for this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<AuthorityDoc>,
    /// Measurable promises.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub obligations: Vec<ObligationDoc>,
    /// What happens when a signal trips: signal -> response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<ConsequenceDoc>,
    /// What evidence is needed before trust returns after an incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryDoc>,
    /// Threshold overrides per signal (`scope_violation_rate: { warning: 0.01 }`); signals not
    /// named keep the risk tier's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, SignalDoc>,
    /// Overrides of the trust score's risk-tier defaults: dimension weights and freshness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreDoc>,
}

/// Risk tier of an agent.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Internal helpers with little at stake.
    Low,
    /// The default for most agents.
    Medium,
    /// Agents that touch customers, money or personal data.
    High,
    /// Agents whose mistakes cannot be undone or are safety-relevant.
    Critical,
}

/// One action in the catalog.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionDoc {
    /// What the action does, for people reading the pact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether its effect can be undone.
    #[serde(default)]
    pub reversibility: Reversibility,
    /// The most sensitive data it touches.
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// The category an operator can restrict as a whole (defaults to the action's own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The argument that counts records, for bulk operations: a name, or `{arg, review_above}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<BulkDoc>,
    /// The argument schema. Arguments not declared here are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, ArgDoc>,
}

/// How reversible an action is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Reversibility {
    /// The effect can be undone completely (reads, drafts).
    #[default]
    Reversible,
    /// The effect can be undone in part, or at a cost (a return request, a ticket update).
    Partial,
    /// The effect cannot be undone (a refund, an email sent, a public statement).
    Irreversible,
}

/// Data sensitivity of an action.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    /// Data anyone may see.
    Public,
    /// Data for the organisation only (the default).
    #[default]
    Internal,
    /// Personal data about people.
    Personal,
    /// Payment or account data.
    Financial,
    /// Credentials and secrets.
    Secret,
}

/// The bulk-record argument of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BulkDoc {
    /// Just the argument's name; the tier's default review threshold applies.
    Arg(String),
    /// The argument and the record count above which a call goes to review.
    Full {
        /// The argument that counts records; it must be a `long`.
        arg: String,
        /// Calls with more records than this go to review.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review_above: Option<i64>,
    },
}

/// One argument: a bare type name (`string`, `long`, `bool`, `path`, `url`, `set<string>`,
/// `set<long>`, `set<path>`, `set<url>`) or the full form (needed for `object` and `set` with
/// `items`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ArgDoc {
    /// Just the type; the argument is required.
    Type(ArgTypeName),
    /// The type with constraints.
    Full(ArgFull),
}

/// The full form of an argument, of a member of an `object` argument, or of the items of a
/// `set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgFull {
    /// The argument's type: `string`, `long`, `bool`, `path`, `url`, `set<string>`, `set<long>`,
    /// `set<path>`, `set<url>`, or `object` (with `properties`) or `set` (with `items`).
    #[serde(rename = "type")]
    pub arg_type: ArgTypeName,
    /// Whether the argument (or object member) must be present (default true). Set items are
    /// always required.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub required: bool,
    /// The allowed values, for strings.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// Longest allowed string, path or URL, in bytes (as sent, before normalising).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Smallest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// For `type: object`: its members, by name, each an argument (`required: false` for the
    /// optional ones). Members not declared are refused. Conditions see a Cedar record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, ArgDoc>>,
    /// For `type: set`: the type of every item (a type name or a full form). Conditions see a
    /// Cedar set, so the order and duplicates of the list sent are not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ArgDoc>>,
    /// What the argument means, for people reading the pact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Argument type names as written. `path` and `url` are strings on the wire that the guard
/// checks and normalises before conditions see them; `object` and `set` take their shape from
/// `properties` and `items`. Nesting of `object` and `set` is bounded by [`crate::ARG_DEPTH_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ArgTypeName {
    /// A string (Cedar `String`).
    #[serde(rename = "string")]
    String,
    /// A 64-bit integer (Cedar `Long`).
    #[serde(rename = "long")]
    Long,
    /// A boolean (Cedar `Bool`).
    #[serde(rename = "bool")]
    Bool,
    /// An absolute file path (Cedar `String`). The guard refuses empty and relative paths and
    /// NUL bytes, and conditions see the path lexically normalised (`//` and `.` dropped, `..`
    /// resolved, `..` at the root staying at the root, no trailing `/`), so
    /// `like "/srv/data/*"` cannot be escaped with `../`. Cedar's `*` also matches `/`, so that
    /// pattern covers the whole tree under `/srv/data` but not the folder itself: write
    /// `path == "/srv/data" || path like "/srv/data/*"` (and never `like "/srv/data*"`, which
    /// matches `/srv/data-private`). Symlinks are not resolved: the guard does no IO, so
    /// whoever runs the tool must.
    #[serde(rename = "path")]
    Path,
    /// A URL, parsed (unparsable ones are refused). Conditions see the record
    /// `{scheme, host, port, path, query}`: host lowercased, the scheme's default port when
    /// none is given (else 0), dot segments removed; empty strings where a part is absent.
    #[serde(rename = "url")]
    Url,
    /// A set of strings (Cedar `Set<String>`).
    #[serde(rename = "set<string>")]
    SetString,
    /// A set of integers (Cedar `Set<Long>`).
    #[serde(rename = "set<long>")]
    SetLong,
    /// A set of absolute paths, each checked and normalised like `path` (Cedar `Set<String>`).
    #[serde(rename = "set<path>")]
    SetPath,
    /// A set of URLs, each parsed like `url` (a Cedar set of records).
    #[serde(rename = "set<url>")]
    SetUrl,
    /// A set whose item type is given by `items` (full form only; Cedar `Set<...>`).
    #[serde(rename = "set")]
    Set,
    /// An object whose members are given by `properties` (full form only; a Cedar record).
    #[serde(rename = "object")]
    Object,
}

impl ArgTypeName {
    /// The name as written in a pact.
    pub fn as_str(self) -> &'static str {
        match self {
            ArgTypeName::String => "string",
            ArgTypeName::Long => "long",
            ArgTypeName::Bool => "bool",
            ArgTypeName::Path => "path",
            ArgTypeName::Url => "url",
            ArgTypeName::SetString => "set<string>",
            ArgTypeName::SetLong => "set<long>",
            ArgTypeName::SetPath => "set<path>",
            ArgTypeName::SetUrl => "set<url>",
            ArgTypeName::Set => "set",
            ArgTypeName::Object => "object",
        }
    }
}

/// The five argument types of the first catalogs, as [`crate::Arg::arg_type`] still reports
/// them for code written before `path`, `url`, `object` and `set` with `items`: a `path` or
/// `url` is a `String`, a set of paths or URLs a `SetString`, and an `object` or other set a
/// `String`/`SetString` that does not describe it. New code reads [`crate::Arg::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ArgType {
    /// A string (Cedar `String`).
    #[serde(rename = "string")]
    String,
    /// A 64-bit integer (Cedar `Long`).
    #[serde(rename = "long")]
    Long,
    /// A boolean (Cedar `Bool`).
    #[serde(rename = "bool")]
    Bool,
    /// A set of strings (Cedar `Set<String>`).
    #[serde(rename = "set<string>")]
    SetString,
    /// A set of integers (Cedar `Set<Long>`).
    #[serde(rename = "set<long>")]
    SetLong,
}

/// One or several action names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ActionRef {
    /// One action name, or `"*"` for every action.
    One(String),
    /// Several action names.
    Many(Vec<String>),
}

impl ActionRef {
    /// The named actions, in the order written.
    pub fn names(&self) -> Vec<&str> {
        match self {
            ActionRef::One(name) => vec![name.as_str()],
            ActionRef::Many(names) => names.iter().map(String::as_str).collect(),
        }
    }
}

/// One rule. Exactly one of `permit` or `forbid` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// A stable id, named in every verdict the rule decides.
    pub id: String,
    /// Actions this rule allows (`"*"` for every action in the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit: Option<ActionRef>,
    /// Actions this rule excludes (`"*"` for every action in the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid: Option<ActionRef>,
    /// A Cedar condition that must hold for the rule to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A Cedar condition under which the rule does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    /// On a permit: the verdict is `review` until a person approves the call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_approval: bool,
    /// On a permit: a verified authority token with this role or claim is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_authority: Option<AuthorityRequirementDoc>,
    /// On a permit: a Cedar condition that sends the call to review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_when: Option<String>,
    /// Why the rule exists, for people and for verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a verified authority token must carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorityRequirementDoc {
    /// A role that must appear in the token's `roles` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Claims that must have these exact string values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

/// A windowed counter: exactly one of `sum` or `count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterDoc {
    /// The argument whose values are summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    /// Count calls instead of summing (`count: calls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountKind>,
    /// The actions counted (`"*"` for all).
    pub of: ActionRef,
    /// The sliding window, as a duration (`30s`, `1m`, `24h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Keep one counter per session instead of one per agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<CounterScope>,
}

/// What a counting counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CountKind {
    /// Count every call to the counted actions.
    Calls,
}

/// The scope of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CounterScope {
    /// One counter for the agent across sessions.
    Agent,
    /// One counter per session.
    Session,
}

/// Keys that may sign authority tokens for this agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorityDoc {
    /// The accepted signing keys.
    pub keys: Vec<AuthorityKeyDoc>,
    /// Tokens valid for longer than this (from `iat` to `exp`) are refused (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<String>,
}

/// One public key for authority tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorityKeyDoc {
    /// Key id; a token's `kid` header selects it.
    pub id: String,
    /// `EdDSA` (Ed25519) or `ES256` (P-256).
    pub alg: KeyAlg,
    /// The public key as PEM (SubjectPublicKeyInfo).
    pub public_key: String,
    /// The token issuer (`iss`) this key signs for, if checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// Signature algorithms accepted for authority tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KeyAlg {
    /// Ed25519 signatures.
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
}

/// A measurable promise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObligationDoc {
    /// A stable id, named by consequences and in evidence.
    pub id: String,
    /// The metric's name (for example `source_grounding_pass_rate`).
    pub metric: String,
    /// How the metric is measured.
    pub measured_by: MeasurementDoc,
    /// The bound the metric must meet.
    pub threshold: ThresholdDoc,
    /// Fewest samples for a measurement to count.
    pub min_samples: u64,
    /// The window measurements are taken over (for example `14d`).
    pub window: String,
    /// How old the newest measurement may be before the obligation is stale.
    pub freshness: String,
    /// The metric this one is a proxy for, if any (signals compare the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth_metric: Option<String>,
}

/// How a metric is measured: a trial suite and its judges, or production evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementDoc {
    /// A trial suite file or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The judges that grade it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<String>,
    /// Or a production source: `verdicts` or `outcomes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<String>,
}

/// Whether an obligation's `measured_by.suite` (`suites/probes.yaml`, or the id `probes`) names the
/// suite whose id is `suite_id`: the same text, or the file's name without its directories and its
/// `.yaml`, `.yml`, `.json` or `.jsonl` extension. Signals, recovery and the scheduler all use it,
/// so a pact that names a suite by file finds the suite uploaded under its id.
pub fn suite_matches(measured_by: &str, suite_id: &str) -> bool {
    if measured_by == suite_id {
        return true;
    }
    let file = measured_by
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(measured_by);
    let stem = [".yaml", ".yml", ".jsonl", ".json"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    stem == suite_id
}

/// A bound: `min` (the metric must be at least) or `max` (at most), as a fraction 0..=1 or a count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDoc {
    /// The metric must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The metric must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A signal and the response it triggers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsequenceDoc {
    /// The signal's name (for example `scope_violation_rate`, `canary_seen`, `obligation_breach`).
    pub signal: String,
    /// The response: `approve`, `restrict`, `re-evaluate`, `escalate`, `suspend`, `halt`,
    /// `withhold-settlement`.
    pub response: Response,
    /// The action category to restrict, for `restrict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The obligation this applies to, if only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obligation: Option<String>,
}

/// Responses the engine can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// Send the agent's elevated calls to human approval.
    Approve,
    /// Deny one action category (`category`).
    Restrict,
    /// Require a fresh trial before trust is restored.
    ReEvaluate,
    /// Open an incident and notify the owner.
    Escalate,
    /// Deny everything until an operator resumes the agent.
    Suspend,
    /// Stop the agent at once: every later call is denied.
    Halt,
    /// Hold payments tied to the agent's obligations.
    WithholdSettlement,
}

/// Overrides of the trust score's risk-tier defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreDoc {
    /// Weight per dimension, 0 to 100 (`boundary_integrity: 30`); dimensions not named keep the
    /// tier's weight, and 0 leaves a dimension out of the composite.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// Evidence older than this marks its dimension stale and lowers confidence (`30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<String>,
}

/// Re-entry criteria after an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryDoc {
    /// Fewest samples in the fresh trial after the repair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u64>,
    /// Distinct approvers needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<u32>,
    /// Whether a recorded operating-model change is needed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_operating_model_change: Option<bool>,
    /// Re-enter restricted first, then at full scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<bool>,
}

/// Threshold overrides for one signal. Fields left out keep the risk tier's default; which fields
/// a signal takes, and in what unit, is listed in the `signals` crate documentation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalDoc {
    /// Above this the signal warns: a number (rates and divergences as fractions 0..=1, score
    /// points, a variance ratio) or, for `evaluation_staleness`, a duration (`30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<SignalBound>,
    /// Above this the signal is critical; same unit as `warning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<SignalBound>,
    /// The window the signal is computed over (`7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// How many consecutive weeks (or trials, for `jury_variance`) the condition must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<u32>,
    /// For `outcome_missing`: how long after an allowed call its outcome is expected (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A signal threshold: a number or a duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SignalBound {
    /// A number: a fraction 0..=1 for rates and divergences, points, or a ratio.
    Number(f64),
    /// A duration (`30d`), for `evaluation_staleness`.
    Duration(String),
}
