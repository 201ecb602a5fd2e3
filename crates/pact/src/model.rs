//! The checked pact: what the guard reads. Built only by [`crate::check`], so every `Pact` value
//! is valid: its actions are known, its conditions type-check, and its Cedar policies are parsed
//! and indexed by action.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::{EntityUid, PolicySet, Schema};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::syntax::{PactDoc, Reversibility, Sensitivity, Tier};

/// The rule id named in verdicts that deny a call to an action outside the catalog.
pub const RULE_ID_UNKNOWN_ACTION: &str = "pactum:unknown-action";
/// The rule id named in verdicts sent to review by a bulk-record threshold.
pub const RULE_ID_BULK: &str = "pactum:bulk-review";

/// A checked, immutable pact version.
pub struct Pact {
    pub(crate) doc: PactDoc,
    pub(crate) digest: String,
    pub(crate) actions: Vec<Action>,
    pub(crate) action_idx: HashMap<String, usize>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) counters: Vec<Counter>,
    pub(crate) authority_keys: Vec<AuthorityKey>,
    pub(crate) token_lifetime_ms_max: u64,
    pub(crate) principal_uid: EntityUid,
    pub(crate) schema: Schema,
    pub(crate) schema_text: String,
    pub(crate) policies_text: String,
}

impl std::fmt::Debug for Pact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pact")
            .field("pact", &self.doc.pact)
            .field("version", &self.doc.version)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Pact {
    /// The document as written (normalised by parsing).
    pub fn doc(&self) -> &PactDoc {
        &self.doc
    }
    /// `sha256:<hex>` of the canonical JSON form; it names this version.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    pub fn id(&self) -> &str {
        &self.doc.pact
    }
    pub fn version(&self) -> u64 {
        self.doc.version
    }
    pub fn agent(&self) -> &str {
        &self.doc.agent
    }
    pub fn tier(&self) -> Tier {
        self.doc.tier
    }
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }
    /// The action named `name`, if the catalog has it.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.action_idx
            .get(name)
            .and_then(|idx| self.actions.get(*idx))
    }
    pub fn action_idx(&self, name: &str) -> Option<usize> {
        self.action_idx.get(name).copied()
    }
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn rule(&self, rule_idx: usize) -> Option<&Rule> {
        self.rules.get(rule_idx)
    }
    pub fn counters(&self) -> &[Counter] {
        &self.counters
    }
    pub fn canaries(&self) -> &[String] {
        &self.doc.canaries
    }
    pub fn authority_keys(&self) -> &[AuthorityKey] {
        &self.authority_keys
    }
    /// Longest accepted lifetime of an authority token, `iat` to `exp`.
    pub fn token_lifetime_ms_max(&self) -> u64 {
        self.token_lifetime_ms_max
    }
    /// The Cedar principal every request is made as: `Agent::"<agent id>"`.
    pub fn principal_uid(&self) -> &EntityUid {
        &self.principal_uid
    }
    pub fn cedar_schema(&self) -> &Schema {
        &self.schema
    }
    /// The generated Cedar schema, in Cedar syntax.
    pub fn cedar_schema_text(&self) -> &str {
        &self.schema_text
    }
    /// Every generated Cedar policy, in Cedar syntax.
    pub fn cedar_policies_text(&self) -> &str {
        &self.policies_text
    }
}

/// A catalog action with its arguments and its own slice of the policies.
pub struct Action {
    pub name: String,
    pub reversibility: Reversibility,
    pub sensitivity: Sensitivity,
    /// The category restrictions apply to.
    pub category: String,
    pub bulk: Option<Bulk>,
    /// Declared arguments, sorted by name.
    pub args: Vec<Arg>,
    /// `Action::"<name>"`.
    pub uid: EntityUid,
    /// The permits and forbids that name this action. Evaluating only these is what keeps the
    /// guard in microseconds.
    pub policies: PolicySet,
    /// One policy per permit with `review_when`: satisfied means the call goes to review.
    pub review_policies: PolicySet,
    /// Indexes into [`Pact::rules`] of the rules that name this action.
    pub rule_idxs: Vec<usize>,
    /// Indexes into [`Pact::counters`] of the counters this action feeds.
    pub counter_idxs: Vec<usize>,
}

impl Action {
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args
            .binary_search_by(|arg| arg.name.as_str().cmp(name))
            .ok()
            .and_then(|idx| self.args.get(idx))
    }
}

/// A declared argument, or a member of an object argument, or the item of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The argument's or member's name; empty for a set's item.
    pub name: String,
    /// The closest of the five original types, for code written before [`ArgKind`]; see
    /// [`crate::syntax::ArgType`]. Read `kind` instead.
    pub arg_type: crate::syntax::ArgType,
    /// The checked type, with the members of objects and the items of sets.
    pub kind: ArgKind,
    /// Whether it must be present; always true for a set's item.
    pub required: bool,
    pub allowed: Option<Vec<String>>,
    pub max_bytes: Option<u64>,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Arg {
    /// The member named `name` of an object argument.
    pub fn member(&self, name: &str) -> Option<&Arg> {
        match &self.kind {
            ArgKind::Object(members) => members
                .binary_search_by(|member| member.name.as_str().cmp(name))
                .ok()
                .and_then(|idx| members.get(idx)),
            _ => None,
        }
    }
}

/// The checked type of an argument and the Cedar type conditions see it as.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgKind {
    /// Cedar `String`.
    String,
    /// Cedar `Long`.
    Long,
    /// Cedar `Bool`.
    Bool,
    /// An absolute path, lexically normalised by the guard (Cedar `String`).
    Path,
    /// A parsed URL: the record [`URL_CEDAR_TYPE`].
    Url,
    /// A set of items of the given type (Cedar `Set<...>`).
    Set(Box<Arg>),
    /// An object with these members, sorted by name (a Cedar record; optional members are
    /// optional attributes).
    Object(Vec<Arg>),
}

/// The Cedar record a `url` argument is seen as.
pub const URL_CEDAR_TYPE: &str =
    "{ scheme: String, host: String, port: Long, path: String, query: String }";

impl ArgKind {
    /// Whether the guard must do more than copy the value: normalise a path, parse a URL.
    /// Objects and sets are walked whatever they hold.
    pub fn has_path_or_url(&self) -> bool {
        match self {
            ArgKind::String | ArgKind::Long | ArgKind::Bool => false,
            ArgKind::Path | ArgKind::Url => true,
            ArgKind::Set(item) => item.kind.has_path_or_url(),
            ArgKind::Object(members) => members.iter().any(|member| member.kind.has_path_or_url()),
        }
    }

    /// The Cedar type conditions see.
    pub fn cedar_type(&self) -> String {
        match self {
            ArgKind::String | ArgKind::Path => "String".to_string(),
            ArgKind::Long => "Long".to_string(),
            ArgKind::Bool => "Bool".to_string(),
            ArgKind::Url => URL_CEDAR_TYPE.to_string(),
            ArgKind::Set(item) => format!("Set<{}>", item.kind.cedar_type()),
            ArgKind::Object(members) => {
                let attributes: Vec<String> = members
                    .iter()
                    .map(|member| {
                        format!(
                            " {}{}: {}",
                            crate::check::cedar_string(&member.name),
                            if member.required { "" } else { "?" },
                            member.kind.cedar_type()
                        )
                    })
                    .collect();
                format!("{{{} }}", attributes.join(","))
            }
        }
    }

    /// The closest of the five original types (see [`crate::syntax::ArgType`]).
    pub fn legacy_type(&self) -> crate::syntax::ArgType {
        use crate::syntax::ArgType;
        match self {
            ArgKind::String | ArgKind::Path | ArgKind::Url | ArgKind::Object(_) => ArgType::String,
            ArgKind::Long => ArgType::Long,
            ArgKind::Bool => ArgType::Bool,
            ArgKind::Set(item) if item.kind == ArgKind::Long => ArgType::SetLong,
            ArgKind::Set(_) => ArgType::SetString,
        }
    }
}

/// The bulk-record argument and its review threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bulk {
    pub arg: String,
    pub review_above: i64,
}

/// Permit or forbid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Permit,
    Forbid,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub effect: Effect,
    /// Indexes into [`Pact::actions`].
    pub action_idxs: Vec<usize>,
    pub require_approval: bool,
    pub require_authority: Option<AuthorityRequirement>,
    pub has_review_when: bool,
    pub reason: Option<String>,
}

/// What a verified authority token must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityRequirement {
    pub role: Option<String>,
    pub claims: BTreeMap<String, String>,
}

/// A windowed counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub name: String,
    pub kind: CounterKind,
    /// Indexes into [`Pact::actions`] of the actions it counts.
    pub action_idxs: Vec<usize>,
    /// The sliding window; `None` counts for the whole session (or agent lifetime).
    pub window_ms: Option<u64>,
    pub per_session: bool,
}

/// What a counter adds up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterKind {
    Sum { arg: String },
    Calls,
}

/// A public key that may sign authority tokens.
#[derive(Clone)]
pub struct AuthorityKey {
    pub id: String,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
    pub issuer: Option<String>,
}

impl std::fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
