//! Syntax checks for the names that appear in a manifest: component ids,
//! variables, environment variables, messaging subjects and topics, origins
//! and origins (outbound-host grants are the engine's `OutboundHost`).
//!
//! Every function returns `Err(reason)` with a sentence fragment that the
//! validator embeds after the offending key, so each rule is stated once.

/// Component ids follow Spin: kebab-case words of lowercase ASCII letters and
/// digits, starting with a letter (`orders`, `order-api-2`). Ids become part
/// of log lines, metrics and URLs, so they are kept boring on purpose.
pub(crate) fn check_component_id(id: &str) -> Result<(), String> {
    let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid component name \"{id}\": use kebab-case (lowercase letters, digits and single hyphens, starting with a letter, e.g. \"order-api\")"
        ))
    }
}

/// Variable and output names are looked up by guest code, so they are
/// restricted to identifiers that are easy to type in any language:
/// lowercase letters, digits and `_`, starting with a letter (like Spin
/// variables). Output names additionally allow `-`.
pub(crate) fn check_variable_name(name: &str, allow_hyphen: bool) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_hyphen && c == '-')
        });
    if ok {
        Ok(())
    } else if allow_hyphen {
        Err(format!(
            "invalid name \"{name}\": use lowercase letters, digits, '_' and '-', starting with a letter"
        ))
    } else {
        Err(format!(
            "invalid name \"{name}\": use lowercase letters, digits and '_', starting with a letter"
        ))
    }
}

/// Environment variable names as POSIX shells accept them.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid environment variable name \"{name}\": use letters, digits and '_', not starting with a digit"
        ))
    }
}

/// A DNS-ish host name label check for origins.
fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A `WebHook-Allowed-Origin` value (CloudEvents HTTP webhook spec §4.1):
/// `*`, a host name, or a host name pattern starting with `*.`.
pub(crate) fn check_origin(origin: &str) -> Result<(), String> {
    let host = origin.strip_prefix("*.").unwrap_or(origin);
    if origin == "*" || is_hostname(host) {
        Ok(())
    } else {
        Err(format!(
            "invalid allowed origin \"{origin}\": expected \"*\", a host name like \"events.example.com\" or a pattern like \"*.example.com\" (no scheme, port or path)"
        ))
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a plausible typo (at most 2 edits, and fewer than the name's
/// length). Used for "did you mean" hints.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= 2 && d < name.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars; inputs are short manifest names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn closest_names() {
        let c = ["orders", "shipping", "audit"];
        assert_eq!(closest("ordrs", c), Some("orders"));
        assert_eq!(closest("shiping", c), Some("shipping"));
        assert_eq!(closest("billing", c), None);
        assert_eq!(closest("a", ["b"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    use super::*;

    #[test]
    fn component_ids() {
        for ok in ["orders", "order-api", "api-2", "a1", "x"] {
            assert!(check_component_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Orders",
            "order_api",
            "-orders",
            "orders-",
            "order--api",
            "2fa",
            "ord ers",
            "ördér",
        ] {
            assert!(check_component_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variable_names() {
        assert!(check_variable_name("api_key", false).is_ok());
        assert!(check_variable_name("api-key", false).is_err());
        assert!(check_variable_name("api-key", true).is_ok());
        assert!(check_variable_name("Key", false).is_err());
        assert!(check_variable_name("_key", false).is_err());
        assert!(check_variable_name("", true).is_err());
    }

    #[test]
    fn env_names() {
        assert!(check_env_name("RUST_LOG").is_ok());
        assert!(check_env_name("_x1").is_ok());
        assert!(check_env_name("1X").is_err());
        assert!(check_env_name("A-B").is_err());
        assert!(check_env_name("").is_err());
    }

    #[test]
    fn origins() {
        for ok in ["*", "example.com", "*.example.com", "localhost"] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://example.com",
            "example.com/x",
            "*example.com",
            "",
            "a..b",
            "ex ample.com",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
