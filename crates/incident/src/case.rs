//! Case state: the log's incident records (and the halts and restrictions that contain them)
//! folded, in log order, into one [`Case`] per incident; and the rules for moving a case on.
//!
//! A record that would make an illegal change (a transition out of order, an update naming an
//! incident of another agent) is not applied; it is listed in [`Case::ignored`] so the case file
//! can show it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::records::{
    self, Opened, OperatingModelChange, Postmortem, RecoveryApproval, StateChange, Trigger, Updated,
};
use crate::{label, str_of, u64_of, Pattern, Severity, Stage, State};

/// One change to the classification, severity or owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub index: u64,
    pub ts: u64,
    pub by: String,
    pub field: &'static str,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
}

/// One state transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub index: u64,
    pub ts: u64,
    pub from: State,
    pub to: State,
    pub by: String,
    pub reason: String,
    pub stage: Option<Stage>,
}

/// One incident as the log tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// The index of its `incident_opened` record.
    pub id: u64,
    pub agent: String,
    pub opened: Opened,
    pub opened_ms: u64,
    /// When the trigger was recorded (the trigger record's time when it is in the log, else
    /// the opening time).
    pub detected_ms: u64,
    pub pattern: Option<Pattern>,
    pub severity: Severity,
    pub owner: Option<String>,
    /// Classification, severity and owner changes, oldest first.
    pub changes: Vec<Change>,
    pub state: State,
    pub stage: Option<Stage>,
    pub transitions: Vec<Transition>,
    /// The record that contained it (a halt, a restrict or an `incident_state`) and its time.
    pub contained: Option<(u64, u64)>,
    /// The `incident_state` record that marked it repaired, and its time.
    pub repaired: Option<(u64, u64)>,
    pub operating_model_changes: Vec<(u64, OperatingModelChange)>,
    /// Index, time and the approval.
    pub recovery_approvals: Vec<(u64, u64, RecoveryApproval)>,
    pub postmortem: Option<(u64, Postmortem)>,
    /// The closing record's time.
    pub closed_ms: Option<u64>,
    /// Every record of this case (incident records and the containing halt or restrict).
    pub records: Vec<u64>,
    /// Records naming this case that were not applied, with why.
    pub ignored: Vec<(u64, String)>,
}

impl Case {
    pub fn label(&self) -> String {
        label(self.id)
    }

    /// When the anomaly began: the signals' `since_ms`, else detection.
    pub fn window_start_ms(&self) -> u64 {
        self.opened
            .since_ms
            .map_or(self.detected_ms, |since| since.min(self.detected_ms))
    }

    /// Time to containment, if contained.
    pub fn time_to_containment_ms(&self) -> Option<u64> {
        self.contained
            .map(|(_, ts)| ts.saturating_sub(self.detected_ms))
    }
}

/// Why a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Not a step of open -> contained -> repaired -> recovering -> closed.
    Illegal { from: State, to: State },
    /// Recovery is entered only through [`crate::check_resume`].
    UseResume,
    /// Closing needs a postmortem.
    NoPostmortem,
    /// `by` or `reason` is empty.
    Unattributed,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::Illegal { from, to } => write!(
                f,
                "an incident cannot go from {} to {}: the order is open, contained, repaired, recovering, closed",
                from.as_str(),
                to.as_str()
            ),
            TransitionError::UseResume => f.write_str(
                "an incident enters recovery only by resuming, which checks the re-entry criteria",
            ),
            TransitionError::NoPostmortem => f.write_str(
                "closing needs a postmortem: the broken assumption, the structural failure (as distinct from the visible one) and the operating-model change",
            ),
            TransitionError::Unattributed => {
                f.write_str("a transition needs who made it and why")
            }
        }
    }
}

impl std::error::Error for TransitionError {}

fn next_of(state: State) -> Option<State> {
    match state {
        State::Open => Some(State::Contained),
        State::Contained => Some(State::Repaired),
        State::Repaired => Some(State::Recovering),
        State::Recovering => Some(State::Closed),
        State::Closed => None,
    }
}

/// Whether a person may move `case` to `to` with this `by` and `reason`. Only the next step is
/// legal; `recovering` is refused here (resume checks it); `closed` needs a postmortem.
pub fn check_transition(
    case: &Case,
    to: State,
    by: &str,
    reason: &str,
) -> Result<(), TransitionError> {
    if by.trim().is_empty() || reason.trim().is_empty() {
        return Err(TransitionError::Unattributed);
    }
    if next_of(case.state) != Some(to) {
        return Err(TransitionError::Illegal {
            from: case.state,
            to,
        });
    }
    match to {
        State::Recovering => Err(TransitionError::UseResume),
        State::Closed if case.postmortem.is_none() => Err(TransitionError::NoPostmortem),
        _ => Ok(()),
    }
}

/// The halt and restrictions in force for one agent.
#[derive(Debug, Default, Clone)]
struct Controls {
    halt: Option<(u64, u64)>,
    restricted: BTreeMap<String, (u64, u64)>,
}

/// Folds records one at a time; [`fold`] runs it over a slice. Program metrics use it to look at
/// a case just before a record is applied.
#[derive(Debug, Default, Clone)]
pub struct Folder {
    cases: BTreeMap<u64, Case>,
    controls: HashMap<String, Controls>,
    /// Times of records seen, for triggers (only kinds that can trigger).
    trigger_ts: HashMap<u64, u64>,
}

impl Folder {
    pub fn new() -> Folder {
        Folder::default()
    }

    pub fn cases(&self) -> &BTreeMap<u64, Case> {
        &self.cases
    }

    pub fn into_cases(self) -> BTreeMap<u64, Case> {
        self.cases
    }

    /// Applies one record (records must come in log order).
    pub fn apply(&mut self, index: u64, record: &Value) {
        let (Some(kind), Some(agent)) = (str_of(record, "kind"), str_of(record, "agent")) else {
            return;
        };
        let ts = u64_of(record, "ts").unwrap_or(0);
        match kind {
            "halt" => {
                self.controls.entry(agent.to_owned()).or_default().halt = Some((index, ts));
                self.contain_open(agent, None, index, ts, record, "halt");
            }
            "resume" => {
                self.controls.entry(agent.to_owned()).or_default().halt = None;
            }
            "restrict" => {
                let category = str_of(record, "category").unwrap_or("").to_owned();
                self.controls
                    .entry(agent.to_owned())
                    .or_default()
                    .restricted
                    .insert(category.clone(), (index, ts));
                self.contain_open(agent, Some(&category), index, ts, record, "restrict");
            }
            "unrestrict" => {
                let category = str_of(record, "category").unwrap_or("");
                if let Some(controls) = self.controls.get_mut(agent) {
                    controls.restricted.remove(category);
                }
            }
            records::KIND_SIGNAL | records::KIND_RESPONSE => {
                self.trigger_ts.insert(index, ts);
            }
            records::KIND_OPENED => self.open(index, agent, ts, record),
            _ => self.apply_incident_record(index, agent, kind, ts, record),
        }
        if kind == "halt" {
            self.trigger_ts.insert(index, ts);
        }
    }

    fn contain_open(
        &mut self,
        agent: &str,
        category: Option<&str>,
        index: u64,
        ts: u64,
        record: &Value,
        kind: &str,
    ) {
        let by = str_of(record, "by").unwrap_or("pactum").to_owned();
        let reason = format!("{kind}: {}", str_of(record, "reason").unwrap_or(""));
        for case in self.cases.values_mut() {
            let covers = match (category, &case.opened.category) {
                (None, _) | (_, None) => true,
                (Some(restricted), Some(own)) => restricted == own,
            };
            if case.agent == agent && case.state == State::Open && covers {
                contain(case, index, ts, &by, &reason);
            }
        }
    }

    fn open(&mut self, index: u64, agent: &str, ts: u64, record: &Value) {
        let Some(opened) = records::parse::<Opened>(record, records::KIND_OPENED) else {
            return;
        };
        // Detection: the first record Pactum wrote about it, the earliest of its signals and
        // its trigger (a halt comes after the signal that caused it).
        let detected_ms = opened
            .trigger_index
            .into_iter()
            .chain(opened.signals.iter().map(|signal| signal.index))
            .filter_map(|index| self.trigger_ts.get(&index).copied())
            .min()
            .unwrap_or(ts);
        let mut case = Case {
            id: index,
            agent: agent.to_owned(),
            pattern: opened.pattern,
            severity: opened.severity,
            owner: opened.owner.clone(),
            opened_ms: ts,
            detected_ms,
            changes: Vec::new(),
            state: State::Open,
            stage: None,
            transitions: Vec::new(),
            contained: None,
            repaired: None,
            operating_model_changes: Vec::new(),
            recovery_approvals: Vec::new(),
            postmortem: None,
            closed_ms: None,
            records: vec![index],
            ignored: Vec::new(),
            opened,
        };
        if let Some(controls) = self.controls.get(agent) {
            let restriction = match &case.opened.category {
                Some(category) => controls.restricted.get(category).copied(),
                None => controls.restricted.values().next().copied(),
            };
            let holding = controls
                .halt
                .map(|halt| (halt, "halt"))
                .or(restriction.map(|restrict| (restrict, "restrict")));
            if let Some(((by_index, by_ts), kind)) = holding {
                let reason = format!("{kind} in force when the incident opened");
                contain(
                    &mut case,
                    by_index,
                    by_ts.max(detected_ms),
                    "pactum",
                    &reason,
                );
                case.records.push(by_index);
            }
        }
        if case.opened.trigger == Trigger::Halt && case.contained.is_none() {
            if let Some(trigger) = case.opened.trigger_index {
                let halted_ms = self.trigger_ts.get(&trigger).copied().unwrap_or(ts);
                contain(
                    &mut case,
                    trigger,
                    halted_ms.max(detected_ms),
                    "pactum",
                    "halt that opened it",
                );
            }
        }
        self.cases.insert(index, case);
    }

    fn apply_incident_record(
        &mut self,
        index: u64,
        agent: &str,
        kind: &str,
        ts: u64,
        record: &Value,
    ) {
        let Some(incident) = u64_of(record, "incident") else {
            return;
        };
        let Some(case) = self.cases.get_mut(&incident) else {
            return;
        };
        if case.agent != agent {
            case.ignored.push((
                index,
                format!("record of agent `{agent}` names this incident"),
            ));
            return;
        }
        let applied = match kind {
            records::KIND_UPDATED => records::parse::<Updated>(record, kind)
                .ok_or_else(|| "malformed update".to_owned())
                .and_then(|update| apply_update(case, index, ts, update)),
            records::KIND_STATE => records::parse::<StateChange>(record, kind)
                .ok_or_else(|| "malformed state change".to_owned())
                .and_then(|change| apply_state(case, index, ts, change)),
            records::KIND_OPERATING_MODEL_CHANGE => {
                records::parse::<OperatingModelChange>(record, kind)
                    .filter(|change| change.members().is_ok())
                    .map(|change| case.operating_model_changes.push((index, change)))
                    .ok_or_else(|| "malformed operating-model change".to_owned())
            }
            records::KIND_RECOVERY_APPROVAL => records::parse::<RecoveryApproval>(record, kind)
                .filter(|approval| approval.members().is_ok())
                .map(|approval| case.recovery_approvals.push((index, ts, approval)))
                .ok_or_else(|| "malformed recovery approval".to_owned()),
            records::KIND_POSTMORTEM => records::parse::<Postmortem>(record, kind)
                .filter(|postmortem| postmortem.check().is_ok())
                .map(|postmortem| case.postmortem = Some((index, postmortem)))
                .ok_or_else(|| "incomplete postmortem".to_owned()),
            records::KIND_NOTIFICATION => Ok(()),
            _ => return,
        };
        match applied {
            Ok(()) => case.records.push(index),
            Err(why) => case.ignored.push((index, why)),
        }
    }
}

fn contain(case: &mut Case, index: u64, ts: u64, by: &str, reason: &str) {
    case.contained = Some((index, ts));
    case.transitions.push(Transition {
        index,
        ts,
        from: case.state,
        to: State::Contained,
        by: by.to_owned(),
        reason: reason.to_owned(),
        stage: None,
    });
    case.state = State::Contained;
}

fn apply_update(case: &mut Case, index: u64, ts: u64, update: Updated) -> Result<(), String> {
    if update.members().is_err() {
        return Err("update without who, why or what".to_owned());
    }
    let mut push = |field: &'static str, from: Option<String>, to: String| {
        case.changes.push(Change {
            index,
            ts,
            by: update.by.clone(),
            field,
            from,
            to,
            reason: update.reason.clone(),
        });
    };
    if let Some(pattern) = update.pattern {
        push(
            "pattern",
            case.pattern.map(|p| p.as_str().to_owned()),
            pattern.as_str().to_owned(),
        );
        case.pattern = Some(pattern);
    }
    if let Some(severity) = update.severity {
        push(
            "severity",
            Some(case.severity.as_str().to_owned()),
            severity.as_str().to_owned(),
        );
        case.severity = severity;
    }
    if let Some(owner) = update.owner {
        push("owner", case.owner.clone(), owner.clone());
        case.owner = Some(owner);
    }
    Ok(())
}

fn apply_state(case: &mut Case, index: u64, ts: u64, change: StateChange) -> Result<(), String> {
    if change.members().is_err() {
        return Err("transition without who or why".to_owned());
    }
    if change.from != case.state {
        return Err(format!(
            "transition from {} but the incident is {}",
            change.from.as_str(),
            case.state.as_str()
        ));
    }
    let legal = match (case.state, change.to) {
        // The second, full-scope stage of a staged re-entry.
        (State::Recovering, State::Recovering) => {
            case.stage == Some(Stage::Restricted) && change.stage == Some(Stage::Full)
        }
        (State::Recovering, State::Closed) => case.postmortem.is_some(),
        (from, to) => next_of(from) == Some(to),
    };
    if !legal {
        return Err(format!(
            "illegal transition from {} to {}",
            case.state.as_str(),
            change.to.as_str()
        ));
    }
    match change.to {
        State::Contained => case.contained = Some((index, ts)),
        State::Repaired => case.repaired = Some((index, ts)),
        State::Recovering => case.stage = change.stage,
        State::Closed => case.closed_ms = Some(ts),
        State::Open => {}
    }
    case.transitions.push(Transition {
        index,
        ts,
        from: case.state,
        to: change.to,
        by: change.by,
        reason: change.reason,
        stage: change.stage,
    });
    case.state = change.to;
    Ok(())
}

/// Every incident in these records (log order), by id.
pub fn fold(records: &[(u64, Value)]) -> BTreeMap<u64, Case> {
    let mut folder = Folder::new();
    for (index, record) in records {
        folder.apply(*index, record);
    }
    folder.into_cases()
}
