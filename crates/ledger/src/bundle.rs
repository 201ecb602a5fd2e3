//! Bundles: a portable, offline-verifiable export of records with their inclusion proofs, one
//! signed checkpoint and the log's verifier key, as one JSON document. The format is specified
//! in `docs/bundle-format.md`; [`Bundle::verify`] is the reference verifier.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{self, Hash, MerkleError};
use crate::note::{NoteError, VerifierKey};
use crate::record::{Record, RecordError, RecordRef};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `format` value of this version of the bundle format.
pub const BUNDLE_FORMAT: &str = "pactum-bundle/v1";
/// Most entries a bundle may hold.
pub const BUNDLE_ENTRIES_MAX: usize = 1_000_000;

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The JSON is not a bundle.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The bundle names a different key than the trusted one.
    #[error("bundle is for key `{bundle_key}`, not the trusted key `{trusted_key}`")]
    WrongKey {
        /// Key named in the bundle.
        bundle_key: String,
        /// Key the verifier trusts.
        trusted_key: String,
    },
    /// The key text is invalid.
    #[error(transparent)]
    Key(#[from] NoteError),
    /// The checkpoint is invalid or not signed by the trusted key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// An entry's record is not a valid canonical record.
    #[error("entry for index {index}: {source}")]
    Record {
        /// The entry's index.
        index: u64,
        /// What is wrong.
        source: RecordError,
    },
    /// An entry's inclusion proof does not verify.
    #[error("entry for index {index}: inclusion proof does not verify: {source}")]
    Inclusion {
        /// The entry's index.
        index: u64,
        /// What is wrong.
        source: MerkleError,
    },
    /// The entries do not match the selection or references.
    #[error("bundle is incomplete or inconsistent: {0}")]
    Selection(String),
}

/// Which records the bundle was exported for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// Every record whose `agent` is this id, as of the checkpoint.
    Agent(String),
    /// Records `from..=to` (both inclusive).
    Range {
        /// First index.
        from: u64,
        /// Last index.
        to: u64,
    },
}

/// Why an entry is in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryReason {
    /// Matched the selection.
    Selected,
    /// Referenced by index from a selected record (for example the pact it was decided under,
    /// or the verdict an outcome completes), but not itself selected.
    Referenced,
}

/// One record with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    /// Log index.
    pub index: u64,
    /// Why it is included.
    pub reason: EntryReason,
    /// The record's canonical JSON; its UTF-8 bytes are the leaf data.
    pub record: String,
    /// Inclusion proof in the checkpoint's tree, base64 hashes, leaf sibling first.
    pub proof: Vec<String>,
}

/// A bundle document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The log's verifier key (`name+id+key`).
    pub verifier_key: String,
    /// The signed checkpoint (C2SP signed note) all proofs refer to.
    pub checkpoint: String,
    /// What was exported.
    pub selection: Selection,
    /// Entries in increasing index order, each index once.
    pub entries: Vec<BundleEntry>,
}

/// What a verified bundle established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// Entries that matched the selection.
    pub n_selected: usize,
    /// Entries included because a selected record referenced them.
    pub n_referenced: usize,
}

impl BundleEntry {
    /// An entry from canonical record bytes and proof hashes.
    pub fn new(index: u64, reason: EntryReason, record: &[u8], proof: &[Hash]) -> Self {
        Self {
            index,
            reason,
            record: String::from_utf8_lossy(record).into_owned(),
            proof: proof.iter().map(|h| BASE64.encode(h)).collect(),
        }
    }
}

impl Bundle {
    /// Parses a bundle file. The file must be exactly the canonical (RFC 8785) JSON of the
    /// bundle followed by one newline, so that changing any byte of it is detected: bytes that
    /// no signature or proof covers (whitespace, escapes, member order) have only one valid form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let bundle: Self =
            serde_json::from_slice(bytes).map_err(|err| BundleError::Malformed(err.to_string()))?;
        if bundle.to_json().as_bytes() != bytes {
            return Err(BundleError::Malformed(
                "file is not in canonical form (RFC 8785 JSON and one final newline)".into(),
            ));
        }
        Ok(bundle)
    }

    /// The bundle file: canonical (RFC 8785) JSON and one newline.
    pub fn to_json(&self) -> String {
        let canonical = serde_json::to_value(self)
            .ok()
            .and_then(|value| crate::jcs::canonicalize(&value).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        canonical + "\n"
    }

    /// Verifies everything against `trusted` (the key the verifier obtained independently).
    pub fn verify(&self, trusted: &VerifierKey) -> Result<BundleSummary, BundleError> {
        if self.format != BUNDLE_FORMAT {
            return Err(BundleError::Malformed(format!(
                "format is `{}`, expected `{BUNDLE_FORMAT}`",
                self.format
            )));
        }
        if self.entries.len() > BUNDLE_ENTRIES_MAX {
            return Err(BundleError::Malformed("too many entries".into()));
        }
        let bundle_key = VerifierKey::parse(&self.verifier_key)?;
        if bundle_key != *trusted {
            return Err(BundleError::WrongKey {
                bundle_key: bundle_key.to_text(),
                trusted_key: trusted.to_text(),
            });
        }
        let checkpoint = Checkpoint::open(&self.checkpoint, trusted)?;
        let mut records: BTreeMap<u64, (EntryReason, Record)> = BTreeMap::new();
        let mut previous: Option<u64> = None;
        for entry in &self.entries {
            if previous.is_some_and(|p| p >= entry.index) {
                return Err(BundleError::Selection(format!(
                    "entry index {} is out of order or repeated",
                    entry.index
                )));
            }
            previous = Some(entry.index);
            let record =
                Record::from_canonical_bytes(entry.record.as_bytes()).map_err(|source| {
                    BundleError::Record {
                        index: entry.index,
                        source,
                    }
                })?;
            let proof = entry
                .proof
                .iter()
                .map(|h| BASE64.decode(h).ok().and_then(|raw| raw.try_into().ok()))
                .collect::<Option<Vec<Hash>>>()
                .ok_or(BundleError::Inclusion {
                    index: entry.index,
                    source: MerkleError::HashLength(0),
                })?;
            merkle::verify_inclusion(
                entry.index,
                checkpoint.size,
                &merkle::leaf_hash(record.bytes()),
                &proof,
                &checkpoint.root,
            )
            .map_err(|source| BundleError::Inclusion {
                index: entry.index,
                source,
            })?;
            records.insert(entry.index, (entry.reason, record));
        }
        self.check_selection(&records, &checkpoint)?;
        let n_selected = records
            .values()
            .filter(|(reason, _)| *reason == EntryReason::Selected)
            .count();
        Ok(BundleSummary {
            checkpoint,
            n_selected,
            n_referenced: records.len() - n_selected,
        })
    }

    fn check_selection(
        &self,
        records: &BTreeMap<u64, (EntryReason, Record)>,
        checkpoint: &Checkpoint,
    ) -> Result<(), BundleError> {
        let selected = |index: u64, record: &Record| match &self.selection {
            Selection::Agent(agent) => record.agent() == agent,
            Selection::Range { from, to } => (*from..=*to).contains(&index),
        };
        for (index, (reason, record)) in records {
            let matches = selected(*index, record);
            if matches != (*reason == EntryReason::Selected) {
                return Err(BundleError::Selection(format!(
                    "entry {index} is marked {reason:?} but {} the selection",
                    if matches { "matches" } else { "does not match" }
                )));
            }
        }
        if let Selection::Range { from, to } = &self.selection {
            if from > to || *to >= checkpoint.size {
                return Err(BundleError::Selection(format!(
                    "range {from}..={to} is not within the checkpoint's {} records",
                    checkpoint.size
                )));
            }
            let n_wanted = to - from + 1;
            let n_present = records.range(*from..=*to).count() as u64;
            if n_present != n_wanted {
                return Err(BundleError::Selection(format!(
                    "range {from}..={to} has {n_present} of {n_wanted} records"
                )));
            }
        }
        let mut referenced = std::collections::BTreeSet::new();
        for (reason, record) in records.values() {
            if *reason != EntryReason::Selected {
                continue;
            }
            for (_, target) in record.refs() {
                if let RecordRef::Index(target) = target {
                    if !records.contains_key(target) {
                        return Err(BundleError::Selection(format!(
                            "record referenced by index {target} is missing"
                        )));
                    }
                    referenced.insert(*target);
                }
            }
        }
        for (index, (reason, _)) in records {
            if *reason == EntryReason::Referenced && !referenced.contains(index) {
                return Err(BundleError::Selection(format!(
                    "entry {index} is marked referenced but no selected record refers to it"
                )));
            }
        }
        Ok(())
    }
}
