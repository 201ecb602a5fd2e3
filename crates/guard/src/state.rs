//! The guard's state for one agent: halt and restrictions, windowed counters, and the cache of
//! verified tokens. Plain data, mutated only by [`crate::decide`] and the operator calls here;
//! time always comes in as `now_ms`.

use std::collections::{BTreeSet, HashMap, VecDeque};

use pact::{CounterKind, Pact};
use sha2::{Digest, Sha256};

use crate::authority::{self, VerifiedAuthority};
use crate::Request;

/// Most sessions whose counters are kept; the longest idle are dropped beyond this.
pub const SESSIONS_MAX: usize = 100_000;
/// Most verified tokens cached.
pub const TOKEN_CACHE_MAX: usize = 10_000;
/// Most events one windowed counter keeps; older events merge into one when exceeded.
pub const WINDOW_EVENTS_MAX: usize = 1_000_000;

/// Why and by whom an agent was halted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    pub by: String,
    pub reason: String,
    pub at_ms: u64,
}

/// A sliding-window sum: events in `(now - window, now]`.
#[derive(Debug, Clone, Default)]
struct Window {
    events: VecDeque<(u64, i64)>,
    sum: i64,
}

impl Window {
    fn value_at(&mut self, window_ms: Option<u64>, now_ms: u64) -> i64 {
        if let Some(window_ms) = window_ms {
            while let Some(&(at_ms, amount)) = self.events.front() {
                if at_ms.saturating_add(window_ms) > now_ms {
                    break;
                }
                self.events.pop_front();
                self.sum = self.sum.saturating_sub(amount);
            }
        }
        self.sum
    }

    fn add(&mut self, window_ms: Option<u64>, now_ms: u64, amount: i64) {
        self.sum = self.sum.saturating_add(amount);
        if window_ms.is_none() {
            return;
        }
        match self.events.back_mut() {
            Some((at_ms, total)) if *at_ms == now_ms => *total = total.saturating_add(amount),
            _ => {
                // Keep events ordered even if `now` steps back (a replay out of order).
                let idx = self.events.partition_point(|(at_ms, _)| *at_ms <= now_ms);
                self.events.insert(idx, (now_ms, amount));
            }
        }
        if self.events.len() > WINDOW_EVENTS_MAX {
            // Merge the two oldest events at the newer time: the sum stays exact, the window
            // errs on the side of counting longer (fail closed).
            if let (Some((_, first)), Some((_, second))) =
                (self.events.pop_front(), self.events.front_mut())
            {
                *second = second.saturating_add(first);
            }
        }
    }
}

/// Why a session is tainted: it passed content flagged as injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub reason: String,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct SessionState {
    counters: HashMap<String, Window>,
    taint: Option<Taint>,
    last_seen_ms: u64,
}

/// Everything the guard remembers about one agent.
#[derive(Debug, Clone, Default)]
pub struct State {
    halt: Option<Halt>,
    restricted: BTreeSet<String>,
    counters: HashMap<String, Window>,
    sessions: HashMap<String, SessionState>,
    tokens: HashMap<[u8; 32], VerifiedAuthority>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    pub fn halt(&self) -> Option<&Halt> {
        self.halt.as_ref()
    }

    /// Halts the agent: every later decision is `halted`.
    pub fn set_halt(&mut self, halt: Halt) {
        self.halt = Some(halt);
    }

    pub fn resume(&mut self) {
        self.halt = None;
    }

    pub fn restrict(&mut self, category: &str) {
        self.restricted.insert(category.to_string());
    }

    pub fn unrestrict(&mut self, category: &str) {
        self.restricted.remove(category);
    }

    pub fn is_restricted(&self, category: &str) -> bool {
        self.restricted.contains(category)
    }

    pub fn restricted(&self) -> impl Iterator<Item = &str> {
        self.restricted.iter().map(String::as_str)
    }

    /// The counters' values including the call being decided, in the pact's counter order.
    pub(crate) fn projected_counters(
        &mut self,
        pact: &Pact,
        action_idx: usize,
        request: &Request,
        _typed: &crate::args::TypedArgs,
        now_ms: u64,
    ) -> Vec<i64> {
        let mut values = Vec::with_capacity(pact.counters().len());
        for counter in pact.counters() {
            let window = if counter.per_session {
                match self.sessions.get_mut(&request.session) {
                    Some(session) => session.counters.get_mut(&counter.name),
                    None => None,
                }
            } else {
                self.counters.get_mut(&counter.name)
            };
            let current = window.map_or(0, |window| window.value_at(counter.window_ms, now_ms));
            let this_call = if counter.action_idxs.contains(&action_idx) {
                amount(&counter.kind, request)
            } else {
                0
            };
            values.push(current.saturating_add(this_call));
        }
        values
    }

    /// Adds an allowed call to the counters it feeds.
    pub(crate) fn record_allowed(
        &mut self,
        pact: &Pact,
        action_idx: usize,
        request: &Request,
        now_ms: u64,
    ) {
        let Some(action) = pact.actions().get(action_idx) else {
            return;
        };
        let mut touched_session = false;
        for counter_idx in &action.counter_idxs {
            let Some(counter) = pact.counters().get(*counter_idx) else {
                continue;
            };
            let amount = amount(&counter.kind, request);
            let window = if counter.per_session {
                touched_session = true;
                let session = self.sessions.entry(request.session.clone()).or_default();
                session.last_seen_ms = now_ms;
                session.counters.entry(counter.name.clone()).or_default()
            } else {
                self.counters.entry(counter.name.clone()).or_default()
            };
            window.value_at(counter.window_ms, now_ms);
            window.add(counter.window_ms, now_ms, amount);
        }
        if touched_session && self.sessions.len() > SESSIONS_MAX {
            self.evict_idle_sessions();
        }
    }

    fn evict_idle_sessions(&mut self) {
        let mut last_seen: Vec<u64> = self
            .sessions
            .values()
            .map(|session| session.last_seen_ms)
            .collect();
        last_seen.sort_unstable();
        // Drop the idlest tenth at once so eviction stays rare.
        let cutoff = last_seen.get(SESSIONS_MAX / 10).copied().unwrap_or(0);
        self.sessions
            .retain(|_, session| session.last_seen_ms > cutoff);
    }

    /// Marks a session as having passed flagged content; the first reason is kept.
    pub fn taint_session(&mut self, session: &str, reason: String, now_ms: u64) {
        let state = self.sessions.entry(session.to_string()).or_default();
        state.last_seen_ms = state.last_seen_ms.max(now_ms);
        if state.taint.is_none() {
            state.taint = Some(Taint {
                reason,
                at_ms: now_ms,
            });
        }
        if self.sessions.len() > SESSIONS_MAX {
            self.evict_idle_sessions();
        }
    }

    /// The session's taint, if it passed flagged content.
    pub fn session_taint(&self, session: &str) -> Option<&Taint> {
        self.sessions
            .get(session)
            .and_then(|state| state.taint.as_ref())
    }

    /// Verifies a token, from the cache when it was verified before and is still valid.
    pub(crate) fn verify_token(
        &mut self,
        pact: &Pact,
        token: &str,
        now_ms: u64,
    ) -> Result<VerifiedAuthority, String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(cached) = self.tokens.get(&digest) {
            if cached.valid_at(now_ms) {
                return Ok(cached.clone());
            }
            self.tokens.remove(&digest);
        }
        let verified = authority::verify(pact, token, now_ms)?;
        if self.tokens.len() >= TOKEN_CACHE_MAX {
            self.tokens.retain(|_, cached| cached.valid_at(now_ms));
            if self.tokens.len() >= TOKEN_CACHE_MAX {
                self.tokens.clear();
            }
        }
        self.tokens.insert(digest, verified.clone());
        Ok(verified)
    }

    /// Forgets cached tokens, counters and sessions: for a new pact version whose keys or
    /// counters changed.
    pub fn reset_pact_state(&mut self) {
        self.tokens.clear();
    }
}

fn amount(kind: &CounterKind, request: &Request) -> i64 {
    match kind {
        CounterKind::Calls => 1,
        CounterKind::Sum { arg } => request
            .args
            .get(arg)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
    }
}
