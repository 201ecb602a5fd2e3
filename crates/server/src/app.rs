//! The application state: the evidence log, the registry, and per agent the active guard and
//! its state behind one lock.
//!
//! **Halt ordering.** Every decision takes its agent's runtime lock for the guard call, and a
//! halt sets the halt under the same lock before its request returns. So a decision that starts
//! after a halt returned sees the halt. Guard counters and sessions live in memory only (they
//! start empty after a restart); halts and restrictions are persisted in the registry and
//! reloaded on start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use guard::{Guard, Halt};
use ledger::record::Record;
use serde_json::{json, Value};
use store::Log;

use crate::auth::{Caller, Role};
use crate::observe::{record_event, Metrics, RecordEvent, EVENTS_BUFFERED_MAX};
use crate::problem::ApiError;
use crate::registry::{token_hash, ActiveRow, AgentRow, ControlsRow, Registry, RegistryError};
use crate::wire::now_ms;

/// How long a verified token is trusted from the in-memory cache before the registry is asked
/// again (so a token revoked offline stops working within this time).
pub const TOKEN_CACHE_SECS: u64 = 10;

/// Most rate-limit buckets kept (one per token and per oracle client address).
const BUCKETS_MAX: usize = 100_000;

/// Limits on what callers may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (a pact upload is the largest legitimate body).
    pub body_bytes_max: usize,
    /// Most requests in one `POST /v1/decide/batch`.
    pub batch_requests_max: usize,
    /// Largest canonical `args` of one decision, in bytes (it must fit in one log record).
    pub args_bytes_max: usize,
    /// Longest reason or outcome detail, in bytes.
    pub text_bytes_max: usize,
    /// Requests per second each token may make (a bucket of one second's worth); 0: no limit.
    pub token_requests_per_s: u32,
    /// Requests per second each client address may make to the public oracle; 0: no limit.
    pub oracle_requests_per_s: u32,
    /// Longest time a request may take to answer (the event stream's body is not bounded), in
    /// milliseconds.
    pub request_timeout_ms: u64,
    /// Largest uploaded trial suite (`POST /v1/suites`), in bytes.
    pub suite_bytes_max: usize,
    /// Most trials running at once; more are refused with 429 `too-many-trials`.
    pub trials_running_max: usize,
    /// How often the scheduler looks for due trials, in milliseconds (0: never).
    pub schedule_check_ms: u64,
    /// How often every agent's signals are evaluated and answered, in milliseconds (0: never;
    /// immediate signals are answered on each verdict regardless).
    pub signals_check_ms: u64,
    /// How often an obligation's suite is rerun for a `critical` pact, in milliseconds.
    pub trial_cadence_critical_ms: u64,
    /// ... for a `high` pact.
    pub trial_cadence_high_ms: u64,
    /// ... for a `medium` pact.
    pub trial_cadence_medium_ms: u64,
    /// ... for a `low` pact.
    pub trial_cadence_low_ms: u64,
}

/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes_max: pact::PACT_BYTES_MAX + 64 * 1024,
            batch_requests_max: 256,
            args_bytes_max: 48 * 1024,
            text_bytes_max: 4 * 1024,
            token_requests_per_s: 100_000,
            oracle_requests_per_s: 50,
            request_timeout_ms: 30_000,
            suite_bytes_max: 16 * 1024 * 1024,
            trials_running_max: 4,
            schedule_check_ms: 60_000,
            signals_check_ms: 60_000,
            trial_cadence_critical_ms: DAY_MS,
            trial_cadence_high_ms: 7 * DAY_MS,
            trial_cadence_medium_ms: 30 * DAY_MS,
            trial_cadence_low_ms: 90 * DAY_MS,
        }
    }
}

/// Everything `AppState::open` needs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The data directory: log, signing key, registry, admin token.
    pub data_dir: PathBuf,
    /// Caller limits.
    pub limits: Limits,
    /// Lets an admin move the server's clock forward (`POST /v1/clock`): for drills and
    /// end-to-end tests that simulate weeks. Never on in production.
    pub simulated_clock: bool,
    /// Webhooks for escalations and incidents.
    pub notify: crate::notify::NotifyConfig,
}

/// The guard side of one agent: protected by one lock, taken by decide and by halt.
pub struct Runtime {
    /// The active pact's guard, `None` until a version is activated.
    pub guard: Option<Arc<Guard>>,
    /// The active version and its activation record.
    pub active: Option<ActiveRow>,
    /// Index of the active version's `pact` record.
    pub pact_record_idx: u64,
    /// Counters, sessions, halt, restrictions.
    pub state: guard::State,
    /// Decisions made (including restored counts).
    pub n_decisions: u64,
    /// Of those, `deny` and `halted`.
    pub n_denials: u64,
}

/// One registered agent.
pub struct AgentSlot {
    /// Registry row (class and tier change).
    pub info: Mutex<AgentRow>,
    /// The guard and its state.
    pub runtime: Mutex<Runtime>,
}

struct CachedCaller {
    caller: Caller,
    checked_at: Instant,
}

/// How long the oracle reuses an agent's computed score, in milliseconds.
pub const ORACLE_SCORE_TTL_MS: u64 = 5_000;
/// How long `/metrics` reuses the program metrics, in milliseconds (they read the whole log;
/// scrapes come every few seconds).
pub const PROGRAM_METRICS_TTL_MS: u64 = 60_000;

/// A score as the oracle shows it: composite, interval, confidence, freshness and velocity, and
/// per dimension its value, samples, interval, age and the record indexes behind it.
pub fn score_json(score: &score::Score, now_ms: u64) -> Value {
    let dimensions: serde_json::Map<String, Value> = score
        .dimensions
        .iter()
        .map(|dimension| {
            (
                dimension.name.clone(),
                json!({
                    "value_bp": dimension.value_bp,
                    "n_samples": dimension.n_samples,
                    "interval_bp": dimension.interval_bp.map(|(low, high)| [low, high]),
                    "age_ms": dimension.age_ms,
                    "stale": dimension.stale,
                    "confidence": dimension.confidence.as_str(),
                    "weight": dimension.weight,
                    "record_indexes": dimension.record_indexes,
                }),
            )
        })
        .collect();
    let newest_age_ms = score
        .dimensions
        .iter()
        .filter_map(|dimension| dimension.age_ms)
        .min();
    let stale: Vec<&str> = score
        .dimensions
        .iter()
        .filter(|dimension| dimension.stale)
        .map(|dimension| dimension.name.as_str())
        .collect();
    json!({
        "points": score.points,
        "interval_points": score.interval_points.map(|(low, high)| [low, high]),
        "confidence": score.confidence.as_str(),
        "coverage_bp": score.coverage_bp,
        "freshness": { "newest_evidence_age_ms": newest_age_ms, "stale_dimensions": stale },
        "velocity": {
            "points_per_week": score.trend.points_per_week,
            "missing": score.trend.missing_history(),
            "swing": score.trend.swing,
        },
        "dimensions": dimensions,
        "computed_at_ms": now_ms,
    })
}

struct Inner {
    config: AppConfig,
    log: Log,
    registry: Mutex<Registry>,
    agents: RwLock<HashMap<String, Arc<AgentSlot>>>,
    tokens: RwLock<HashMap<String, CachedCaller>>,
    /// Tokens that live only as long as this process (an embedded gateway's), by hash; never
    /// stored in the registry.
    process_tokens: RwLock<HashMap<String, Caller>>,
    /// Serialises registry changes that also append records (register, upload, activate).
    admin_lock: tokio::sync::Mutex<()>,
    ready: AtomicBool,
    events: tokio::sync::broadcast::Sender<Arc<RecordEvent>>,
    metrics: Metrics,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Signals already answered, per agent.
    active_signals: crate::respond::Active,
    /// Added to the system clock; only ever non-zero with `simulated_clock`.
    clock_offset_ms: AtomicU64,
    /// Trials running on blocking threads.
    trials: crate::trials::Trials,
    /// The oracle's last score per agent, with when it was computed.
    oracle_scores: Mutex<HashMap<String, (Instant, Arc<Value>)>>,
    /// Held while an oracle score is computed: requests that miss the cache together wait for
    /// one computation instead of each reading the agent's whole history (a public route).
    oracle_score_computing: tokio::sync::Mutex<()>,
    /// The program metrics `/metrics` last showed, with when they were computed.
    program_metrics: Mutex<Option<(Instant, Arc<Value>)>>,
    /// Verdicts whose outcome is being recorded.
    outcome_claims: crate::outcomes::Claims,
}

/// A token bucket of one token id.
struct Bucket {
    available: f64,
    refilled_at: Instant,
}

/// Shared state of the server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Errors opening the state.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The evidence log.
    #[error("evidence log: {0}")]
    Store(#[from] store::StoreError),
    /// The registry.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A stored pact no longer checks.
    #[error("stored pact `{agent}` version {version} does not check: {reason}")]
    Pact {
        /// The agent.
        agent: String,
        /// The version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// Writing the admin token file.
    #[error("admin token file `{path}`: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What opening a data directory created.
pub struct Opened {
    /// The state.
    pub app: AppState,
    /// The admin token, when this open created it (print it once).
    pub new_admin_token: Option<String>,
}

/// The file holding the first admin token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is caught by the panic layer; the data under these locks
    // stays consistent between statements, so continuing is safe.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds a guard for a stored or uploaded pact source.
pub fn guard_from_source(source: &str) -> Result<Guard, String> {
    let checked = pact::check(source);
    let pact = checked.pact.ok_or_else(|| {
        checked
            .diagnostics
            .iter()
            .find(|diagnostic| diagnostic.severity == pact::Severity::Error)
            .map(|diagnostic| diagnostic.render("pact"))
            .unwrap_or_else(|| "invalid pact".to_string())
    })?;
    Guard::new(Arc::new(pact)).map_err(|err| err.to_string())
}

impl AppState {
    /// Opens (or creates) the data directory: log, key, registry; reloads agents, their active
    /// pacts, halts and restrictions; creates an admin token if there is no token at all.
    pub fn open(config: AppConfig) -> Result<Opened, OpenError> {
        let log = Log::open(&config.data_dir)?;
        let mut registry = Registry::open(&config.data_dir)?;
        let new_admin_token = if registry.tokens()?.is_empty() {
            let (secret, _) =
                registry.create_token("admin", Role::Admin.as_str(), None, now_ms())?;
            write_private(&config.data_dir.join(ADMIN_TOKEN_FILE), &secret)?;
            Some(secret)
        } else {
            None
        };
        let mut agents = HashMap::new();
        for row in registry.agents()? {
            let runtime = Runtime {
                guard: None,
                active: None,
                pact_record_idx: 0,
                state: guard::State::new(),
                n_decisions: 0,
                n_denials: 0,
            };
            agents.insert(
                row.id.clone(),
                Arc::new(AgentSlot {
                    info: Mutex::new(row),
                    runtime: Mutex::new(runtime),
                }),
            );
        }
        // Trials a previous process left running never got their `trial` record.
        registry.abandon_running_trials()?;
        let agent_ids: Vec<String> = agents.keys().cloned().collect();
        crate::outcomes::restore(&mut registry, &log, &agent_ids)?;
        let pacts = registry.pacts()?;
        for (agent, active) in registry.actives()? {
            let Some(slot) = agents.get(&agent) else {
                continue;
            };
            let Some(row) = pacts
                .iter()
                .find(|row| row.agent == agent && row.version == active.version)
            else {
                continue;
            };
            let guard = guard_from_source(&row.source).map_err(|reason| OpenError::Pact {
                agent: agent.clone(),
                version: active.version,
                reason,
            })?;
            let mut runtime = lock(&slot.runtime);
            runtime.guard = Some(Arc::new(guard));
            runtime.pact_record_idx = row.record_idx;
            runtime.active = Some(active);
        }
        for (agent, controls) in registry.controls()? {
            let Some(slot) = agents.get(&agent) else {
                continue;
            };
            let mut runtime = lock(&slot.runtime);
            if let Some((by, reason, at_ms)) = controls.halt {
                runtime.state.set_halt(Halt { by, reason, at_ms });
            }
            for category in &controls.restricted {
                runtime.state.restrict(category);
            }
        }
        for (agent, n_decisions, n_denials) in registry.stats()? {
            if let Some(slot) = agents.get(&agent) {
                let mut runtime = lock(&slot.runtime);
                runtime.n_decisions = n_decisions;
                runtime.n_denials = n_denials;
            }
        }
        let metrics = Metrics::default();
        // The observer holds only the histogram, never the app: no cycle keeps the log alive.
        let batch_records = Arc::clone(&metrics.log_batch_records);
        log.observe_batches(Arc::new(move |n_records| {
            batch_records.observe(n_records as u64);
        }));
        let app = AppState {
            inner: Arc::new(Inner {
                config,
                log,
                registry: Mutex::new(registry),
                agents: RwLock::new(agents),
                tokens: RwLock::new(HashMap::new()),
                process_tokens: RwLock::new(HashMap::new()),
                admin_lock: tokio::sync::Mutex::new(()),
                ready: AtomicBool::new(true),
                events: tokio::sync::broadcast::channel(EVENTS_BUFFERED_MAX).0,
                metrics,
                buckets: Mutex::new(HashMap::new()),
                active_signals: crate::respond::Active::default(),
                clock_offset_ms: AtomicU64::new(0),
                trials: crate::trials::Trials::default(),
                oracle_scores: Mutex::new(HashMap::new()),
                oracle_score_computing: tokio::sync::Mutex::new(()),
                program_metrics: Mutex::new(None),
                outcome_claims: crate::outcomes::Claims::default(),
            }),
        };
        // Signals answered before a restart stay answered (read through the agent index, by
        // kind: only the few records that say so are parsed).
        for agent in app.agent_ids() {
            let kinds = ["signal", "resume", incident::records::KIND_STATE];
            let records: Vec<(u64, Value)> = app
                .log()
                .agent_records(&agent, 0, &kinds, usize::MAX)?
                .into_iter()
                .filter_map(|(index, bytes)| {
                    serde_json::from_slice(&bytes)
                        .ok()
                        .map(|value| (index, value))
                })
                .collect();
            app.active_signals().restore(&agent, &records);
        }
        Ok(Opened {
            app,
            new_admin_token,
        })
    }

    /// The trials this process runs.
    pub fn trials(&self) -> &crate::trials::Trials {
        &self.inner.trials
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// The server's time: the system clock, moved forward by [`AppState::advance_clock`] when
    /// the clock is simulated. Every handler reads time here, never from the system directly.
    pub fn now_ms(&self) -> u64 {
        now_ms().saturating_add(self.inner.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// Signals already answered, per agent.
    pub fn active_signals(&self) -> &crate::respond::Active {
        &self.inner.active_signals
    }

    /// The program metrics as JSON, recomputed at most every [`PROGRAM_METRICS_TTL_MS`].
    pub async fn program_metrics_cached(&self) -> Result<Arc<Value>, ApiError> {
        let cached = self
            .inner
            .program_metrics
            .lock()
            .ok()
            .and_then(|cached| cached.clone());
        if let Some((at, value)) = cached {
            if at.elapsed() < Duration::from_millis(PROGRAM_METRICS_TTL_MS) {
                return Ok(value);
            }
        }
        let value = Arc::new(json!(crate::incidents::program_metrics(self).await?));
        if let Ok(mut cached) = self.inner.program_metrics.lock() {
            *cached = Some((Instant::now(), Arc::clone(&value)));
        }
        Ok(value)
    }

    /// The agent's trust score for the public oracle, computed from its records under its active
    /// pact (tier defaults and the pact's `score:` overrides) and reused for
    /// [`ORACLE_SCORE_TTL_MS`]: the route is public and the score reads every record of the agent.
    pub async fn oracle_score(&self, agent: &str) -> Result<Arc<Value>, ApiError> {
        let fresh = || {
            self.inner
                .oracle_scores
                .lock()
                .ok()
                .and_then(|scores| scores.get(agent).cloned())
                .filter(|(at, _)| at.elapsed() < Duration::from_millis(ORACLE_SCORE_TTL_MS))
                .map(|(_, value)| value)
        };
        if let Some(value) = fresh() {
            return Ok(value);
        }
        let _computing = self.inner.oracle_score_computing.lock().await;
        // Another request may have computed it while this one waited.
        if let Some(value) = fresh() {
            return Ok(value);
        }
        let config = {
            let slot = self.agent(agent)?;
            let runtime = lock_runtime(&slot);
            match &runtime.guard {
                Some(guard) => score::Config::for_pact(guard.pact().doc()),
                None => score::Config::for_tier(&lock_info(&slot).tier),
            }
        };
        let now = self.now_ms();
        let app = self.clone();
        let owned_agent = agent.to_owned();
        let value = tokio::task::spawn_blocking(move || {
            let records = crate::watch::enforced_records(app.agent_records(&owned_agent)?);
            Ok::<_, ApiError>(score_json(&score::compute(&records, &config, now), now))
        })
        .await
        .map_err(|err| ApiError::internal(format!("score computation failed: {err}")))??;
        let value = Arc::new(value);
        if let Ok(mut scores) = self.inner.oracle_scores.lock() {
            scores.insert(agent.to_owned(), (Instant::now(), Arc::clone(&value)));
        }
        Ok(value)
    }

    /// Where notifications go.
    pub fn notify_config(&self) -> &crate::notify::NotifyConfig {
        &self.inner.config.notify
    }

    /// Whether the clock may be moved.
    pub fn clock_is_simulated(&self) -> bool {
        self.inner.config.simulated_clock
    }

    /// Moves a simulated clock forward by `ms`; `None` when the clock is real. Returns the new time.
    pub fn advance_clock(&self, ms: u64) -> Option<u64> {
        if !self.inner.config.simulated_clock {
            return None;
        }
        self.inner.clock_offset_ms.fetch_add(ms, Ordering::Relaxed);
        Some(self.now_ms())
    }

    /// The evidence log.
    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    /// The registry, locked. Never take an agent's runtime lock while holding this.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner.registry)
    }

    /// Verdicts whose outcome is being recorded.
    pub(crate) fn outcome_claims(&self) -> &crate::outcomes::Claims {
        &self.inner.outcome_claims
    }

    /// Serialises admin changes.
    pub async fn admin_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.admin_lock.lock().await
    }

    /// Whether the server takes requests (false while shutting down).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Marks the server as shutting down (`/readyz` answers 503).
    pub fn set_not_ready(&self) {
        self.inner.ready.store(false, Ordering::SeqCst);
    }

    /// The agent, or 404 `unknown-agent`.
    pub fn agent(&self, id: &str) -> Result<Arc<AgentSlot>, ApiError> {
        self.inner
            .agents
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found("unknown-agent", format!("no agent `{id}` is registered"))
            })
    }

    /// Every agent, by id.
    pub fn agent_ids(&self) -> Vec<String> {
        let agents = self
            .inner
            .agents
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ids: Vec<String> = agents.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Adds a registered agent to memory.
    pub fn add_agent(&self, row: AgentRow) -> Arc<AgentSlot> {
        let slot = Arc::new(AgentSlot {
            info: Mutex::new(row.clone()),
            runtime: Mutex::new(Runtime {
                guard: None,
                active: None,
                pact_record_idx: 0,
                state: guard::State::new(),
                n_decisions: 0,
                n_denials: 0,
            }),
        });
        self.inner
            .agents
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(row.id, Arc::clone(&slot));
        slot
    }

    /// Mints a token that is valid only inside this process and only until it exits: for a
    /// program that embeds the server and calls its router (`pactum gateway --data`). Nothing
    /// is stored; records name it like any token (`name (tok_process_...)`).
    pub fn issue_process_token(&self, role: Role, agent: Option<&str>, name: &str) -> String {
        use rand::RngCore;
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let token = format!("pactum_process_{}", hex::encode(secret));
        let hash = token_hash(&token);
        let caller = Caller {
            token_id: format!("tok_process_{}", hash.get(..12).unwrap_or(&hash)),
            name: name.to_string(),
            role,
            agent: agent.map(str::to_string),
        };
        self.inner
            .process_tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(hash, caller);
        token
    }

    /// The caller for a bearer token, `None` if unknown or revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        let hash = token_hash(token);
        if let Some(caller) = self
            .inner
            .process_tokens
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&hash)
        {
            return Ok(Some(caller.clone()));
        }
        {
            let tokens = self
                .inner
                .tokens
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = tokens.get(&hash) {
                if cached.checked_at.elapsed() < Duration::from_secs(TOKEN_CACHE_SECS) {
                    return Ok(Some(cached.caller.clone()));
                }
            }
        }
        let row = self.registry().token_by_hash(&hash)?;
        let mut tokens = self
            .inner
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(row) = row else {
            tokens.remove(&hash);
            return Ok(None);
        };
        let Some(role) = Role::parse(&row.role) else {
            return Err(ApiError::internal(format!(
                "token {} has unknown role `{}`",
                row.id, row.role
            )));
        };
        let caller = Caller {
            token_id: row.id,
            name: row.name,
            role,
            agent: row.agent,
        };
        tokens.insert(
            hash,
            CachedCaller {
                caller: caller.clone(),
                checked_at: Instant::now(),
            },
        );
        Ok(Some(caller))
    }

    /// Forgets cached tokens (after a revocation through the API).
    pub fn forget_cached_tokens(&self) {
        self.inner
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    /// Every record about `agent`, oldest first, with its index. Blocking (it reads the log):
    /// call it from `spawn_blocking`. Records that do not parse are skipped: the log's own
    /// verification is where corruption is reported.
    pub fn agent_records(&self, agent: &str) -> Result<Vec<(u64, Value)>, ApiError> {
        let rows = self.inner.log.agent_records(agent, 0, &[], usize::MAX)?;
        Ok(rows
            .into_iter()
            .filter_map(|(index, bytes)| {
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .map(|value| (index, value))
            })
            .collect())
    }

    /// Appends records and waits until they are durable; returns their indexes. Then
    /// publishes them as events (built only when someone listens).
    pub async fn append(&self, records: Vec<Record>) -> Result<Vec<u64>, ApiError> {
        self.inner
            .metrics
            .append_records
            .observe(records.len() as u64);
        let listened = (self.inner.events.receiver_count() > 0).then(|| records.clone());
        let indexes = self
            .inner
            .log
            .append_async(records)
            .await
            .map_err(|_| ApiError::unavailable("the log writer dropped the reply"))?
            .map_err(ApiError::from)?;
        if let Some(records) = listened {
            for (index, record) in indexes.iter().zip(&records) {
                if let Some(event) = record_event(*index, record) {
                    let _ = self.inner.events.send(Arc::new(event));
                }
            }
        }
        Ok(indexes)
    }

    /// A new subscriber to the event stream.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<RecordEvent>> {
        self.inner.events.subscribe()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Takes one request from the token's bucket, or answers 429 `rate-limited`.
    pub fn check_rate(&self, token_id: &str) -> Result<(), ApiError> {
        let rate_per_s = self.limits().token_requests_per_s;
        self.take_from_bucket(&format!("token:{token_id}"), rate_per_s, || {
            format!("this token may make {rate_per_s} requests per second (token_requests_per_s)")
        })
    }

    /// Takes one oracle request from the client address's bucket, or answers 429
    /// `rate-limited`. The oracle is public, so its limit is per address, not per token.
    pub fn check_oracle_rate(&self, client: Option<std::net::IpAddr>) -> Result<(), ApiError> {
        let rate_per_s = self.limits().oracle_requests_per_s;
        let key = match client {
            Some(address) => format!("oracle:{address}"),
            None => "oracle:unknown".to_string(),
        };
        self.take_from_bucket(&key, rate_per_s, || {
            format!("each client address may ask the oracle {rate_per_s} times per second (oracle_requests_per_s)")
        })
    }

    /// A token bucket of one second's worth of requests per key.
    fn take_from_bucket(
        &self,
        key: &str,
        rate_per_s: u32,
        detail: impl FnOnce() -> String,
    ) -> Result<(), ApiError> {
        if rate_per_s == 0 {
            return Ok(());
        }
        let capacity = f64::from(rate_per_s);
        let now = Instant::now();
        let mut buckets = lock(&self.inner.buckets);
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            // Addresses are unbounded: forget the buckets that have refilled completely, which
            // loses nothing (a full bucket and a new one are the same).
            buckets.retain(|_, bucket| {
                bucket.available + now.duration_since(bucket.refilled_at).as_secs_f64() * capacity
                    < capacity
            });
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            available: capacity,
            refilled_at: now,
        });
        let elapsed_s = now.duration_since(bucket.refilled_at).as_secs_f64();
        bucket.available = (bucket.available + elapsed_s * capacity).min(capacity);
        bucket.refilled_at = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            return Ok(());
        }
        drop(buckets);
        self.inner
            .metrics
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            detail(),
        ))
    }

    /// Appends one record; returns its index once durable.
    pub async fn append_one(&self, record: Record) -> Result<u64, ApiError> {
        let indexes = self.append(vec![record]).await?;
        indexes
            .first()
            .copied()
            .ok_or_else(|| ApiError::internal("the log returned no index"))
    }

    /// Persists halt and restrictions of an agent from its runtime (called with the runtime
    /// lock held, so the persisted state matches what decisions see).
    pub fn persist_controls(&self, agent: &str, state: &guard::State) -> Result<(), ApiError> {
        let controls = ControlsRow {
            halt: state
                .halt()
                .map(|halt| (halt.by.clone(), halt.reason.clone(), halt.at_ms)),
            restricted: state.restricted().map(str::to_string).collect(),
        };
        self.registry().set_controls(agent, &controls)?;
        Ok(())
    }

    /// Saves decision counts; called at shutdown.
    pub fn save_stats(&self) -> Result<(), RegistryError> {
        for id in self.agent_ids() {
            let Ok(slot) = self.agent(&id) else { continue };
            let (n_decisions, n_denials) = {
                let runtime = lock(&slot.runtime);
                (runtime.n_decisions, runtime.n_denials)
            };
            self.registry().set_stats(&id, n_decisions, n_denials)?;
        }
        Ok(())
    }

    /// Waits until every acknowledged append is durable: appends are acknowledged only after
    /// their batch commits, so this only has to wait for in-flight requests (axum's graceful
    /// shutdown does) and then save the counts.
    pub fn shutdown(&self) -> Result<(), RegistryError> {
        self.set_not_ready();
        // With no outcome in flight every outcome record is indexed: the next open reads the
        // log from here on.
        if self.outcome_claims().is_empty() {
            if let Ok(size) = self.log().size() {
                self.registry().restore_outcomes(&[], size)?;
            }
        }
        self.save_stats()
    }
}

/// Locks an agent's runtime.
pub fn lock_runtime(slot: &AgentSlot) -> MutexGuard<'_, Runtime> {
    lock(&slot.runtime)
}

/// Locks an agent's registry row.
pub fn lock_info(slot: &AgentSlot) -> MutexGuard<'_, AgentRow> {
    lock(&slot.info)
}

/// A log record of `kind` about `agent` at `ts_ms` with extra members.
pub fn make_record(
    kind: &str,
    agent: &str,
    ts_ms: u64,
    members: Value,
) -> Result<Record, ApiError> {
    let mut value = json!({ "kind": kind, "agent": agent, "ts": ts_ms });
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), members) {
        for (name, member) in extra {
            object.insert(name, member);
        }
    }
    Record::from_value(&value).map_err(|err| {
        ApiError::unprocessable(
            "unrecordable",
            format!("the record cannot be stored: {err}"),
        )
    })
}

fn write_private(path: &Path, text: &str) -> Result<(), OpenError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let to_error = |source| OpenError::TokenFile {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(to_error)?;
    file.write_all(format!("{text}\n").as_bytes())
        .map_err(to_error)?;
    file.sync_all().map_err(to_error)
}
