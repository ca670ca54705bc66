//! Human-readable durations (`"5s"`, `"250ms"`, `"1m30s"`) and sizes
//! (`"64MiB"`, `"1MB"`).
//!
//! Manifests are written by people, so limits are spelled the way people
//! say them. These parsers are deliberately tiny and strict: an ambiguous
//! value such as `"64"` (64 what?) is rejected with an error that says what
//! *would* have been accepted, instead of silently guessing a unit.

use std::fmt;
use std::time::Duration;

/// Why a duration or size string was rejected.
///
/// Each variant carries the offending input so the message stands on its own
/// when it is embedded in a manifest diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The string was empty or only whitespace.
    #[error("empty value (expected {expected})")]
    Empty {
        /// A short description of what would have been accepted.
        expected: &'static str,
    },
    /// A number had no unit after it, so its meaning would be a guess.
    #[error("invalid {what} \"{input}\": missing unit (expected {expected})")]
    MissingUnit {
        /// `"duration"` or `"size"`.
        what: &'static str,
        /// The whole value as written.
        input: String,
        /// A short description of what would have been accepted.
        expected: &'static str,
    },
    /// A unit that is not in the accepted list.
    #[error("invalid {what} \"{input}\": unknown unit \"{unit}\" (expected {expected})")]
    UnknownUnit {
        /// `"duration"` or `"size"`.
        what: &'static str,
        /// The whole value as written.
        input: String,
        /// The unit that was not recognised.
        unit: String,
        /// A short description of what would have been accepted.
        expected: &'static str,
    },
    /// Something other than a whole number where a number was expected.
    #[error(
        "invalid {what} \"{input}\": expected a whole number before the unit (expected {expected})"
    )]
    BadNumber {
        /// `"duration"` or `"size"`.
        what: &'static str,
        /// The whole value as written.
        input: String,
        /// A short description of what would have been accepted.
        expected: &'static str,
    },
    /// The value does not fit in 64 bits.
    #[error("invalid {what} \"{input}\": value is too large")]
    Overflow {
        /// `"duration"` or `"size"`.
        what: &'static str,
        /// The whole value as written.
        input: String,
    },
}

const DURATION_EXPECTED: &str =
    "a number with a unit such as \"5s\", \"250ms\" or \"1m30s\"; units: ns, us, ms, s, m, h, d";
const SIZE_EXPECTED: &str =
    "a number with a unit such as \"64MiB\" or \"1MB\"; units: B, kB, KB, MB, GB, KiB, MiB, GiB";

/// Parses a human duration such as `"5s"`, `"250ms"` or `"1m30s"`.
///
/// Components may be separated by spaces (`"1m 30s"`). Only whole numbers
/// are accepted: `"1.5s"` is better written `"1500ms"`, and refusing
/// fractions keeps the grammar obvious.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let what = "duration";
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(UnitError::Empty {
            expected: DURATION_EXPECTED,
        });
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let (number, unit, tail) = split_number_unit(rest);
        if number.is_empty() {
            return Err(UnitError::BadNumber {
                what,
                input: input.to_owned(),
                expected: DURATION_EXPECTED,
            });
        }
        let n: u64 = number.parse().map_err(|_| UnitError::Overflow {
            what,
            input: input.to_owned(),
        })?;
        let part = match unit {
            "" => {
                return Err(UnitError::MissingUnit {
                    what,
                    input: input.to_owned(),
                    expected: DURATION_EXPECTED,
                });
            }
            "ns" => Some(Duration::from_nanos(n)),
            "us" | "µs" => Some(Duration::from_micros(n)),
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            other if other.starts_with('.') => {
                return Err(UnitError::BadNumber {
                    what,
                    input: input.to_owned(),
                    expected: DURATION_EXPECTED,
                });
            }
            other => {
                return Err(UnitError::UnknownUnit {
                    what,
                    input: input.to_owned(),
                    unit: other.to_owned(),
                    expected: DURATION_EXPECTED,
                });
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| UnitError::Overflow {
                what,
                input: input.to_owned(),
            })?;
        rest = tail.trim_start();
    }
    Ok(total)
}

/// Splits `"250ms 1s"` into `("250", "ms", " 1s")`: leading digits, then the
/// unit (everything up to the next digit or space, after optional spaces).
fn split_number_unit(s: &str) -> (&str, &str, &str) {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, after) = s.split_at(digits_end);
    let after_ws = after.trim_start();
    let unit_end = after_ws
        .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
        .unwrap_or(after_ws.len());
    // A '.' directly after the digits is a fraction: keep it in the unit so
    // the caller can report it as a bad number rather than a bad unit.
    let (unit, tail) = after_ws.split_at(unit_end);
    (number, unit, tail)
}

/// A number of bytes, written in manifests as `"64MiB"`, `"1MB"` or a bare
/// integer.
///
/// A newtype rather than a bare `u64` so the unit is carried by the type and
/// `Display` can print it back the way a person would write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// One kibibyte (1024 bytes).
    pub const KIB: u64 = 1024;
    /// One mebibyte (1024 KiB).
    pub const MIB: u64 = 1024 * 1024;
    /// One gibibyte (1024 MiB).
    pub const GIB: u64 = 1024 * 1024 * 1024;

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    /// Prints the largest binary unit that divides the size exactly, so
    /// `ByteSize(64 * 1024 * 1024)` prints as `64MiB` and round-trips through
    /// [`parse_size`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, scale) in [("GiB", Self::GIB), ("MiB", Self::MIB), ("KiB", Self::KIB)] {
            if n != 0 && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n}B")
    }
}

impl std::str::FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s)
    }
}

/// Parses a human size such as `"64MiB"`, `"1MB"` or `"512 KiB"`.
///
/// Binary units (`KiB`, `MiB`, `GiB`) are powers of 1024; decimal units
/// (`kB`/`KB`, `MB`, `GB`) are powers of 1000, as their names say. A unit is
/// required (`"B"` for bytes) because a bare `"64"` in a string is almost
/// always a forgotten unit; a TOML *integer* is taken as bytes by the
/// manifest instead.
pub fn parse_size(input: &str) -> Result<ByteSize, UnitError> {
    let what = "size";
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(UnitError::Empty {
            expected: SIZE_EXPECTED,
        });
    }
    let (number, unit, tail) = split_number_unit(trimmed);
    if number.is_empty() || unit.starts_with('.') {
        return Err(UnitError::BadNumber {
            what,
            input: input.to_owned(),
            expected: SIZE_EXPECTED,
        });
    }
    if !tail.trim().is_empty() {
        return Err(UnitError::UnknownUnit {
            what,
            input: input.to_owned(),
            unit: format!("{unit}{tail}"),
            expected: SIZE_EXPECTED,
        });
    }
    let n: u64 = number.parse().map_err(|_| UnitError::Overflow {
        what,
        input: input.to_owned(),
    })?;
    let scale: u64 = match unit {
        "" => {
            return Err(UnitError::MissingUnit {
                what,
                input: input.to_owned(),
                expected: SIZE_EXPECTED,
            });
        }
        "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => ByteSize::KIB,
        "MiB" => ByteSize::MIB,
        "GiB" => ByteSize::GIB,
        other => {
            return Err(UnitError::UnknownUnit {
                what,
                input: input.to_owned(),
                unit: other.to_owned(),
                expected: SIZE_EXPECTED,
            });
        }
    };
    n.checked_mul(scale)
        .map(ByteSize)
        .ok_or_else(|| UnitError::Overflow {
            what,
            input: input.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors_are_precise() {
        let e = parse_duration("5").unwrap_err();
        assert!(matches!(e, UnitError::MissingUnit { .. }), "{e}");
        assert!(e.to_string().contains("missing unit"), "{e}");
        let e = parse_duration("5 fortnights").unwrap_err();
        assert!(e.to_string().contains("unknown unit \"fortnights\""), "{e}");
        let e = parse_duration("1.5s").unwrap_err();
        assert!(matches!(e, UnitError::BadNumber { .. }), "{e}");
        assert!(matches!(
            parse_duration("s"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(parse_duration(""), Err(UnitError::Empty { .. })));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("18446744073709551615h"),
            Err(UnitError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("-5s"),
            Err(UnitError::BadNumber { .. })
        ));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB"), Ok(ByteSize(64 * 1024 * 1024)));
        assert_eq!(parse_size("1MB"), Ok(ByteSize(1_000_000)));
        assert_eq!(parse_size("512 KiB"), Ok(ByteSize(512 * 1024)));
        assert_eq!(parse_size("10B"), Ok(ByteSize(10)));
        assert_eq!(parse_size("2kB"), Ok(ByteSize(2000)));
        assert_eq!(parse_size("2KB"), Ok(ByteSize(2000)));
        assert_eq!(parse_size("1GiB"), Ok(ByteSize(1 << 30)));
        assert_eq!(parse_size("3GB"), Ok(ByteSize(3_000_000_000)));
    }

    #[test]
    fn size_errors_are_precise() {
        assert!(matches!(
            parse_size("64"),
            Err(UnitError::MissingUnit { .. })
        ));
        let e = parse_size("64MIB").unwrap_err();
        assert!(e.to_string().contains("unknown unit \"MIB\""), "{e}");
        assert!(matches!(
            parse_size("1.5MiB"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_size("MiB"),
            Err(UnitError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_size("1MiB 2MiB"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999999GiB"),
            Err(UnitError::Overflow { .. })
        ));
        assert!(matches!(parse_size(" "), Err(UnitError::Empty { .. })));
    }

    #[test]
    fn size_display_round_trips() {
        for s in ["64MiB", "1KiB", "3GiB", "1000B", "0B", "1536KiB"] {
            let size = parse_size(s).unwrap();
            assert_eq!(size.to_string(), s);
            assert_eq!(parse_size(&size.to_string()), Ok(size));
        }
        assert_eq!(ByteSize(1_000_000).to_string(), "1000000B");
    }

    #[test]
    fn no_panics_on_odd_input() {
        for s in [
            "µ", "5µs", "٣s", "5 s", "5s5", "ms5", "\u{0}", "1e3s", "+5s",
        ] {
            let _ = parse_duration(s);
            let _ = parse_size(s);
        }
        assert_eq!(parse_duration("5µs"), Ok(Duration::from_micros(5)));
    }
}
