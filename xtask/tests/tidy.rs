//! Tidy: checks on the codebase itself. The domain crates do no IO (time and randomness come in
//! as values), do not panic on input, and say what each module is for.

use std::path::{Path, PathBuf};

/// Crates that must stay pure: no files, network, environment, threads, clock or randomness.
const PURE_CRATES: &[&str] = &[
    "pact", "guard", "detect", "ledger", "trial", "score", "incident", "signals",
];
/// Crates where `unwrap`, `expect` and `panic!` are not allowed outside tests.
const NO_PANIC_CRATES: &[&str] = &[
    "pact", "guard", "detect", "ledger", "trial", "score", "incident", "signals",
];

const FORBIDDEN_IO: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::thread",
    "std::process",
    "std::io::stdin",
    "SystemTime::now",
    "Instant::now",
    "thread_rng",
    "OsRng",
    "tokio::",
    "println!",
    "eprintln!",
];

const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "rusqlite",
    "sqlx",
    "axum",
    "reqwest",
    "hyper",
    "rand",
    "getrandom",
    "clap",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The non-test part of a source file: everything before the first `#[cfg(test)]`.
fn production_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(idx) => &text[..idx],
        None => text,
    }
}

fn crate_sources(name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join("crates").join(name).join("src"), &mut files);
    files.sort();
    files
}

#[test]
fn domain_crates_do_no_io() {
    let mut problems = Vec::new();
    for name in PURE_CRATES {
        for file in crate_sources(name) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line_idx, line) in production_code(&text).lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for pattern in FORBIDDEN_IO {
                    if code.contains(pattern) {
                        problems.push(format!(
                            "{}:{}: `{pattern}` in a pure crate",
                            file.display(),
                            line_idx + 1
                        ));
                    }
                }
            }
        }
        let manifest = root().join("crates").join(name).join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let dependencies = text.split("[dev-dependencies]").next().unwrap_or("");
            for line in dependencies.lines() {
                let dependency = line.split(['=', '.']).next().unwrap_or("").trim();
                if FORBIDDEN_DEPENDENCIES.contains(&dependency) {
                    problems.push(format!(
                        "{}: pure crate depends on `{dependency}`",
                        manifest.display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "IO in domain crates:\n{}",
        problems.join("\n")
    );
}

#[test]
fn domain_crates_do_not_panic_on_input() {
    let mut problems = Vec::new();
    for name in NO_PANIC_CRATES {
        for file in crate_sources(name) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line_idx, line) in production_code(&text).lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for pattern in [
                    ".unwrap()",
                    ".expect(",
                    "panic!(",
                    "unreachable!(",
                    "todo!(",
                    "unimplemented!(",
                ] {
                    if code.contains(pattern) {
                        problems.push(format!(
                            "{}:{}: `{pattern}` outside tests",
                            file.display(),
                            line_idx + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "possible panics in domain crates:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask").join("src"), &mut files);
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("");
        if !first.starts_with("//!") {
            problems.push(file.display().to_string());
        }
    }
    assert!(
        problems.is_empty(),
        "files without a `//!` doc comment:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_tidy_checks_can_fail() {
    assert_eq!(production_code("a\n#[cfg(test)]\nb"), "a\n");
    assert!(FORBIDDEN_IO
        .iter()
        .any(|pattern| "let t = SystemTime::now();".contains(pattern)));
}
