//! C2SP `tlog-checkpoint` bodies and signed checkpoints.
//!
//! Body: origin line, tree size in decimal (no leading zeros), base64 root hash, each ending in
//! a newline. Pactum writes no extension lines; it accepts them when reading (they are not
//! interpreted). The root must decode to exactly 32 bytes.

use crate::merkle::Hash;
use crate::note::{self, NoteError, SignerKey, VerifierKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body does not follow the checkpoint grammar.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The origin is not the expected one.
    #[error("checkpoint origin `{got}` is not the expected `{want}`")]
    WrongOrigin {
        /// Origin found.
        got: String,
        /// Origin expected.
        want: String,
    },
    /// The signed note is not valid.
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A tree head: origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (its key name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body (text) of this checkpoint.
    pub fn to_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a checkpoint body.
    pub fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let malformed = CheckpointError::Malformed;
        let lines = body
            .strip_suffix('\n')
            .ok_or(malformed("body must end with a newline"))?;
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("empty origin"));
        }
        let size_text = lines.next().ok_or(malformed("missing tree size"))?;
        let size_ok = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size: u64 = size_ok
            .then(|| size_text.parse().ok())
            .flatten()
            .ok_or(malformed(
                "tree size must be a decimal number without leading zeros",
            ))?;
        let root_text = lines.next().ok_or(malformed("missing root hash"))?;
        let root: Hash = BASE64
            .decode(root_text)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or(malformed("root hash must be base64 of 32 bytes"))?;
        if lines.any(str::is_empty) {
            return Err(malformed("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Parses a body and checks its origin.
    pub fn parse_body_with_origin(body: &str, origin: &str) -> Result<Self, CheckpointError> {
        let checkpoint = Self::parse_body(body)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::WrongOrigin {
                got: checkpoint.origin,
                want: origin.to_owned(),
            });
        }
        Ok(checkpoint)
    }

    /// Signs the checkpoint; the result is the signed note text.
    pub fn sign(&self, signer: &SignerKey) -> Result<String, CheckpointError> {
        Ok(signer.sign(&self.to_body())?)
    }

    /// Verifies a signed checkpoint against the log's key; the origin must be the key name.
    pub fn open(signed: &str, verifier: &VerifierKey) -> Result<Self, CheckpointError> {
        let opened = note::open(signed.as_bytes(), std::slice::from_ref(verifier))?;
        Self::parse_body_with_origin(&opened.text, verifier.name())
    }
}
