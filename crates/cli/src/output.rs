//! Writing to standard output when a reader may go away: `pactum pact test ... | head` must
//! end quietly, as Unix tools do, not panic on a closed pipe.

use std::fmt::Display;
use std::io::{ErrorKind, Write as _};

/// The exit status a process killed by SIGPIPE reports in a shell (128 + 13).
const EXIT_BROKEN_PIPE: i32 = 141;

/// Prints one line; a closed pipe ends the program at once with status 141.
pub fn print_line(line: impl Display) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = writeln!(out, "{line}") {
        if err.kind() == ErrorKind::BrokenPipe {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
    }
}
