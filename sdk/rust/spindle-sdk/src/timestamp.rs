//! [`Timestamp`]: the CloudEvents `Timestamp` type (RFC 3339) as a native value, for `time`
//! and timestamp extensions, without a date-time dependency in every guest.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A CloudEvents `Timestamp`: an instant, read from and written as RFC 3339
/// (`2026-01-01T10:00:00.5+01:00`).
///
/// The CloudEvents spec: "A strongly-typed programming model that represents a CloudEvent ...
/// MUST be able to convert from and to the canonical string-encoding to the runtime/language
/// native type". [`Timestamp::parse`] (or `str::parse`) validates a string, `Display` writes the
/// canonical form the host writes too: UTC with `Z`, and 0, 3, 6 or 9 fraction digits. The
/// offset a string was written with is not kept (it names the same instant). A leap second
/// (`23:59:60`) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (a leap second counts as the second before it).
    secs: i64,
    /// Nanoseconds within the second; `1_000_000_000..2_000_000_000` during a leap second.
    nanos: u32,
}

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    text: String,
    reason: &'static str,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an RFC 3339 timestamp: {}",
            self.text, self.reason
        )
    }
}

impl std::error::Error for TimestampError {}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count from 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59Z: what RFC 3339's four-digit
/// years can write.
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

impl Timestamp {
    /// Parses an RFC 3339 `date-time` (`T` or `t` between date and time, `Z`, `z` or a
    /// `±HH:MM` offset, any number of fraction digits, nanoseconds kept).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let err = |reason| TimestampError {
            text: text.to_owned(),
            reason,
        };
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let digits = b.get(range)?;
            digits.iter().all(u8::is_ascii_digit).then(|| {
                digits
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
            })
        };
        if b.len() < 20 {
            return Err(err("too short for YYYY-MM-DDTHH:MM:SSZ"));
        }
        let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
            return Err(err("the date is not YYYY-MM-DD"));
        };
        if b[4] != b'-' || b[7] != b'-' {
            return Err(err("the date is not YYYY-MM-DD"));
        }
        if !matches!(b[10], b'T' | b't') {
            return Err(err("date and time must be separated by `T`"));
        }
        let (Some(hour), Some(minute), Some(second)) = (num(11..13), num(14..16), num(17..19))
        else {
            return Err(err("the time is not HH:MM:SS"));
        };
        if b[13] != b':' || b[16] != b':' {
            return Err(err("the time is not HH:MM:SS"));
        }
        let year = i64::from(year);
        if year == 0 {
            return Err(err("year 0000 is out of range"));
        }
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(err("no such date"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("no such time of day"));
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(err("a `.` must be followed by fraction digits"));
            }
            for _ in (i - start)..9 {
                nanos *= 10;
            }
        }
        let offset_secs = match &b[i..] {
            [b'Z' | b'z'] => 0i64,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (Some(h), Some(m)) = (num(i + 1..i + 3), num(i + 4..i + 6)) else {
                    return Err(err("the offset is not ±HH:MM"));
                };
                if h > 23 || m > 59 {
                    return Err(err("the offset is not ±HH:MM"));
                }
                let secs = i64::from(h * 3600 + m * 60);
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return Err(err("it must end in `Z` or an offset ±HH:MM")),
        };
        let leap = second == 60;
        let local = days_from_civil(year, month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second.min(59));
        let secs = local - offset_secs;
        if !(MIN_SECS..=MAX_SECS).contains(&secs) {
            return Err(err("the instant is outside the years 0001 to 9999 in UTC"));
        }
        if leap {
            nanos += 1_000_000_000;
        }
        Ok(Timestamp { secs, nanos })
    }

    /// The instant `secs` seconds and `nanos` nanoseconds after 1970-01-01T00:00:00Z, if RFC
    /// 3339 can write it (years 0001 to 9999) and `nanos` is below one second.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Self> {
        ((MIN_SECS..=MAX_SECS).contains(&secs) && nanos < 1_000_000_000)
            .then_some(Timestamp { secs, nanos })
    }

    /// The current time (the component's wall clock).
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`Timestamp::unix_seconds`] (`1_000_000_000` or more during a leap
    /// second).
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The instant as a [`SystemTime`] (a leap second is its last nanosecond).
    pub fn to_system_time(&self) -> SystemTime {
        let nanos = self.nanos.min(999_999_999);
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs as u64, nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs())
                + Duration::from_nanos(u64::from(nanos))
        }
    }
}

impl From<SystemTime> for Timestamp {
    /// The instant, clamped to what RFC 3339 can write (years 0001 to 9999).
    fn from(t: SystemTime) -> Self {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (secs, 0),
                    n => (secs - 1, 1_000_000_000 - n),
                }
            }
        };
        if secs > MAX_SECS {
            Timestamp {
                secs: MAX_SECS,
                nanos: 999_999_999,
            }
        } else if secs < MIN_SECS {
            Timestamp {
                secs: MIN_SECS,
                nanos: 0,
            }
        } else {
            Timestamp { secs, nanos }
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl fmt::Display for Timestamp {
    /// The canonical form: `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.secs.div_euclid(86_400));
        let tod = self.secs.rem_euclid(86_400);
        let (leap, nanos) = if self.nanos >= 1_000_000_000 {
            (1, self.nanos - 1_000_000_000)
        } else {
            (0, self.nanos)
        };
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            tod / 3600,
            tod / 60 % 60,
            tod % 60 + leap
        )?;
        if nanos == 0 {
        } else if nanos % 1_000_000 == 0 {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        } else if nanos % 1_000 == 0 {
            write!(f, ".{:06}", nanos / 1_000)?;
        } else {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> Self {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CloudEvents spec, type system: a strongly-typed model "MUST be able to convert from and
    /// to the canonical string-encoding"; `Timestamp` is "Date and time expression using the
    /// Gregorian Calendar", string encoding RFC 3339.
    #[test]
    fn converts_from_and_to_the_canonical_string() {
        for (text, canonical) in [
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("2026-01-01T10:00:00.5+01:00", "2026-01-01T09:00:00.500Z"),
            ("2024-02-29t23:59:59.123456z", "2024-02-29T23:59:59.123456Z"),
            (
                "1969-12-31T23:59:59.000000001Z",
                "1969-12-31T23:59:59.000000001Z",
            ),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.9999999999Z",
                "9999-12-31T23:59:59.999999999Z",
            ),
            ("2000-03-01T00:30:00-01:30", "2000-03-01T02:00:00Z"),
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), canonical, "{text}");
            assert_eq!(canonical.parse::<Timestamp>().unwrap(), t, "{text}");
        }
        let t = Timestamp::parse("2026-01-01T00:00:01.25Z").unwrap();
        assert_eq!(
            (t.unix_seconds(), t.subsec_nanos()),
            (1_767_225_601, 250_000_000)
        );
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        assert_eq!(Timestamp::from_unix(1_767_225_601, 250_000_000), Some(t));
        assert_eq!(Timestamp::from_unix(0, 1_000_000_000), None);
        let before = Timestamp::parse("1969-12-31T23:59:59.75Z").unwrap();
        assert_eq!(Timestamp::from(before.to_system_time()), before);
    }

    #[test]
    fn refuses_what_is_not_rfc_3339() {
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01 10:00:00Z",
            "2026-01-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-01-32T10:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T10:60:00Z",
            "2026-01-01T10:00:61Z",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00:00+0100",
            "2026-01-01T10:00:00+24:00",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "+2026-01-01T10:00:00Z",
            "2026-01-01T10:00:00ZZ",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
