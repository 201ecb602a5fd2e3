//! C2SP signed notes (`c2sp.org/signed-note`) with Ed25519 keys.
//!
//! A note is a UTF-8 text ending in a newline, a blank line, and signature lines
//! `— <key name> <base64(key id || signature)>`. Key id = first 4 bytes of
//! SHA-256(name || 0x0A || 0x01 || public key). Verifier keys print as
//! `<name>+<hex key id>+<base64(0x01 || public key)>`; signer keys as
//! `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
//!
//! Only Ed25519 (type 0x01) is supported; other key types are refused when parsing a key and
//! their signatures in a note are ignored like any unknown key's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte for Ed25519.
const ALG_ED25519: u8 = 0x01;
/// Most signature lines a note may carry (the spec asks for at least 16).
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// Largest note accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 1024 * 1024;

/// Why a key or note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The key text is not a valid Ed25519 verifier or signer key.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The note does not follow the signed-note grammar.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// A signature from a known key did not verify.
    #[error("invalid signature for key `{0}`")]
    InvalidSignature(String),
    /// No signature from a known key is present.
    #[error("note has no signature from a known key")]
    NoKnownSignature,
    /// The text to sign is not a valid note text.
    #[error("note text must be non-empty utf-8 ending in a newline, without control characters")]
    BadText,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALG_ED25519]);
    hasher.update(public);
    let digest: [u8; 32] = hasher.finalize().into();
    let [a, b, c, d, ..] = digest;
    u32::from_be_bytes([a, b, c, d])
}

/// Splits `name+hexid+base64` and checks the name, id and algorithm; returns the key bytes.
fn parse_key_parts(text: &str) -> Result<(String, u32, [u8; 32]), NoteError> {
    let bad = |why: &str| NoteError::MalformedKey(why.to_owned());
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected `name+id+key`"));
    };
    if !valid_name(name) {
        return Err(bad("invalid key name"));
    }
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("key id must be 8 hex digits"));
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id must be 8 hex digits"))?;
    let raw = BASE64
        .decode(key_b64)
        .map_err(|_| bad("key is not valid base64"))?;
    match raw.split_first() {
        Some((&ALG_ED25519, rest)) => {
            let key: [u8; 32] = rest
                .try_into()
                .map_err(|_| bad("ed25519 key must be 32 bytes"))?;
            Ok((name.to_owned(), id, key))
        }
        Some(_) => Err(bad("unsupported key algorithm")),
        None => Err(bad("empty key")),
    }
}

/// A public key that verifies note signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<hex id>+<base64(0x01 || key)>`, checking that the id matches.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, bytes) = parse_key_parts(text.trim_end_matches('\n'))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError::MalformedKey("invalid ed25519 public key".into()))?;
        if key_id(&name, &bytes) != id {
            return Err(NoteError::MalformedKey(
                "key id does not match the key".into(),
            ));
        }
        Ok(Self { name, id, key })
    }
    /// The key name (for a log, its origin).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The 32-bit key id.
    pub fn id(&self) -> u32 {
        self.id
    }
    /// The verifier key string.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(raw))
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(text, &signature).is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A private key that signs notes. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({}+{:08x}, private)", self.name, self.id)
    }
}

impl SignerKey {
    /// A key named `name` from a 32-byte seed (the caller supplies the randomness).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey("invalid key name".into()));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::MalformedKey("expected `PRIVATE+KEY+` prefix".into()))?;
        let (name, id, seed) = parse_key_parts(rest)?;
        let signer = Self::from_seed(&name, seed)?;
        if signer.id != id {
            return Err(NoteError::MalformedKey(
                "key id does not match the key".into(),
            ));
        }
        Ok(signer)
    }

    /// The signer key string. It contains the private key: write it only to a private file.
    pub fn to_private_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(raw)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `text` and returns the whole signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() || !text.ends_with('\n') || has_control(text) {
            return Err(NoteError::BadText);
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n— {} {}\n", self.name, BASE64.encode(blob)))
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(|c| (c as u32) < 0x20 && c != '\n')
}

/// A note whose signature by at least one known key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The note text, including its final newline.
    pub text: String,
    /// Names of the known keys whose signatures verified.
    pub verified_by: Vec<String>,
    /// Number of signatures from keys not in the verifier set (ignored).
    pub n_unknown_signatures: usize,
}

/// Parses a signed note and verifies it against `verifiers`. Signatures from unknown keys are
/// ignored; an invalid signature from a known key rejects the whole note.
pub fn open(note: &[u8], verifiers: &[VerifierKey]) -> Result<VerifiedNote, NoteError> {
    if note.len() > NOTE_BYTES_MAX {
        return Err(NoteError::MalformedNote("note is too large"));
    }
    let message = std::str::from_utf8(note).map_err(|_| NoteError::MalformedNote("not utf-8"))?;
    if has_control(message) {
        return Err(NoteError::MalformedNote("control character"));
    }
    let split = message
        .rfind("\n\n")
        .ok_or(NoteError::MalformedNote("no signature block"))?;
    let (text, signatures) = match (message.get(..split + 1), message.get(split + 2..)) {
        (Some(text), Some(signatures)) => (text, signatures),
        _ => return Err(NoteError::MalformedNote("no signature block")),
    };
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::MalformedNote(
            "signature block must end with a newline",
        ));
    }
    let mut verified_by = Vec::new();
    let mut n_unknown_signatures = 0;
    let lines: Vec<&str> = signatures
        .strip_suffix('\n')
        .unwrap_or(signatures)
        .split('\n')
        .collect();
    if lines.len() > NOTE_SIGNATURES_MAX {
        return Err(NoteError::MalformedNote("too many signatures"));
    }
    for line in lines {
        let rest = line.strip_prefix("— ").ok_or(NoteError::MalformedNote(
            "signature line must start with `— `",
        ))?;
        let (name, sig_b64) = rest.split_once(' ').ok_or(NoteError::MalformedNote(
            "signature line needs a name and a signature",
        ))?;
        if !valid_name(name) {
            return Err(NoteError::MalformedNote("invalid key name"));
        }
        let blob = BASE64
            .decode(sig_b64)
            .map_err(|_| NoteError::MalformedNote("signature is not valid base64"))?;
        let Some(([a, b, c, d], signature)) = blob.split_first_chunk::<4>() else {
            return Err(NoteError::MalformedNote("signature is too short"));
        };
        if signature.is_empty() {
            return Err(NoteError::MalformedNote("signature is too short"));
        }
        let id = u32::from_be_bytes([*a, *b, *c, *d]);
        match verifiers.iter().find(|v| v.name == name && v.id == id) {
            Some(verifier) => {
                if !verifier.verify(text.as_bytes(), signature) {
                    return Err(NoteError::InvalidSignature(format!("{name}+{id:08x}")));
                }
                if !verified_by.iter().any(|n: &String| n == name) {
                    verified_by.push(name.to_owned());
                }
            }
            None => n_unknown_signatures += 1,
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(VerifiedNote {
        text: text.to_owned(),
        verified_by,
        n_unknown_signatures,
    })
}
