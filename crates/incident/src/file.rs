//! The case file: everything a person needs about one incident, assembled at once from the log,
//! and its text rendering for `pactum incident show`.
//!
//! The incident window runs from when the anomaly began (the signals' `since_ms`, else detection)
//! to containment, or to `now_ms` while the incident is not contained.
//!
//! - **Blast radius**: every `allow` verdict of the agent in the window, grouped by the action's
//!   reversibility in the pact version that decided it (irreversible, then partial, then
//!   reversible; an action the pact does not know counts as irreversible), with counts per action
//!   and the affected counterparties.
//! - **Counterparties**: the values of arguments named in [`COUNTERPARTY_ARGS`], or whose name ends
//!   in `_email`, `_customer_id` or `_account_id`; strings and numbers, or arrays of them, listed
//!   as `name=value`.
//! - **Evidence completeness**: seven items for the window, each present or missing with a
//!   detail, and the share present in basis points: `pact_version` (the version active at detection
//!   is known and its pact is available), `inputs` (every verdict carries its request), `outputs`
//!   (the agent reported outcomes, when anything was allowed), `verdicts` (verdicts in the window,
//!   and every evidence record of the trigger is in the log), `outcomes` (every allowed verdict
//!   has its outcome), `trial_records` (a complete trial of the agent before the window ends),
//!   `approvals` (every `review` verdict was settled by an approval).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use pact::syntax::{PactDoc, Reversibility};
use serde::Serialize;
use serde_json::Value;

use crate::case::{Change, Transition};
use crate::records::{self, Delivery, Notification, Postmortem, SignalRef, Trigger};
use crate::recovery::complete_trials;
use crate::{refs_with, str_of, u64_of, Case, Pattern, Severity, Stage, State};

/// Argument names whose values identify a counterparty.
pub const COUNTERPARTY_ARGS: &[&str] = &[
    "customer",
    "customer_id",
    "user_id",
    "account",
    "account_id",
    "order_id",
    "recipient",
    "recipients",
    "email",
    "to",
    "cc",
    "bcc",
    "phone",
    "partner",
    "partner_id",
    "payee",
    "employee_id",
];
/// Verdict indexes and counterparties listed per group (counts are always complete).
pub const LISTED_MAX: usize = 100;
/// Longest counterparty value kept, in bytes.
const VALUE_BYTES_MAX: usize = 128;

fn is_counterparty_arg(name: &str) -> bool {
    COUNTERPARTY_ARGS.contains(&name)
        || name.ends_with("_email")
        || name.ends_with("_customer_id")
        || name.ends_with("_account_id")
}

fn clip(text: &str) -> &str {
    if text.len() <= VALUE_BYTES_MAX {
        return text;
    }
    let mut end = VALUE_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// The counterparties named in a request's arguments, as `name=value`, sorted.
pub fn counterparties(args: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    let Some(args) = args.as_object() else {
        return Vec::new();
    };
    for (name, value) in args {
        if !is_counterparty_arg(name) {
            continue;
        }
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = match value {
                Value::String(text) if !text.trim().is_empty() => clip(text.trim()).to_owned(),
                Value::Number(number) => number.to_string(),
                _ => continue,
            };
            out.insert(format!("{name}={text}"));
        }
    }
    out.into_iter().collect()
}

/// One action in a blast-radius group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionCount {
    pub action: String,
    pub n_allowed: u64,
}

/// The allowed actions of one reversibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlastGroup {
    pub reversibility: Reversibility,
    pub n_allowed: u64,
    pub actions: Vec<ActionCount>,
    pub n_counterparties: u64,
    /// Sorted; the first [`LISTED_MAX`].
    pub counterparties: Vec<String>,
    /// The first [`LISTED_MAX`] verdict indexes.
    pub verdicts: Vec<u64>,
}

/// A blast-radius group while it is being counted.
#[derive(Default)]
struct GroupTally {
    n_allowed: u64,
    actions: BTreeMap<String, u64>,
    counterparties: BTreeSet<String>,
    verdicts: Vec<u64>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub index: u64,
    pub ts: u64,
    pub kind: String,
    pub summary: String,
}

/// One notification sent about the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub index: u64,
    pub ts: u64,
    pub url: String,
    pub event: String,
    pub delivered: bool,
    pub attempts: u32,
    pub latency_ms: u64,
}

/// One evidence-completeness item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompletenessItem {
    pub item: &'static str,
    pub present: bool,
    pub detail: String,
}

/// The pact version active at detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PactAt {
    pub version: u64,
    pub digest: Option<String>,
}

/// The case file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseFile {
    pub id: u64,
    pub label: String,
    pub agent: String,
    pub state: State,
    pub stage: Option<Stage>,
    pub pattern: Option<Pattern>,
    pub severity: Severity,
    pub owner: Option<String>,
    pub pact: Option<PactAt>,
    pub trigger: Trigger,
    pub trigger_index: Option<u64>,
    pub opened_by: Option<String>,
    pub reason: String,
    pub signals: Vec<SignalRef>,
    pub evidence: Vec<u64>,
    pub obligations: Vec<String>,
    pub category: Option<String>,
    pub opened_ms: u64,
    pub detected_ms: u64,
    pub since_ms: Option<u64>,
    pub window_start_ms: u64,
    pub window_end_ms: u64,
    pub contained_ms: Option<u64>,
    pub time_to_containment_ms: Option<u64>,
    pub n_allowed: u64,
    pub blast_radius: Vec<BlastGroup>,
    /// Classification, severity and owner changes, oldest first.
    pub changes: Vec<Change>,
    pub transitions: Vec<Transition>,
    pub timeline: Vec<TimelineEntry>,
    pub notifications: Vec<Notice>,
    pub completeness: Vec<CompletenessItem>,
    pub completeness_bp: u32,
    pub operating_model_changes: Vec<records::OperatingModelChange>,
    pub recovery_approvers: Vec<String>,
    pub postmortem: Option<Postmortem>,
    pub ignored: Vec<(u64, String)>,
}

fn summary(kind: &str, record: &Value) -> String {
    let text = |key: &str| str_of(record, key).unwrap_or("").to_owned();
    match kind {
        "halt" | "resume" => format!("{kind} by {}: {}", text("by"), text("reason")),
        "restrict" | "unrestrict" => format!(
            "{kind} `{}` by {}: {}",
            text("category"),
            text("by"),
            text("reason")
        ),
        "signal" => format!(
            "signal {} ({}): {}",
            text("signal"),
            text("level"),
            text("message")
        ),
        "response" => format!(
            "response {} ({}) -> {}",
            text("signal"),
            text("level"),
            text("response")
        ),
        "notification" => format!(
            "notified {} of {}: {} after {} attempt(s)",
            text("url"),
            text("event"),
            text("status"),
            u64_of(record, "attempts").unwrap_or(0)
        ),
        "pact_activated" => format!(
            "pact version {} activated",
            record
                .get("pact")
                .and_then(|pact| u64_of(pact, "version"))
                .unwrap_or(0)
        ),
        records::KIND_OPENED => format!("opened: {}", text("reason")),
        records::KIND_UPDATED => format!("updated by {}: {}", text("by"), text("reason")),
        records::KIND_STATE => {
            let mut line = format!(
                "{} -> {} by {}: {}",
                text("from"),
                text("to"),
                text("by"),
                text("reason")
            );
            if let Some(stage) = str_of(record, "stage") {
                let _ = write!(line, " (stage {stage})");
            }
            line
        }
        records::KIND_OPERATING_MODEL_CHANGE => format!(
            "operating-model change ({}) by {}: {}; broken assumption: {}",
            text("change"),
            text("by"),
            text("detail"),
            text("broken_assumption")
        ),
        records::KIND_RECOVERY_APPROVAL => format!("recovery approved by {}", text("by")),
        records::KIND_POSTMORTEM => format!("postmortem by {}", text("by")),
        other => other.to_owned(),
    }
}

const TIMELINE_KINDS: &[&str] = &[
    "halt",
    "resume",
    "restrict",
    "unrestrict",
    "signal",
    "response",
    "pact_activated",
];

/// Assembles the case file of `case` from `records` (the log, or at least the agent's records).
/// `pacts(agent, version)` gives a pact version's document, for reversibility.
pub fn case_file(
    case: &Case,
    records: &[(u64, Value)],
    pacts: &dyn Fn(&str, u64) -> Option<PactDoc>,
    now_ms: u64,
) -> CaseFile {
    let start_ms = case.window_start_ms();
    let end_ms = case.contained.map_or(now_ms, |(_, ts)| ts);
    let timeline_end_ms = case.closed_ms.unwrap_or(now_ms).max(end_ms);
    let case_records: HashSet<u64> = case.records.iter().copied().collect();
    let mut docs: HashMap<u64, Option<PactDoc>> = HashMap::new();

    let mut pact_at: Option<PactAt> = None;
    let mut present_indexes: HashSet<u64> = HashSet::new();
    let mut window_verdicts: Vec<(u64, &Value)> = Vec::new();
    let mut outcome_of: HashSet<u64> = HashSet::new();
    let mut approved: HashSet<u64> = HashSet::new();
    let mut timeline = Vec::new();
    let mut notifications = Vec::new();
    for (index, record) in records {
        present_indexes.insert(*index);
        if str_of(record, "agent") != Some(case.agent.as_str()) {
            continue;
        }
        let kind = str_of(record, "kind").unwrap_or("");
        let ts = u64_of(record, "ts").unwrap_or(0);
        let in_window = ts >= start_ms && ts <= end_ms;
        match kind {
            "pact_activated" if ts <= case.detected_ms && *index < case.id => {
                if let Some(pact) = record.get("pact") {
                    pact_at = u64_of(pact, "version").map(|version| PactAt {
                        version,
                        digest: str_of(pact, "digest").map(str::to_owned),
                    });
                }
            }
            "verdict" if in_window => window_verdicts.push((*index, record)),
            "verdict" if ts <= case.detected_ms && pact_at.is_none() => {
                // Records without activations: the verdict's own pact, until one is seen.
                if let Some(pact) = record.get("verdict").and_then(|v| v.get("pact")) {
                    if let Some(version) = u64_of(pact, "version") {
                        pact_at = Some(PactAt {
                            version,
                            digest: str_of(pact, "digest").map(str::to_owned),
                        });
                    }
                }
            }
            "outcome" => outcome_of.extend(refs_with(record, "verdict")),
            "approval" => approved.extend(refs_with(record, "verdict")),
            _ => {}
        }
        let about_case = case_records.contains(index)
            || (kind == records::KIND_NOTIFICATION && u64_of(record, "incident") == Some(case.id));
        let in_timeline = about_case
            || (ts >= start_ms
                && ts <= timeline_end_ms
                && (TIMELINE_KINDS.contains(&kind)
                    || (kind == records::KIND_NOTIFICATION
                        && record.get("incident").is_none_or(Value::is_null))));
        if in_timeline {
            timeline.push(TimelineEntry {
                index: *index,
                ts,
                kind: kind.to_owned(),
                summary: summary(kind, record),
            });
            if let Some(notification) =
                records::parse::<Notification>(record, records::KIND_NOTIFICATION)
            {
                notifications.push(Notice {
                    index: *index,
                    ts,
                    url: notification.url,
                    event: notification.event,
                    delivered: notification.status == Delivery::Delivered,
                    attempts: notification.attempts,
                    latency_ms: notification.latency_ms,
                });
            }
        }
    }

    // Blast radius.
    let mut groups: BTreeMap<Reversibility, GroupTally> = BTreeMap::new();
    let mut n_allowed = 0u64;
    let mut n_with_request = 0u64;
    let mut n_allowed_with_outcome = 0u64;
    let mut n_review = 0u64;
    let mut n_review_settled = 0u64;
    for (index, record) in &window_verdicts {
        let verdict = record.get("verdict");
        let decision = verdict.and_then(|v| str_of(v, "decision")).unwrap_or("");
        let request = record.get("request");
        let action = request
            .and_then(|r| str_of(r, "action"))
            .or_else(|| verdict.and_then(|v| str_of(v, "action")));
        if request.and_then(|r| str_of(r, "action")).is_some() {
            n_with_request += 1;
        }
        if decision == "review" {
            n_review += 1;
            if approved.contains(index) {
                n_review_settled += 1;
            }
        }
        if decision != "allow" {
            continue;
        }
        n_allowed += 1;
        if outcome_of.contains(index) {
            n_allowed_with_outcome += 1;
        }
        let action = action.unwrap_or("").to_owned();
        let version = verdict
            .and_then(|v| v.get("pact"))
            .and_then(|p| u64_of(p, "version"))
            .or(pact_at.as_ref().map(|pact| pact.version));
        let reversibility = version
            .and_then(|version| {
                docs.entry(version)
                    .or_insert_with(|| pacts(&case.agent, version))
                    .as_ref()
                    .and_then(|doc| doc.actions.get(&action))
                    .map(|entry| entry.reversibility)
            })
            .unwrap_or(Reversibility::Irreversible);
        let group = groups.entry(reversibility).or_default();
        group.n_allowed += 1;
        *group.actions.entry(action).or_default() += 1;
        if let Some(args) = request.and_then(|r| r.get("args")) {
            group.counterparties.extend(counterparties(args));
        }
        if group.verdicts.len() < LISTED_MAX {
            group.verdicts.push(*index);
        }
    }
    let blast_radius: Vec<BlastGroup> = groups
        .into_iter()
        .rev()
        .map(|(reversibility, tally)| {
            let mut actions: Vec<ActionCount> = tally
                .actions
                .into_iter()
                .map(|(action, n_allowed)| ActionCount { action, n_allowed })
                .collect();
            actions.sort_by(|a, b| b.n_allowed.cmp(&a.n_allowed).then(a.action.cmp(&b.action)));
            BlastGroup {
                reversibility,
                n_allowed: tally.n_allowed,
                actions,
                n_counterparties: tally.counterparties.len() as u64,
                counterparties: tally.counterparties.into_iter().take(LISTED_MAX).collect(),
                verdicts: tally.verdicts,
            }
        })
        .collect();

    // Evidence completeness.
    let n_verdicts = window_verdicts.len() as u64;
    let pact_known = pact_at
        .as_ref()
        .map(|pact| {
            docs.entry(pact.version)
                .or_insert_with(|| pacts(&case.agent, pact.version))
                .is_some()
        })
        .unwrap_or(false);
    let n_evidence_missing = case
        .opened
        .evidence
        .iter()
        .filter(|index| !present_indexes.contains(index))
        .count();
    let has_trial = complete_trials(records, &case.agent)
        .iter()
        .any(|(_, _, _, record)| u64_of(record, "ts").unwrap_or(u64::MAX) <= end_ms);
    let completeness = vec![
        CompletenessItem {
            item: "pact_version",
            present: pact_known,
            detail: match (&pact_at, pact_known) {
                (Some(pact), true) => format!("version {} active at detection", pact.version),
                (Some(pact), false) => format!("version {} is not available", pact.version),
                (None, _) => "no pact activation before detection".to_owned(),
            },
        },
        CompletenessItem {
            item: "inputs",
            present: n_verdicts > 0 && n_with_request == n_verdicts,
            detail: format!("{n_with_request} of {n_verdicts} verdicts carry their request"),
        },
        CompletenessItem {
            item: "outputs",
            present: n_allowed == 0 || n_allowed_with_outcome > 0,
            detail: if n_allowed == 0 {
                "no action was allowed".to_owned()
            } else {
                format!("{n_allowed_with_outcome} outcomes reported")
            },
        },
        CompletenessItem {
            item: "verdicts",
            present: n_verdicts > 0 && n_evidence_missing == 0,
            detail: format!(
                "{n_verdicts} verdicts in the window; {n_evidence_missing} of {} trigger evidence records missing",
                case.opened.evidence.len()
            ),
        },
        CompletenessItem {
            item: "outcomes",
            present: n_allowed_with_outcome == n_allowed,
            detail: format!("{n_allowed_with_outcome} of {n_allowed} allowed actions have an outcome"),
        },
        CompletenessItem {
            item: "trial_records",
            present: has_trial,
            detail: if has_trial {
                "a complete trial precedes the end of the window".to_owned()
            } else {
                "no complete trial of the agent".to_owned()
            },
        },
        CompletenessItem {
            item: "approvals",
            present: n_review_settled == n_review,
            detail: format!("{n_review_settled} of {n_review} reviewed calls settled by an approval"),
        },
    ];
    let n_present = completeness.iter().filter(|item| item.present).count() as u32;
    let completeness_bp = (n_present * 10_000 + 3) / 7;

    CaseFile {
        id: case.id,
        label: case.label(),
        agent: case.agent.clone(),
        state: case.state,
        stage: case.stage,
        pattern: case.pattern,
        severity: case.severity,
        owner: case.owner.clone(),
        pact: pact_at,
        trigger: case.opened.trigger,
        trigger_index: case.opened.trigger_index,
        opened_by: case.opened.by.clone(),
        reason: case.opened.reason.clone(),
        signals: case.opened.signals.clone(),
        evidence: case.opened.evidence.clone(),
        obligations: case.opened.obligations.clone(),
        category: case.opened.category.clone(),
        opened_ms: case.opened_ms,
        detected_ms: case.detected_ms,
        since_ms: case.opened.since_ms,
        window_start_ms: start_ms,
        window_end_ms: end_ms,
        contained_ms: case.contained.map(|(_, ts)| ts),
        time_to_containment_ms: case.time_to_containment_ms(),
        n_allowed,
        blast_radius,
        changes: case.changes.clone(),
        transitions: case.transitions.clone(),
        timeline,
        notifications,
        completeness,
        completeness_bp,
        operating_model_changes: case
            .operating_model_changes
            .iter()
            .map(|(_, change)| change.clone())
            .collect(),
        recovery_approvers: case
            .recovery_approvals
            .iter()
            .map(|(_, _, approval)| approval.by.clone())
            .collect(),
        postmortem: case.postmortem.as_ref().map(|(_, pm)| pm.clone()),
        ignored: case.ignored.clone(),
    }
}

fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
        60_000..=3_599_999 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        3_600_000..=86_399_999 => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
        _ => format!("{} d {} h", ms / 86_400_000, (ms % 86_400_000) / 3_600_000),
    }
}

fn reversibility_name(reversibility: Reversibility) -> &'static str {
    match reversibility {
        Reversibility::Irreversible => "irreversible",
        Reversibility::Partial => "partial",
        Reversibility::Reversible => "reversible",
    }
}

/// Unix milliseconds as UTC, `2026-12-04 15:21:01.877Z` (days to a civil date after Howard
/// Hinnant's `civil_from_days`).
fn utc(ms: u64) -> String {
    let days = ms / 86_400_000;
    let ms_of_day = ms % 86_400_000;
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// The case file as text for a person: times in UTC, durations in words.
pub fn render(file: &CaseFile) -> String {
    let mut out = String::new();
    let pattern = file.pattern.map_or("unclassified", Pattern::as_str);
    let _ = writeln!(
        out,
        "{} · {} · {} · severity {} · {}",
        file.label,
        file.agent,
        file.state.as_str(),
        file.severity.as_str(),
        pattern
    );
    if let Some(stage) = file.stage {
        let _ = writeln!(out, "stage: {}", stage.as_str());
    }
    let _ = writeln!(out, "owner: {}", file.owner.as_deref().unwrap_or("(none)"));
    match &file.pact {
        Some(pact) => {
            let _ = writeln!(
                out,
                "pact at detection: version {} {}",
                pact.version,
                pact.digest.as_deref().unwrap_or("")
            );
        }
        None => {
            let _ = writeln!(out, "pact at detection: unknown");
        }
    }
    let trigger = match file.trigger {
        Trigger::Halt => "a halt",
        Trigger::Signal => "a signal",
        Trigger::Person => "a person",
    };
    let _ = write!(out, "opened by {trigger}");
    if let Some(by) = &file.opened_by {
        let _ = write!(out, " ({by})");
    }
    if let Some(index) = file.trigger_index {
        let _ = write!(out, ", record {index}");
    }
    let _ = writeln!(out, ": {}", file.reason);
    for signal in &file.signals {
        let _ = writeln!(
            out,
            "  signal {} ({}) record {}{}",
            signal.signal,
            signal.level.as_str(),
            signal.index,
            signal
                .obligation
                .as_ref()
                .map_or_else(String::new, |id| format!(", obligation {id}"))
        );
    }
    if !file.evidence.is_empty() {
        let listed: Vec<String> = file.evidence.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "  evidence: records {}", listed.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "detected at {}", utc(file.detected_ms));
    if let Some(since) = file.since_ms {
        let _ = writeln!(out, "anomaly began at {}", utc(since));
    }
    match (file.contained_ms, file.time_to_containment_ms) {
        (Some(at), Some(ttc)) => {
            let _ = writeln!(
                out,
                "contained at {}, {} after detection",
                utc(at),
                duration(ttc)
            );
        }
        _ => {
            let _ = writeln!(out, "NOT CONTAINED");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "blast radius: {} allowed actions between {} and {}",
        file.n_allowed,
        utc(file.window_start_ms),
        utc(file.window_end_ms)
    );
    for group in &file.blast_radius {
        let _ = writeln!(
            out,
            "  {}: {} ({} counterparties)",
            reversibility_name(group.reversibility),
            group.n_allowed,
            group.n_counterparties
        );
        for action in &group.actions {
            let _ = writeln!(out, "    {} × {}", action.action, action.n_allowed);
        }
        if !group.counterparties.is_empty() {
            let _ = writeln!(
                out,
                "    counterparties: {}",
                group.counterparties.join(", ")
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "evidence completeness: {}.{:02}%",
        file.completeness_bp / 100,
        file.completeness_bp % 100
    );
    for item in &file.completeness {
        let mark = if item.present { "present" } else { "MISSING" };
        let _ = writeln!(out, "  {:<14} {mark:<8} {}", item.item, item.detail);
    }
    if !file.changes.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "changes:");
        for change in &file.changes {
            let _ = writeln!(
                out,
                "  {} {}: {} -> {} by {} ({})",
                change.index,
                change.field,
                change.from.as_deref().unwrap_or("(none)"),
                change.to,
                change.by,
                change.reason
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "timeline:");
    for entry in &file.timeline {
        let _ = writeln!(
            out,
            "  {}  #{:<6} {}",
            utc(entry.ts),
            entry.index,
            entry.summary
        );
    }
    if !file.notifications.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "notifications:");
        for notice in &file.notifications {
            let status = if notice.delivered {
                "delivered"
            } else {
                "FAILED"
            };
            let _ = writeln!(
                out,
                "  {} {} {status} after {} attempt(s), {}",
                notice.event,
                notice.url,
                notice.attempts,
                duration(notice.latency_ms)
            );
        }
    }
    if let Some(postmortem) = &file.postmortem {
        let _ = writeln!(out);
        let _ = writeln!(out, "postmortem ({}):", postmortem.by);
        let _ = writeln!(out, "  visible failure: {}", postmortem.visible_failure);
        let _ = writeln!(
            out,
            "  structural failure: {}",
            postmortem.structural_failure
        );
        let _ = writeln!(out, "  broken assumption: {}", postmortem.broken_assumption);
        let _ = writeln!(
            out,
            "  operating-model change: {}",
            postmortem.operating_model_change
        );
    }
    for (index, why) in &file.ignored {
        let _ = writeln!(out, "ignored record {index}: {why}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_renders_civil_dates_and_leap_days() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z.
        assert_eq!(utc(1_709_210_096_789), "2024-02-29 12:34:56.789Z");
        // 2026-12-04T15:21:01.877Z.
        assert_eq!(utc(1_796_397_661_877), "2026-12-04 15:21:01.877Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000Z");
    }
}
