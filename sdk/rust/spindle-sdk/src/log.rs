//! Structured logging into the runtime's log, tagged with the component's name.
//!
//! Prefer these over `println!`: levels and key/value fields survive (stdout is logged too,
//! but as plain lines).

use crate::__bindings::spindle::cloudevents::log as wit;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very verbose.
    Trace,
    /// Development diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Survived something unexpected.
    Warn,
    /// A failure.
    Error,
}

/// Writes one record with `fields` as key/value pairs.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wit::log(level, message, &fields);
}

/// [`log`] at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(Level::Debug, message, fields)
}

/// [`log`] at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Level::Info, message, fields)
}

/// [`log`] at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, message, fields)
}

/// [`log`] at error level.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(Level::Error, message, fields)
}
