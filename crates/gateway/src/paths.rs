//! File-path arguments, resolved on this machine before they are decided. The guard normalises
//! a `path` argument lexically (`..`, `.`, `//`); only a process with the file system can see
//! symlinks, so for an upstream that runs here the gateway resolves them first: the longest
//! prefix of the path that exists is canonicalised and the rest appended. The resolved path is
//! what the guard decides and what the upstream receives, so a link inside an allowed folder
//! that points outside it is judged by where it points.

use std::path::{Component, Path, PathBuf};

use pact::{Action, ArgKind};
use serde_json::Value;

use crate::proxy::Args;

/// Most path components resolved in one argument; longer paths are passed on as sent (the
/// guard's `max_bytes` bounds them anyway).
pub const PATH_COMPONENTS_MAX: usize = 256;

/// The names of an action's top-level arguments that hold paths: `path` and sets of `path`.
pub fn path_args(action: &Action) -> Vec<String> {
    action
        .args
        .iter()
        .filter(|arg| match &arg.kind {
            ArgKind::Path => true,
            ArgKind::Set(item) => item.kind == ArgKind::Path,
            _ => false,
        })
        .map(|arg| arg.name.clone())
        .collect()
}

/// `args` with every path in the named arguments resolved; other arguments as they are.
pub fn resolve_args(args: &Args, names: &[String]) -> Args {
    let mut resolved = args.clone();
    for name in names {
        let Some(value) = resolved.get_mut(name) else {
            continue;
        };
        match value {
            Value::String(text) => *text = resolve(text),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Value::String(text) = item {
                        *text = resolve(text);
                    }
                }
            }
            _ => {}
        }
    }
    resolved
}

/// One path with its symlinks resolved. Relative or unusual paths are returned as sent: the
/// guard refuses what is not absolute, with its own message.
pub fn resolve(text: &str) -> String {
    let path = Path::new(text);
    if !path.is_absolute() || text.contains('\0') {
        return text.to_string();
    }
    let lexical = lexical(path);
    let components: Vec<Component<'_>> = lexical.components().collect();
    if components.len() > PATH_COMPONENTS_MAX {
        return text.to_string();
    }
    // The longest existing prefix, canonicalised (symlinks and `..` after them resolved).
    for split in (1..=components.len()).rev() {
        let prefix: PathBuf = components.iter().take(split).collect();
        if let Ok(canonical) = std::fs::canonicalize(&prefix) {
            let mut out = canonical;
            for component in components.iter().skip(split) {
                out.push(component.as_os_str());
            }
            return out.to_string_lossy().into_owned();
        }
    }
    lexical.to_string_lossy().into_owned()
}

/// `.` dropped and `..` applied to what came before, as the guard does.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_out_of_the_folder_is_resolved_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let allowed = root.join("allowed");
        let secret = root.join("secret");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("key.txt"), "k").unwrap();
        std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();

        let through_link = allowed.join("link/key.txt");
        assert_eq!(
            resolve(through_link.to_str().unwrap()),
            secret.join("key.txt").to_str().unwrap()
        );
        // A file that does not exist yet (a write) keeps its missing tail.
        let new_file = allowed.join("link/new/file.txt");
        assert_eq!(
            resolve(new_file.to_str().unwrap()),
            secret.join("new/file.txt").to_str().unwrap()
        );
        // `..` is applied before the file system is asked.
        let escape = format!("{}/../secret/key.txt", allowed.display());
        assert_eq!(resolve(&escape), secret.join("key.txt").to_str().unwrap());
    }

    #[test]
    fn relative_paths_and_other_arguments_are_left_as_sent() {
        assert_eq!(resolve("notes/a.txt"), "notes/a.txt");
        let mut args = Args::new();
        args.insert("path".into(), Value::String("relative".into()));
        args.insert("content".into(), Value::String("/etc/../x".into()));
        args.insert(
            "paths".into(),
            Value::Array(vec![Value::String("/nonexistent-pactum/./a/../b".into())]),
        );
        let resolved = resolve_args(&args, &["path".to_string(), "paths".to_string()]);
        assert_eq!(resolved["path"], "relative");
        assert_eq!(resolved["content"], "/etc/../x");
        assert_eq!(resolved["paths"][0], "/nonexistent-pactum/b");
    }
}
