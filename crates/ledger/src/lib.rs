//! The evidence log's pure core: records, canonical encoding, Merkle tree, proofs, checkpoints.
//!
//! No IO, no clock, no threads, no randomness: keys and times arrive as values, so every
//! function here is deterministic and testable against the public vectors in `testdata/`.
//!
//! - [`jcs`]: RFC 8785 canonical JSON.
//! - [`record`]: what a record must contain, and its canonical bytes (the Merkle leaf data).
//! - [`merkle`]: RFC 6962 hashing, proof construction from stored nodes, verifiers.
//! - [`note`]: C2SP signed notes with Ed25519 and the verifier-key format.
//! - [`checkpoint`]: C2SP `tlog-checkpoint` tree heads.
//! - [`tlog_proof`]: C2SP `tlog-proof` files for one record.
//! - [`bundle`]: offline-verifiable exports (`docs/bundle-format.md`).

// Nothing here may panic on any input: enforced outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod bundle;
pub mod checkpoint;
pub mod jcs;
pub mod merkle;
pub mod note;
pub mod record;
pub mod tlog_proof;

pub use bundle::{Bundle, BundleEntry, BundleError, EntryReason, Selection};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use merkle::{Hash, MerkleError, TreeBuilder};
pub use note::{NoteError, SignerKey, VerifierKey};
pub use record::{Record, RecordError, RECORD_BYTES_MAX};
pub use tlog_proof::{TlogProof, TlogProofError};
