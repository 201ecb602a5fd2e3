//! The log's signing key file: created on first use with mode 0600 from the OS random source,
//! refused if group or others can read it. Its contents are never printed or logged.

use crate::StoreError;
use ledger::note::SignerKey;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

/// Creates `dir` (mode 0700) if it does not exist.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(format!(
            "creating data directory `{}`",
            dir.display()
        )))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error("reading /dev/urandom".into()))?;
    Ok(bytes)
}

/// Loads the signer key at `path`, creating it (named `origin`, or a random
/// `pactum.local/ledger-xxxxxxxx`) if the file does not exist.
pub fn load_or_create(path: &Path, origin: Option<&str>) -> Result<SignerKey, StoreError> {
    let key_error = |reason: String| StoreError::Key {
        path: path.to_owned(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(metadata) => {
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(key_error(
                    "is readable by group or others; run `chmod 600` on it".into(),
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(io_error(format!("reading key file `{}`", path.display())))?;
            SignerKey::parse(text.trim()).map_err(|err| key_error(err.to_string()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let name = match origin {
                Some(origin) => origin.to_owned(),
                None => format!("pactum.local/ledger-{}", hex_lower(&random_bytes::<4>()?)),
            };
            let signer = SignerKey::from_seed(&name, random_bytes::<32>()?)
                .map_err(|err| key_error(err.to_string()))?;
            // Write a private temporary file, then link it into place: the key file appears
            // complete or not at all (a crash mid-write leaves only the temporary file), and
            // linking never overwrites a key another process created first.
            let temp_path = path.with_extension(format!("key.tmp-{}", std::process::id()));
            let _ = std::fs::remove_file(&temp_path);
            let write_temp = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temp_path)?;
                file.write_all(format!("{}\n", signer.to_private_text()).as_bytes())?;
                file.sync_all()
            };
            let linked = write_temp().and_then(|()| std::fs::hard_link(&temp_path, path));
            let _ = std::fs::remove_file(&temp_path);
            match linked {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    return load_or_create(path, origin);
                }
                Err(err) => {
                    return Err(io_error(format!("creating key file `{}`", path.display()))(
                        err,
                    ))
                }
            }
            if let Some(dir) = path.parent() {
                // Make the new directory entry durable too.
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(signer)
        }
        Err(err) => Err(io_error(format!("reading key file `{}`", path.display()))(
            err,
        )),
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
