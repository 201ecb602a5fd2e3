//! One outcome per verdict, with no registry sync on the call path.
//!
//! The log is the truth: an `outcome` record names its verdict. The registry's `outcomes` table
//! indexes which verdicts have one and is written without a sync of its own after the record is
//! durable; while that happens the verdict is held here, in memory, so a second report of the
//! same call is refused at once. Each index write carries a mark, the log index below which
//! every outcome record is indexed; on open, the outcomes after the mark are read back from the
//! log through the agent index, so an index row lost to a crash is rebuilt before any request.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::app::{AppState, OpenError};
use crate::problem::ApiError;
use crate::registry::Registry;

/// Most outcomes being recorded at once; more are refused with 503 until some finish.
pub const OUTCOMES_IN_FLIGHT_MAX: usize = 10_000;

/// Outcome records read from the log per page while the index is rebuilt on open.
pub const RESTORE_PAGE_RECORDS: usize = 1000;

/// Verdicts whose outcome is being recorded, each with the log's size when it was claimed (a
/// lower bound of its record's index).
#[derive(Default)]
pub(crate) struct Claims(Mutex<HashMap<u64, u64>>);

impl Claims {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, u64>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether no outcome is being recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The right to record the outcome of one verdict; released on drop unless kept.
pub(crate) struct Claim {
    app: AppState,
    verdict_idx: u64,
    /// Whether dropping the claim releases it.
    release: bool,
}

impl Claim {
    /// Claims `verdict_idx`: 409 `outcome-exists` when it has an outcome or one is being
    /// recorded, 503 when [`OUTCOMES_IN_FLIGHT_MAX`] are.
    pub(crate) fn take(app: &AppState, verdict_idx: u64) -> Result<Claim, ApiError> {
        let exists = || {
            ApiError::conflict(
                "outcome-exists",
                format!("verdict {verdict_idx} already has an outcome"),
            )
        };
        let floor = app.log().size()?;
        {
            let mut claims = app.outcome_claims().lock();
            if claims.contains_key(&verdict_idx) {
                return Err(exists());
            }
            if claims.len() >= OUTCOMES_IN_FLIGHT_MAX {
                return Err(ApiError::unavailable(format!(
                    "{OUTCOMES_IN_FLIGHT_MAX} outcomes are being recorded; retry shortly"
                )));
            }
            claims.insert(verdict_idx, floor);
        }
        // Held before the index is read: an outcome that finishes in between is indexed
        // before its claim is released, so one of the two checks sees it.
        let claim = Claim {
            app: app.clone(),
            verdict_idx,
            release: true,
        };
        if app.registry().outcome_recorded(verdict_idx)? {
            return Err(exists());
        }
        Ok(claim)
    }

    /// Indexes the outcome, durable in the log as `record_idx`, and releases the claim. If the
    /// index cannot be written the claim is kept, so the verdict stays refused until a restart
    /// rebuilds the index from the log.
    pub(crate) fn confirm(mut self, record_idx: u64) {
        let through = {
            let claims = self.app.outcome_claims().lock();
            let others = claims
                .iter()
                .filter(|(verdict, _)| **verdict != self.verdict_idx)
                .map(|(_, floor)| *floor)
                .min();
            let size = self.app.log().size().unwrap_or(record_idx + 1);
            others.map_or(size, |floor| floor.min(size))
        };
        if let Err(err) = self
            .app
            .registry()
            .insert_outcome(self.verdict_idx, record_idx, through)
        {
            eprintln!(
                "pactum serve: indexing outcome {record_idx} of verdict {}: {err}; the verdict \
                 stays claimed until the next start",
                self.verdict_idx
            );
            self.release = false;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.release {
            self.app.outcome_claims().lock().remove(&self.verdict_idx);
        }
    }
}

/// Rebuilds the outcome index from the log after its mark: reads each agent's `outcome`
/// records from the mark on (through the agent index, [`RESTORE_PAGE_RECORDS`] at a time) and
/// moves the mark to the log's size. Only at open, and only what came after the last clean
/// shutdown or the last indexed outcome; a data directory from before the mark existed is read
/// once in full.
pub(crate) fn restore(
    registry: &mut Registry,
    log: &store::Log,
    agents: &[String],
) -> Result<(), OpenError> {
    let through = registry.outcomes_through()?;
    let size = log.size()?;
    let mut found = Vec::new();
    for agent in agents {
        let mut since = through;
        loop {
            let page = log.agent_records(agent, since, &["outcome"], RESTORE_PAGE_RECORDS)?;
            let n_read = page.len();
            for (record_idx, bytes) in page {
                since = record_idx + 1;
                let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
                    continue;
                };
                if let Some(verdict_idx) = verdict_ref(&value) {
                    found.push((verdict_idx, record_idx));
                }
            }
            if n_read < RESTORE_PAGE_RECORDS {
                break;
            }
        }
    }
    registry.restore_outcomes(&found, size)?;
    Ok(())
}

/// The verdict an outcome record refers to.
fn verdict_ref(record: &Value) -> Option<u64> {
    record["refs"]
        .as_array()?
        .iter()
        .find(|reference| reference["rel"] == "verdict")?["index"]
        .as_u64()
}
