//! Full verification of a stored log against its own signed checkpoints.
//!
//! One pass over the records in index order, in constant memory:
//!
//! 1. indexes are contiguous from 0 (a deleted record is reported at its index);
//! 2. each record's recomputed leaf hash equals the stored one (a changed byte or two swapped
//!    records are reported at the first index affected);
//! 3. at every checkpoint size, the checkpoint's Ed25519 signature verifies with the log key
//!    and its root equals the root recomputed from the records. All roots come from one
//!    stream of records, so each checkpoint is consistent with the next; a mismatch is
//!    reported at the first record after the last good checkpoint;
//! 4. the interior nodes stored with each record equal the recomputed ones (proofs are served
//!    from them);
//! 5. the last checkpoint covers exactly the stored records (an inserted or appended record
//!    outside any checkpoint, or a checkpoint beyond the records, is reported).

use crate::{Storage, StoreError};
use ledger::checkpoint::Checkpoint;
use ledger::merkle::{self, TreeBuilder};
use ledger::note::VerifierKey;

/// Records per scan query.
const SCAN_CHUNK_RECORDS: u64 = 64 * 1024;

/// The first problem found, located at a record index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The first record index that does not match.
    pub index: u64,
    /// What does not match.
    pub message: String,
}

/// What [`crate::Log::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read.
    pub n_records: u64,
    /// Checkpoints whose signature and root were checked.
    pub n_checkpoints: u64,
    /// The first problem, if any.
    pub problem: Option<VerifyProblem>,
}

impl VerifyReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Opens a stored checkpoint: with its signature checked, or, below `signatures_checked_below`,
/// only parsed (its signature was checked by an earlier run; its root is still compared).
fn open_checkpoint(
    note: &str,
    size: u64,
    key: &VerifierKey,
    signatures_checked_below: u64,
) -> Result<Checkpoint, String> {
    if size < signatures_checked_below {
        let text = note
            .rsplit_once("\n\n")
            .map(|(text, _)| format!("{text}\n"))
            .ok_or_else(|| "malformed note".to_owned())?;
        return Checkpoint::parse_body_with_origin(&text, key.name())
            .map_err(|err| err.to_string());
    }
    Checkpoint::open(note, key).map_err(|err| err.to_string())
}

/// A checkpoint reached by the record scan, with the root recomputed at its size.
struct CheckpointJob {
    previous_size: u64,
    size: u64,
    note: String,
    root: merkle::Hash,
}

fn check_checkpoint(
    job: &CheckpointJob,
    key: &VerifierKey,
    signatures_checked_below: u64,
) -> Option<VerifyProblem> {
    let CheckpointJob {
        previous_size,
        size,
        note,
        root,
    } = job;
    let message = match open_checkpoint(note, *size, key, signatures_checked_below) {
        Err(err) => format!("checkpoint at size {size} does not verify: {err}"),
        Ok(checkpoint) if checkpoint.size != *size => format!(
            "checkpoint stored at size {size} says size {}",
            checkpoint.size
        ),
        Ok(checkpoint) if checkpoint.root != *root => {
            format!("records {previous_size}..{size} do not match the checkpoint at size {size}")
        }
        Ok(_) => return None,
    };
    Some(VerifyProblem {
        index: *previous_size,
        message,
    })
}

/// Checks checkpoint signatures on a second thread while this one hashes records: signature
/// checks are the largest cost per record after hashing.
pub(crate) fn verify(
    storage: &dyn Storage,
    key: &VerifierKey,
    signatures_checked_below: u64,
) -> Result<VerifyReport, StoreError> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (jobs, job_queue) = std::sync::mpsc::sync_channel::<CheckpointJob>(4096);
    std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            for job in job_queue {
                if let Some(problem) = check_checkpoint(&job, key, signatures_checked_below) {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Some(problem);
                }
            }
            None
        });
        let scanned = scan(storage, &jobs, &stop);
        drop(jobs);
        let checkpoint_problem = checker.join().unwrap_or_else(|_| {
            Some(VerifyProblem {
                index: 0,
                message: "checkpoint checker failed".into(),
            })
        });
        let mut report = scanned?;
        if let Some(found) = checkpoint_problem {
            if report
                .problem
                .as_ref()
                .is_none_or(|p| found.index <= p.index)
            {
                report.problem = Some(found);
            }
        }
        Ok(report)
    })
}

fn scan(
    storage: &dyn Storage,
    jobs: &std::sync::mpsc::SyncSender<CheckpointJob>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<VerifyReport, StoreError> {
    let snapshot = storage.snapshot()?;
    let size = snapshot.size()?;
    let mut tree = TreeBuilder::new();
    let mut next_checkpoint = snapshot.next_checkpoint(0)?;
    let mut good_size = 0u64;
    let mut n_checkpoints = 0u64;
    let mut problem: Option<VerifyProblem> = None;
    let mut nodes = Vec::with_capacity(64 * 32);
    let mut from = 0u64;
    while from < size && problem.is_none() {
        let to = size.min(from + SCAN_CHUNK_RECORDS);
        snapshot.scan_records(from, to, &mut |index, data, stored_leaf, stored_nodes| {
            let expected = tree.size();
            if index != expected {
                problem = Some(VerifyProblem {
                    index: expected,
                    message: format!("record {expected} is missing"),
                });
                return Ok(false);
            }
            let leaf = merkle::leaf_hash(data);
            if stored_leaf != leaf.as_slice() {
                problem = Some(VerifyProblem {
                    index,
                    message: format!("record {index} does not match its stored leaf hash"),
                });
                return Ok(false);
            }
            nodes.clear();
            tree.push(leaf, |level, _, hash| {
                if level > 0 {
                    nodes.extend_from_slice(hash);
                }
            });
            if stored_nodes != nodes.as_slice() {
                problem = Some(VerifyProblem {
                    index,
                    message: format!(
                        "tree nodes stored with record {index} do not match the records before it"
                    ),
                });
                return Ok(false);
            }
            while let Some((checkpoint_size, note)) = next_checkpoint.take() {
                if checkpoint_size != tree.size() {
                    next_checkpoint = Some((checkpoint_size, note));
                    break;
                }
                n_checkpoints += 1;
                let job = CheckpointJob {
                    previous_size: good_size,
                    size: checkpoint_size,
                    note,
                    root: tree.root(),
                };
                if jobs.send(job).is_err() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // The checker found a problem: it will be reported.
                    return Ok(false);
                }
                good_size = checkpoint_size;
                next_checkpoint = snapshot.next_checkpoint(good_size)?;
            }
            Ok(true)
        })?;
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if problem.is_none() && tree.size() < to {
            let missing = tree.size();
            problem = Some(VerifyProblem {
                index: missing,
                message: format!("record {missing} is missing"),
            });
        }
        from = to;
    }
    if problem.is_none() && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some((checkpoint_size, _)) = &next_checkpoint {
            problem = Some(VerifyProblem {
                index: tree.size(),
                message: format!(
                    "checkpoint at size {checkpoint_size} covers records from {} that are missing",
                    tree.size()
                ),
            });
        } else if good_size < tree.size() {
            problem = Some(VerifyProblem {
                index: good_size,
                message: format!(
                    "records {good_size}..{} are not covered by any checkpoint",
                    tree.size()
                ),
            });
        }
    }
    Ok(VerifyReport {
        n_records: tree.size(),
        n_checkpoints,
        problem,
    })
}
