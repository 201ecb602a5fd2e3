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

pub(crate) fn verify(
    storage: &dyn Storage,
    key: &VerifierKey,
    signatures_checked_below: u64,
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
            while let Some((checkpoint_size, note)) = &next_checkpoint {
                if *checkpoint_size != tree.size() {
                    break;
                }
                n_checkpoints += 1;
                let bad = match open_checkpoint(note, *checkpoint_size, key, signatures_checked_below) {
                    Err(err) => Some(format!(
                        "checkpoint at size {checkpoint_size} does not verify: {err}"
                    )),
                    Ok(checkpoint) if checkpoint.size != *checkpoint_size => Some(format!(
                        "checkpoint stored at size {checkpoint_size} says size {}",
                        checkpoint.size
                    )),
                    Ok(checkpoint) if checkpoint.root != tree.root() => Some(format!(
                        "records {good_size}..{checkpoint_size} do not match the checkpoint at size {checkpoint_size}"
                    )),
                    Ok(_) => None,
                };
                if let Some(message) = bad {
                    problem = Some(VerifyProblem {
                        index: good_size,
                        message,
                    });
                    return Ok(false);
                }
                good_size = *checkpoint_size;
                next_checkpoint = snapshot.next_checkpoint(good_size)?;
            }
            Ok(true)
        })?;
        if problem.is_none() && tree.size() < to {
            let missing = tree.size();
            problem = Some(VerifyProblem {
                index: missing,
                message: format!("record {missing} is missing"),
            });
        }
        from = to;
    }
    if problem.is_none() {
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
