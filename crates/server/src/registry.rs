//! The registry: agents, pact versions, the active version, API tokens (SHA-256 hashes only),
//! halts and restrictions, in `registry.sqlite` next to the evidence log.
//!
//! The registry is the server's current view; the evidence log is the history. Every change
//! an operator makes here is also appended to the log by the caller. Halts and restrictions
//! are written with `synchronous=FULL` before the halt request returns, so they survive a
//! crash and are reloaded on start.
//!
//! The `outcomes` table is an index of the log (which verdict has its outcome in which
//! record), written without a sync of its own: a row lost to a crash or a power cut is rebuilt
//! from the log on open, from the `outcomes_through` mark its rows carry (see
//! [`Registry::insert_outcome`]).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

/// File name of the registry database inside the data directory.
pub const REGISTRY_FILE: &str = "registry.sqlite";
/// Prefix of every API token, so leaked tokens are easy to scan for.
pub const TOKEN_PREFIX: &str = "pct_";

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed.
    #[error("registry sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading random bytes failed.
    #[error("reading /dev/urandom: {0}")]
    Random(std::io::Error),
    /// Stored data does not parse.
    #[error("corrupt registry: {0}")]
    Corrupt(String),
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    /// Agent id (`owner/name`).
    pub id: String,
    /// Who answers for it.
    pub owner: Option<String>,
    /// Its class (`customer-support`, ...).
    pub class: Option<String>,
    /// Risk tier: `low`, `medium`, `high`, `critical`.
    pub tier: String,
    /// When it was registered, unix ms.
    pub created_ms: u64,
}

/// One uploaded pact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PactRow {
    /// The agent.
    pub agent: String,
    /// The pact's own `version`.
    pub version: u64,
    /// `sha256:<hex>` of its canonical form.
    pub digest: String,
    /// The source as uploaded.
    pub source: String,
    /// When, unix ms.
    pub uploaded_ms: u64,
    /// Index of its `pact` record in the evidence log.
    pub record_idx: u64,
}

/// The active pact version of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRow {
    /// Active version.
    pub version: u64,
    /// Index of the `pact_activated` record.
    pub record_idx: u64,
}

/// An API token as stored (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Public id (`tok_...`), used to list and revoke.
    pub id: String,
    /// A label.
    pub name: String,
    /// `admin`, `operator`, `agent` or `auditor`.
    pub role: String,
    /// For `agent` tokens, the one agent they may act as.
    pub agent: Option<String>,
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// When created, unix ms.
    pub created_ms: u64,
    /// When revoked, unix ms.
    pub revoked_ms: Option<u64>,
}

/// Halt and restrictions of one agent, as persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlsRow {
    /// `(by, reason, at_ms)` when halted.
    pub halt: Option<(String, String, u64)>,
    /// Restricted action categories.
    pub restricted: Vec<String>,
}

/// The registry database.
pub struct Registry {
    conn: Connection,
}

/// SHA-256 of a token, lowercase hex: what is stored and looked up.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(n_bytes: usize) -> Result<String, RegistryError> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n_bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .map_err(RegistryError::Random)?;
    Ok(hex::encode(bytes))
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Registry {
    /// Opens (or creates) the registry in `dir`.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        Self::open_file(&dir.join(REGISTRY_FILE))
    }

    /// Opens (or creates) the registry at `path`.
    pub fn open_file(path: &Path) -> Result<Self, RegistryError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS agents (
                id TEXT PRIMARY KEY, owner TEXT, class TEXT, tier TEXT NOT NULL,
                created_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS pacts (
                agent TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL,
                source TEXT NOT NULL, uploaded_ms INTEGER NOT NULL, record_idx INTEGER NOT NULL,
                PRIMARY KEY (agent, version));
             CREATE TABLE IF NOT EXISTS active (
                agent TEXT PRIMARY KEY, version INTEGER NOT NULL, record_idx INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, agent TEXT,
                hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
             CREATE TABLE IF NOT EXISTS controls (
                agent TEXT PRIMARY KEY, halt_by TEXT, halt_reason TEXT, halt_ms INTEGER,
                restricted TEXT NOT NULL DEFAULT '[]');
             CREATE TABLE IF NOT EXISTS approvals (
                verdict_idx INTEGER PRIMARY KEY, agent TEXT NOT NULL, action TEXT NOT NULL,
                session TEXT NOT NULL, created_ms INTEGER NOT NULL, status TEXT NOT NULL,
                decided_by TEXT, reason TEXT, decided_ms INTEGER, record_idx INTEGER);
             CREATE TABLE IF NOT EXISTS stats (
                agent TEXT PRIMARY KEY, n_decisions INTEGER NOT NULL, n_denials INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS suites (
                digest TEXT PRIMARY KEY, id TEXT NOT NULL, version INTEGER NOT NULL,
                format TEXT NOT NULL, source TEXT NOT NULL, n_cases INTEGER NOT NULL,
                uploaded_ms INTEGER NOT NULL, record_idx INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS trial_targets (
                agent TEXT PRIMARY KEY, target TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS outcomes (
                verdict_idx INTEGER PRIMARY KEY, record_idx INTEGER);
             CREATE TABLE IF NOT EXISTS marks (
                name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS tool_pins (
                agent TEXT NOT NULL, upstream TEXT NOT NULL, name TEXT NOT NULL,
                digest TEXT NOT NULL, definition TEXT NOT NULL, status TEXT NOT NULL,
                pending_digest TEXT, first_seen_ms INTEGER NOT NULL, record_idx INTEGER NOT NULL,
                PRIMARY KEY (agent, upstream, name));
             CREATE TABLE IF NOT EXISTS tool_versions (
                agent TEXT NOT NULL, upstream TEXT NOT NULL, name TEXT NOT NULL,
                digest TEXT NOT NULL, definition TEXT NOT NULL, findings TEXT NOT NULL,
                first_seen_ms INTEGER NOT NULL, record_idx INTEGER NOT NULL,
                PRIMARY KEY (agent, upstream, name, digest));
             CREATE TABLE IF NOT EXISTS trials (
                start_idx INTEGER PRIMARY KEY, agent TEXT NOT NULL, suite_id TEXT NOT NULL,
                suite_digest TEXT NOT NULL, obligation TEXT, scheduled INTEGER NOT NULL,
                started_ms INTEGER NOT NULL, status TEXT NOT NULL, finished_ms INTEGER,
                trial_idx INTEGER, summary TEXT);",
        )?;
        Ok(Self { conn })
    }

    /// Inserts an agent; `false` if the id is taken.
    pub fn insert_agent(&self, agent: &AgentRow) -> Result<bool, RegistryError> {
        let n_rows = self.conn.execute(
            "INSERT OR IGNORE INTO agents (id, owner, class, tier, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![agent.id, agent.owner, agent.class, agent.tier, to_i64(agent.created_ms)],
        )?;
        Ok(n_rows == 1)
    }

    /// Updates class and tier of an agent.
    pub fn update_agent(&self, agent: &AgentRow) -> Result<(), RegistryError> {
        self.conn.execute(
            "UPDATE agents SET class = ?2, tier = ?3 WHERE id = ?1",
            params![agent.id, agent.class, agent.tier],
        )?;
        Ok(())
    }

    /// Every agent, by id.
    pub fn agents(&self) -> Result<Vec<AgentRow>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT id, owner, class, tier, created_ms FROM agents ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok(AgentRow {
                id: row.get(0)?,
                owner: row.get(1)?,
                class: row.get(2)?,
                tier: row.get(3)?,
                created_ms: to_u64(row.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a pact version; `false` if this agent already has this version.
    pub fn insert_pact(&self, pact: &PactRow) -> Result<bool, RegistryError> {
        let n_rows = self.conn.execute(
            "INSERT OR IGNORE INTO pacts (agent, version, digest, source, uploaded_ms, record_idx)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                pact.agent,
                to_i64(pact.version),
                pact.digest,
                pact.source,
                to_i64(pact.uploaded_ms),
                to_i64(pact.record_idx)
            ],
        )?;
        Ok(n_rows == 1)
    }

    /// Every pact version of every agent, by agent and version.
    pub fn pacts(&self) -> Result<Vec<PactRow>, RegistryError> {
        let mut statement = self.conn.prepare(
            "SELECT agent, version, digest, source, uploaded_ms, record_idx FROM pacts ORDER BY agent, version",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(PactRow {
                agent: row.get(0)?,
                version: to_u64(row.get(1)?),
                digest: row.get(2)?,
                source: row.get(3)?,
                uploaded_ms: to_u64(row.get(4)?),
                record_idx: to_u64(row.get(5)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets the active version of `agent`.
    pub fn set_active(&self, agent: &str, active: &ActiveRow) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT INTO active (agent, version, record_idx) VALUES (?1, ?2, ?3)
             ON CONFLICT(agent) DO UPDATE SET version = ?2, record_idx = ?3",
            params![agent, to_i64(active.version), to_i64(active.record_idx)],
        )?;
        Ok(())
    }

    /// The active version of every agent that has one.
    pub fn actives(&self) -> Result<Vec<(String, ActiveRow)>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT agent, version, record_idx FROM active")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get(0)?,
                ActiveRow {
                    version: to_u64(row.get(1)?),
                    record_idx: to_u64(row.get(2)?),
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates a token and returns its secret (shown once) with its row.
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        agent: Option<&str>,
        now_ms: u64,
    ) -> Result<(String, TokenRow), RegistryError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
        let row = TokenRow {
            id: format!("tok_{}", random_hex(6)?),
            name: name.to_string(),
            role: role.to_string(),
            agent: agent.map(str::to_string),
            hash: token_hash(&secret),
            created_ms: now_ms,
            revoked_ms: None,
        };
        self.conn.execute(
            "INSERT INTO tokens (id, name, role, agent, hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![row.id, row.name, row.role, row.agent, row.hash, to_i64(now_ms)],
        )?;
        Ok((secret, row))
    }

    /// Every token, newest last.
    pub fn tokens(&self) -> Result<Vec<TokenRow>, RegistryError> {
        let mut statement = self.conn.prepare(
            "SELECT id, name, role, agent, hash, created_ms, revoked_ms FROM tokens ORDER BY created_ms, id",
        )?;
        let rows = statement.query_map([], token_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The live (not revoked) token with this hash.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, role, agent, hash, created_ms, revoked_ms FROM tokens
                 WHERE hash = ?1 AND revoked_ms IS NULL",
                params![hash],
                token_row,
            )
            .optional()?)
    }

    /// Revokes a token; `false` if no live token has this id.
    pub fn revoke_token(&self, id: &str, now_ms: u64) -> Result<bool, RegistryError> {
        let n_rows = self.conn.execute(
            "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
            params![id, to_i64(now_ms)],
        )?;
        Ok(n_rows == 1)
    }

    /// Persists the halt and restrictions of `agent`.
    pub fn set_controls(&self, agent: &str, controls: &ControlsRow) -> Result<(), RegistryError> {
        let restricted = serde_json::to_string(&controls.restricted)
            .map_err(|err| RegistryError::Corrupt(err.to_string()))?;
        let (by, reason, at_ms) = match &controls.halt {
            Some((by, reason, at_ms)) => (
                Some(by.as_str()),
                Some(reason.as_str()),
                Some(to_i64(*at_ms)),
            ),
            None => (None, None, None),
        };
        self.conn.execute(
            "INSERT INTO controls (agent, halt_by, halt_reason, halt_ms, restricted) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(agent) DO UPDATE SET halt_by = ?2, halt_reason = ?3, halt_ms = ?4, restricted = ?5",
            params![agent, by, reason, at_ms, restricted],
        )?;
        Ok(())
    }

    /// The persisted halts and restrictions, by agent.
    pub fn controls(&self) -> Result<Vec<(String, ControlsRow)>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT agent, halt_by, halt_reason, halt_ms, restricted FROM controls")?;
        let rows = statement.query_map([], |row| {
            let agent: String = row.get(0)?;
            let by: Option<String> = row.get(1)?;
            let reason: Option<String> = row.get(2)?;
            let at_ms: Option<i64> = row.get(3)?;
            let restricted: String = row.get(4)?;
            Ok((agent, by, reason, at_ms, restricted))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (agent, by, reason, at_ms, restricted) = row?;
            let restricted: Vec<String> = serde_json::from_str(&restricted).map_err(|err| {
                RegistryError::Corrupt(format!("restrictions of `{agent}`: {err}"))
            })?;
            let halt = match (by, reason, at_ms) {
                (Some(by), Some(reason), Some(at_ms)) => Some((by, reason, to_u64(at_ms))),
                _ => None,
            };
            out.push((agent, ControlsRow { halt, restricted }));
        }
        Ok(out)
    }

    /// Saves decision and denial counts (written at shutdown, read at start).
    pub fn set_stats(
        &self,
        agent: &str,
        n_decisions: u64,
        n_denials: u64,
    ) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT INTO stats (agent, n_decisions, n_denials) VALUES (?1, ?2, ?3)
             ON CONFLICT(agent) DO UPDATE SET n_decisions = ?2, n_denials = ?3",
            params![agent, to_i64(n_decisions), to_i64(n_denials)],
        )?;
        Ok(())
    }

    /// Saved counts by agent.
    pub fn stats(&self) -> Result<Vec<(String, u64, u64)>, RegistryError> {
        let mut statement = self
            .conn
            .prepare("SELECT agent, n_decisions, n_denials FROM stats")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get(0)?, to_u64(row.get(1)?), to_u64(row.get(2)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A call waiting for (or given) a person's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// Index of the `review` verdict record.
    pub verdict_idx: u64,
    /// The agent.
    pub agent: String,
    /// The action it wants to call.
    pub action: String,
    /// Its session.
    pub session: String,
    /// When the verdict was given, unix ms.
    pub created_ms: u64,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When decided, unix ms.
    pub decided_ms: Option<u64>,
    /// Index of the `approval` record.
    pub record_idx: Option<u64>,
}

const APPROVAL_COLUMNS: &str =
    "verdict_idx, agent, action, session, created_ms, status, decided_by, reason, decided_ms, record_idx";

fn approval_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    Ok(ApprovalRow {
        verdict_idx: to_u64(row.get(0)?),
        agent: row.get(1)?,
        action: row.get(2)?,
        session: row.get(3)?,
        created_ms: to_u64(row.get(4)?),
        status: row.get(5)?,
        decided_by: row.get(6)?,
        reason: row.get(7)?,
        decided_ms: row.get::<_, Option<i64>>(8)?.map(to_u64),
        record_idx: row.get::<_, Option<i64>>(9)?.map(to_u64),
    })
}

impl Registry {
    /// Records a `review` verdict as a pending approval.
    pub fn insert_approval(&self, approval: &ApprovalRow) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO approvals (verdict_idx, agent, action, session, created_ms, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![
                to_i64(approval.verdict_idx),
                approval.agent,
                approval.action,
                approval.session,
                to_i64(approval.created_ms)
            ],
        )?;
        Ok(())
    }

    /// Approvals, oldest first, optionally of one agent and one status; at most `n_max`.
    pub fn approvals(
        &self,
        agent: Option<&str>,
        status: Option<&str>,
        n_max: usize,
    ) -> Result<Vec<ApprovalRow>, RegistryError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals
             WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY verdict_idx LIMIT ?3"
        ))?;
        let rows =
            statement.query_map(params![agent, status, to_i64(n_max as u64)], approval_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One approval by its verdict's index.
    pub fn approval(&self, verdict_idx: u64) -> Result<Option<ApprovalRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE verdict_idx = ?1"),
                params![to_i64(verdict_idx)],
                approval_row,
            )
            .optional()?)
    }

    /// Settles a pending approval; `false` if it was not pending.
    pub fn settle_approval(&self, approval: &ApprovalRow) -> Result<bool, RegistryError> {
        let n_rows = self.conn.execute(
            "UPDATE approvals SET status = ?2, decided_by = ?3, reason = ?4, decided_ms = ?5, record_idx = ?6
             WHERE verdict_idx = ?1 AND status = 'pending'",
            params![
                to_i64(approval.verdict_idx),
                approval.status,
                approval.decided_by,
                approval.reason,
                approval.decided_ms.map(to_i64),
                approval.record_idx.map(to_i64)
            ],
        )?;
        Ok(n_rows == 1)
    }
}

/// An uploaded trial suite, content-addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRow {
    /// `sha256:<hex>` of its canonical form.
    pub digest: String,
    /// The suite's own id.
    pub id: String,
    /// The suite's own version.
    pub version: u64,
    /// `yaml` (also JSON) or `jsonl`.
    pub format: String,
    /// The text as uploaded.
    pub source: String,
    /// Cases in it.
    pub n_cases: u64,
    /// When, unix ms.
    pub uploaded_ms: u64,
    /// Index of its `suite` record.
    pub record_idx: u64,
}

/// One trial started by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialRow {
    /// Index of its `trial_start` record: the trial's id.
    pub start_idx: u64,
    /// The agent.
    pub agent: String,
    /// The suite's id.
    pub suite_id: String,
    /// The suite's digest.
    pub suite_digest: String,
    /// The obligation it measures, if any.
    pub obligation: Option<String>,
    /// Started by the scheduler.
    pub scheduled: bool,
    /// When started, unix ms (the `trial_start` record's `ts`).
    pub started_ms: u64,
    /// `running`, `complete`, `incomplete`, `failed` or `abandoned` (the server stopped
    /// without recording its end).
    pub status: String,
    /// When it ended, unix ms.
    pub finished_ms: Option<u64>,
    /// Index of its `trial` record.
    pub trial_idx: Option<u64>,
    /// The `trial` record (or `{"error": ...}` when it failed), JSON text.
    pub summary: Option<String>,
}

const SUITE_COLUMNS: &str = "digest, id, version, format, source, n_cases, uploaded_ms, record_idx";
const TRIAL_COLUMNS: &str = "start_idx, agent, suite_id, suite_digest, obligation, scheduled, started_ms, status, finished_ms, trial_idx, summary";

fn suite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SuiteRow> {
    Ok(SuiteRow {
        digest: row.get(0)?,
        id: row.get(1)?,
        version: to_u64(row.get(2)?),
        format: row.get(3)?,
        source: row.get(4)?,
        n_cases: to_u64(row.get(5)?),
        uploaded_ms: to_u64(row.get(6)?),
        record_idx: to_u64(row.get(7)?),
    })
}

fn trial_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TrialRow> {
    Ok(TrialRow {
        start_idx: to_u64(row.get(0)?),
        agent: row.get(1)?,
        suite_id: row.get(2)?,
        suite_digest: row.get(3)?,
        obligation: row.get(4)?,
        scheduled: row.get::<_, i64>(5)? != 0,
        started_ms: to_u64(row.get(6)?),
        status: row.get(7)?,
        finished_ms: row.get::<_, Option<i64>>(8)?.map(to_u64),
        trial_idx: row.get::<_, Option<i64>>(9)?.map(to_u64),
        summary: row.get(10)?,
    })
}

impl Registry {
    /// Stores a suite; `false` if this digest is already stored.
    pub fn insert_suite(&self, suite: &SuiteRow) -> Result<bool, RegistryError> {
        let n_rows = self.conn.execute(
            &format!("INSERT OR IGNORE INTO suites ({SUITE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                suite.digest,
                suite.id,
                to_i64(suite.version),
                suite.format,
                suite.source,
                to_i64(suite.n_cases),
                to_i64(suite.uploaded_ms),
                to_i64(suite.record_idx)
            ],
        )?;
        Ok(n_rows == 1)
    }

    /// Every suite (without its source), by id and version.
    pub fn suites(&self) -> Result<Vec<SuiteRow>, RegistryError> {
        let mut statement = self.conn.prepare(
            "SELECT digest, id, version, format, '', n_cases, uploaded_ms, record_idx FROM suites ORDER BY id, version",
        )?;
        let rows = statement.query_map([], suite_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A suite by digest (`sha256:...`), or the highest version of a suite id.
    pub fn suite(&self, reference: &str) -> Result<Option<SuiteRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {SUITE_COLUMNS} FROM suites WHERE digest = ?1 OR id = ?1
                     ORDER BY digest = ?1 DESC, version DESC, uploaded_ms DESC LIMIT 1"
                ),
                params![reference],
                suite_row,
            )
            .optional()?)
    }

    /// Sets (or with `None` clears) an agent's trial target.
    pub fn set_trial_target(&self, agent: &str, target: Option<&str>) -> Result<(), RegistryError> {
        match target {
            Some(target) => self.conn.execute(
                "INSERT INTO trial_targets (agent, target) VALUES (?1, ?2)
                 ON CONFLICT(agent) DO UPDATE SET target = ?2",
                params![agent, target],
            )?,
            None => self
                .conn
                .execute("DELETE FROM trial_targets WHERE agent = ?1", params![agent])?,
        };
        Ok(())
    }

    /// An agent's trial target.
    pub fn trial_target(&self, agent: &str) -> Result<Option<String>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT target FROM trial_targets WHERE agent = ?1",
                params![agent],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Records a trial as started.
    pub fn insert_trial(&self, trial: &TrialRow) -> Result<(), RegistryError> {
        self.conn.execute(
            &format!("INSERT OR REPLACE INTO trials ({TRIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                to_i64(trial.start_idx),
                trial.agent,
                trial.suite_id,
                trial.suite_digest,
                trial.obligation,
                i64::from(trial.scheduled),
                to_i64(trial.started_ms),
                trial.status,
                trial.finished_ms.map(to_i64),
                trial.trial_idx.map(to_i64),
                trial.summary
            ],
        )?;
        Ok(())
    }

    /// One trial by the index of its `trial_start` record.
    pub fn trial(&self, start_idx: u64) -> Result<Option<TrialRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE start_idx = ?1"),
                params![to_i64(start_idx)],
                trial_row,
            )
            .optional()?)
    }

    /// The newest trials first, optionally of one agent; at most `n_max`.
    pub fn trials(
        &self,
        agent: Option<&str>,
        n_max: usize,
    ) -> Result<Vec<TrialRow>, RegistryError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {TRIAL_COLUMNS} FROM trials WHERE (?1 IS NULL OR agent = ?1)
             ORDER BY start_idx DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![agent, to_i64(n_max as u64)], trial_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the newest complete trial of `suite_id` for `agent` started, unix ms.
    pub fn last_complete_trial_ms(
        &self,
        agent: &str,
        suite_id: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let newest: Option<i64> = self.conn.query_row(
            "SELECT MAX(started_ms) FROM trials WHERE agent = ?1 AND suite_id = ?2 AND status = 'complete'",
            params![agent, suite_id],
            |row| row.get(0),
        )?;
        Ok(newest.map(to_u64))
    }

    /// Marks trials left `running` by a previous process as `abandoned`; returns how many.
    pub fn abandon_running_trials(&self) -> Result<usize, RegistryError> {
        Ok(self.conn.execute(
            "UPDATE trials SET status = 'abandoned' WHERE status = 'running'",
            [],
        )?)
    }
}

/// Most definitions kept per tool besides the pinned one (older unaccepted ones are dropped).
pub const TOOL_VERSIONS_MAX: usize = 100;

/// A tool definition pinned for an agent: what the gateway may offer without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPinRow {
    /// The agent.
    pub agent: String,
    /// The upstream MCP server's name.
    pub upstream: String,
    /// The tool's name.
    pub name: String,
    /// `sha256:<hex>` of the pinned definition's canonical `{name, description, inputSchema}`.
    pub digest: String,
    /// The pinned definition (the MCP Tool), JSON text.
    pub definition: String,
    /// `pinned`, `flagged` (its description carries an injection) or `changed` (a different
    /// definition was seen and waits to be accepted).
    pub status: String,
    /// The newest different digest seen, while `changed`.
    pub pending_digest: Option<String>,
    /// When it was first seen, unix ms.
    pub first_seen_ms: u64,
    /// Index of the record that last set the pin (`tool_pinned`, `tool_flagged`,
    /// `tool_changed`, `tool_accepted`).
    pub record_idx: u64,
}

/// One definition seen for a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolVersionRow {
    /// Its digest.
    pub digest: String,
    /// The definition, JSON text.
    pub definition: String,
    /// What scanning its description found, JSON text (an array).
    pub findings: String,
    /// When first seen, unix ms.
    pub first_seen_ms: u64,
    /// The record that first named it.
    pub record_idx: u64,
}

const TOOL_PIN_COLUMNS: &str =
    "agent, upstream, name, digest, definition, status, pending_digest, first_seen_ms, record_idx";

fn tool_pin_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ToolPinRow> {
    Ok(ToolPinRow {
        agent: row.get(0)?,
        upstream: row.get(1)?,
        name: row.get(2)?,
        digest: row.get(3)?,
        definition: row.get(4)?,
        status: row.get(5)?,
        pending_digest: row.get(6)?,
        first_seen_ms: to_u64(row.get(7)?),
        record_idx: to_u64(row.get(8)?),
    })
}

/// The mark of [`Registry::outcomes_through`].
const OUTCOMES_THROUGH: &str = "outcomes_through";

/// Moves a mark up to `value` (never down).
fn set_mark(conn: &Connection, name: &str, value: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO marks (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = max(value, ?2)",
    )?
    .execute(params![name, to_i64(value)])?;
    Ok(())
}

impl Registry {
    /// Whether a verdict's outcome is indexed.
    pub fn outcome_recorded(&self, verdict_idx: u64) -> Result<bool, RegistryError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM outcomes WHERE verdict_idx = ?1 AND record_idx IS NOT NULL",
            )?
            .exists(params![to_i64(verdict_idx)])?)
    }

    /// Indexes the outcome of a verdict, appended as `record_idx`, and moves the mark below
    /// which every outcome record of the log is indexed to `through` (never back).
    ///
    /// Committed without a sync: the record is already durable in the log, and a power cut
    /// loses only the last commits, each with its own mark, so [`Registry::outcomes_through`]
    /// still names where the index must be rebuilt from.
    pub fn insert_outcome(
        &self,
        verdict_idx: u64,
        record_idx: u64,
        through: u64,
    ) -> Result<(), RegistryError> {
        self.unsynced(|conn| {
            let tx = conn.unchecked_transaction()?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO outcomes (verdict_idx, record_idx) VALUES (?1, ?2)",
            )?
            .execute(params![to_i64(verdict_idx), to_i64(record_idx)])?;
            set_mark(&tx, OUTCOMES_THROUGH, through)?;
            tx.commit()
        })
    }

    /// The log index below which every outcome record is indexed (0 when never set).
    pub fn outcomes_through(&self) -> Result<u64, RegistryError> {
        let value: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM marks WHERE name = ?1",
                params![OUTCOMES_THROUGH],
                |row| row.get(0),
            )
            .optional()?;
        Ok(value.map_or(0, to_u64))
    }

    /// Indexes outcomes read back from the log (`(verdict, record)`) and sets the mark to
    /// `through`, in one synced transaction; forgets claims an older version left without a
    /// record.
    pub fn restore_outcomes(
        &mut self,
        outcomes: &[(u64, u64)],
        through: u64,
    ) -> Result<(), RegistryError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM outcomes WHERE record_idx IS NULL", [])?;
        for (verdict_idx, record_idx) in outcomes {
            tx.execute(
                "INSERT OR REPLACE INTO outcomes (verdict_idx, record_idx) VALUES (?1, ?2)",
                params![to_i64(*verdict_idx), to_i64(*record_idx)],
            )?;
        }
        set_mark(&tx, OUTCOMES_THROUGH, through)?;
        tx.commit()?;
        Ok(())
    }

    /// Runs `write` with `synchronous=NORMAL` (WAL mode: the commit reaches the OS but is not
    /// fsynced, so it survives a crash of the process but maybe not a power cut), then restores
    /// `FULL`. Only for tables that are rebuilt from the log.
    fn unsynced(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), RegistryError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = write(&self.conn);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(written?)
    }

    /// The pins of an agent, by upstream and name.
    pub fn tool_pins(&self, agent: &str) -> Result<Vec<ToolPinRow>, RegistryError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {TOOL_PIN_COLUMNS} FROM tool_pins WHERE agent = ?1 ORDER BY upstream, name"
        ))?;
        let rows = statement.query_map(params![agent], tool_pin_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One pin.
    pub fn tool_pin(
        &self,
        agent: &str,
        upstream: &str,
        name: &str,
    ) -> Result<Option<ToolPinRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {TOOL_PIN_COLUMNS} FROM tool_pins WHERE agent = ?1 AND upstream = ?2 AND name = ?3"
                ),
                params![agent, upstream, name],
                tool_pin_row,
            )
            .optional()?)
    }

    /// Creates or replaces a pin.
    pub fn set_tool_pin(&self, pin: &ToolPinRow) -> Result<(), RegistryError> {
        self.conn.execute(
            &format!(
                "INSERT OR REPLACE INTO tool_pins ({TOOL_PIN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            params![
                pin.agent,
                pin.upstream,
                pin.name,
                pin.digest,
                pin.definition,
                pin.status,
                pin.pending_digest,
                to_i64(pin.first_seen_ms),
                to_i64(pin.record_idx)
            ],
        )?;
        Ok(())
    }

    /// One definition seen for a tool, by digest.
    pub fn tool_version(
        &self,
        agent: &str,
        upstream: &str,
        name: &str,
        digest: &str,
    ) -> Result<Option<ToolVersionRow>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT digest, definition, findings, first_seen_ms, record_idx FROM tool_versions
                 WHERE agent = ?1 AND upstream = ?2 AND name = ?3 AND digest = ?4",
                params![agent, upstream, name, digest],
                |row| {
                    Ok(ToolVersionRow {
                        digest: row.get(0)?,
                        definition: row.get(1)?,
                        findings: row.get(2)?,
                        first_seen_ms: to_u64(row.get(3)?),
                        record_idx: to_u64(row.get(4)?),
                    })
                },
            )
            .optional()?)
    }

    /// Remembers a definition seen for a tool (the first sighting stays), keeping at most
    /// [`TOOL_VERSIONS_MAX`] besides the pinned one.
    pub fn insert_tool_version(
        &self,
        agent: &str,
        upstream: &str,
        name: &str,
        version: &ToolVersionRow,
        pinned_digest: &str,
    ) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO tool_versions
                (agent, upstream, name, digest, definition, findings, first_seen_ms, record_idx)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                agent,
                upstream,
                name,
                version.digest,
                version.definition,
                version.findings,
                to_i64(version.first_seen_ms),
                to_i64(version.record_idx)
            ],
        )?;
        self.conn.execute(
            "DELETE FROM tool_versions WHERE agent = ?1 AND upstream = ?2 AND name = ?3
               AND digest != ?4 AND digest NOT IN (
                 SELECT digest FROM tool_versions WHERE agent = ?1 AND upstream = ?2 AND name = ?3
                 AND digest != ?4 ORDER BY first_seen_ms DESC, record_idx DESC LIMIT ?5)",
            params![
                agent,
                upstream,
                name,
                pinned_digest,
                to_i64(TOOL_VERSIONS_MAX as u64)
            ],
        )?;
        Ok(())
    }
}

fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        agent: row.get(3)?,
        hash: row.get(4)?,
        created_ms: to_u64(row.get(5)?),
        revoked_ms: row.get::<_, Option<i64>>(6)?.map(to_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        let (secret, row) = registry.create_token("ci", "auditor", None, 5).unwrap();
        assert!(secret.starts_with(TOKEN_PREFIX));
        assert_ne!(row.hash, secret);
        assert_eq!(
            registry.token_by_hash(&token_hash(&secret)).unwrap(),
            Some(row.clone())
        );
        assert!(registry.revoke_token(&row.id, 6).unwrap());
        assert!(!registry.revoke_token(&row.id, 7).unwrap());
        assert_eq!(registry.token_by_hash(&token_hash(&secret)).unwrap(), None);
    }

    #[test]
    fn controls_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let controls = ControlsRow {
            halt: Some(("ops".into(), "canary".into(), 9)),
            restricted: vec!["refunds".into()],
        };
        Registry::open(dir.path())
            .unwrap()
            .set_controls("acme/bot", &controls)
            .unwrap();
        let reopened = Registry::open(dir.path()).unwrap();
        assert_eq!(
            reopened.controls().unwrap(),
            vec![("acme/bot".to_string(), controls)]
        );
    }
}
