//! C2SP `tlog-proof` (`c2sp.org/tlog-proof@v1`): one record's offline-verifiable proof.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <n>
//! <base64 hash>          (zero or more inclusion proof hashes, leaf sibling first)
//!
//! <signed checkpoint, verbatim>
//! ```
//!
//! For Pactum the leaf data is the record's canonical bytes (`pactum ledger get`); no `extra`
//! line is written, and one is accepted but not trusted when reading.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{self, Hash, MerkleError};
use crate::note::VerifierKey;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Most hashes an inclusion proof can have (a tree of 2^64 leaves).
pub const PROOF_HASHES_MAX: usize = 64;

/// Why a tlog-proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The text does not follow the tlog-proof grammar.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The checkpoint is invalid or not signed by the key.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not bind the record to the checkpoint.
    #[error("inclusion proof does not verify: {0}")]
    Inclusion(#[from] MerkleError),
}

/// A parsed tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Unauthenticated extra data, if any.
    pub extra: Option<Vec<u8>>,
    /// The leaf index.
    pub index: u64,
    /// Inclusion proof hashes, leaf sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            out.push_str(&BASE64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, TlogProofError> {
        let malformed = TlogProofError::Malformed;
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(malformed("missing `c2sp.org/tlog-proof@v1` header"))?;
        let (head, checkpoint) = rest
            .split_once("\n\n")
            .ok_or(malformed("missing blank line before the checkpoint"))?;
        let mut lines = head.split('\n').peekable();
        let mut extra = None;
        if let Some(line) = lines.peek() {
            if let Some(encoded) = line.strip_prefix("extra ") {
                extra = Some(
                    BASE64
                        .decode(encoded)
                        .map_err(|_| malformed("extra is not base64"))?,
                );
                lines.next();
            }
        }
        let index_text = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .ok_or(malformed("missing `index` line"))?;
        let index_ok = !index_text.is_empty()
            && index_text.bytes().all(|b| b.is_ascii_digit())
            && (index_text == "0" || !index_text.starts_with('0'));
        let index: u64 = index_ok
            .then(|| index_text.parse().ok())
            .flatten()
            .ok_or(malformed("index must be decimal without leading zeros"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() >= PROOF_HASHES_MAX {
                return Err(malformed("too many proof hashes"));
            }
            let hash: Hash = BASE64
                .decode(line)
                .ok()
                .and_then(|raw| raw.try_into().ok())
                .ok_or(malformed("proof line is not base64 of 32 bytes"))?;
            proof.push(hash);
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies that `leaf_data` is at `index` in the checkpoint signed by `verifier`.
    pub fn verify(
        &self,
        leaf_data: &[u8],
        verifier: &VerifierKey,
    ) -> Result<Checkpoint, TlogProofError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier)?;
        merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &merkle::leaf_hash(leaf_data),
            &self.proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}
