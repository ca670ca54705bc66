//! Reading user-supplied files (or standard input) with a size cap.

use std::io::Read;

use anyhow::{Context, Result, bail};

/// Default cap on what a command reads from a file or standard input.
pub const DEFAULT_MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Reads `path` (or standard input for `-`), refusing more than `limit` bytes so that a wrong
/// file cannot exhaust memory.
pub fn read_capped(path: &str, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let read = if path == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .context("cannot read standard input")?
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {path}"))?
            .take(limit + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {path}"))?
    };
    if read as u64 > limit {
        let name = if path == "-" { "standard input" } else { path };
        bail!("{name} is larger than the limit of {limit} bytes (raise it with --max-size)");
    }
    Ok(buf)
}
