//! Media-type checks shared by the formats and bindings.

/// The JSON event format's media type.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
/// The JSON batch format's media type.
pub const CLOUDEVENTS_BATCH_JSON: &str = "application/cloudevents-batch+json";
/// The media type the JSON format implies when `data` is present and `datacontenttype` is not.
pub const APPLICATION_JSON: &str = "application/json";

/// The media type without parameters, trimmed (`Application/JSON; charset=utf-8` →
/// `Application/JSON`). Comparisons on it must ignore ASCII case.
pub fn essence(content_type: &str) -> &str {
    match content_type.bytes().position(|b| b == b';') {
        Some(end) => content_type[..end].trim(),
        None => content_type.trim(),
    }
}

/// Whether a media type declares JSON content: `*/json` or `*/*+json`, parameters ignored,
/// case-insensitive (JSON format 3.1.1).
pub fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    let Some((_, subtype)) = essence.split_once('/') else {
        return false;
    };
    subtype.eq_ignore_ascii_case("json")
        || (subtype.len() > 5
            && subtype.is_char_boundary(subtype.len() - 5)
            && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Which CloudEvents envelope a `Content-Type` announces, if any (HTTP binding section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Not a CloudEvents media type: binary mode.
    Binary,
    /// `application/cloudevents+<format>`: structured mode in that format.
    Structured(&'a str),
    /// `application/cloudevents-batch+<format>`: batched mode in that format.
    Batch(&'a str),
}

/// Classifies a `Content-Type` value into the mode it selects.
pub fn envelope(content_type: &str) -> Envelope<'_> {
    const STRUCTURED: &str = "application/cloudevents";
    if content_type.len() < STRUCTURED.len() {
        // Too short to name either envelope (`application/json`, `text/plain`).
        return Envelope::Binary;
    }
    let essence = essence(content_type);
    const BATCH: &str = "application/cloudevents-batch";
    let lower_starts = |prefix: &str| {
        essence.len() >= prefix.len()
            && essence.is_char_boundary(prefix.len())
            && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if lower_starts(BATCH) {
        Envelope::Batch(essence[BATCH.len()..].trim_start_matches('+'))
    } else if lower_starts(STRUCTURED) {
        Envelope::Structured(essence[STRUCTURED.len()..].trim_start_matches('+'))
    } else {
        Envelope::Binary
    }
}

/// Whether two media types name the same thing: type, subtype and parameter names compared
/// ignoring ASCII case, parameter order and the whitespace around `;` and `=` ignored, quoted
/// parameter values unquoted. Parameter values are compared exactly, except `charset`, whose
/// values are case-insensitive (RFC 2046 section 4.1.2).
///
/// CloudEvents core, `datacontenttype`: "the media type part of the content type MUST be
/// treated in a case-insensitive manner by consumers, along with the attribute names in
/// parameters" (`TEXT/Plain; CharSet=utf-8` is `text/plain; charset=utf-8`).
pub fn same_media_type(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a_essence, mut a_params) = split_params(a);
    let (b_essence, mut b_params) = split_params(b);
    if !a_essence.eq_ignore_ascii_case(b_essence) || a_params.len() != b_params.len() {
        return false;
    }
    a_params.sort();
    b_params.sort();
    a_params == b_params
}

/// The essence and the parameters of a media type, each parameter as (lower-cased name,
/// unquoted value; lower-cased too for `charset`). `;` inside a quoted value does not split.
fn split_params(content_type: &str) -> (&str, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in content_type.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                pieces.push(&content_type[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&content_type[start..]);
    let essence = pieces[0].trim();
    let params = pieces[1..]
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => {
                    let mut out = String::with_capacity(inner.len());
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        out.push(if c == '\\' {
                            chars.next().unwrap_or(c)
                        } else {
                            c
                        });
                    }
                    out
                }
                None => value.to_owned(),
            };
            let value = if name == "charset" {
                value.to_ascii_lowercase()
            } else {
                value
            };
            (name, value)
        })
        .collect();
    (essence, params)
}

/// Checks the shape of a media type per RFC 2046 / RFC 9110: `type "/" subtype *( ";" parameter )`
/// with token characters. Used for `datacontenttype`.
pub fn check_media_type(content_type: &str) -> Result<(), String> {
    // Fast path: `type/subtype` made of token characters, no parameters, in one pass.
    let bytes = content_type.as_bytes();
    let (slashes, non_token) = bytes.iter().fold((0usize, false), |(slashes, bad), &b| {
        let slash = b == b'/';
        (
            slashes + usize::from(slash),
            bad | (!slash & !TOKEN[usize::from(b)]),
        )
    });
    if slashes == 1 && !non_token && bytes.first() != Some(&b'/') && bytes.last() != Some(&b'/') {
        return Ok(());
    }
    if let Some(c) = content_type
        .chars()
        .find(|&c| !(c == '\t' || (' '..='~').contains(&c)))
    {
        return Err(format!(
            "`{content_type}` is not a media type: it contains the character {c:?} (only printable ASCII is allowed)"
        ));
    }
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let Some((ty, subtype)) = essence.split_once('/') else {
        return Err(format!(
            "`{content_type}` is not a media type (expected type/subtype)"
        ));
    };
    if !is_token(ty) || !is_token(subtype) {
        return Err(format!(
            "`{content_type}` is not a media type: type and subtype must be HTTP tokens"
        ));
    }
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        match param.split_once('=') {
            Some((name, value)) if is_token(name.trim()) && !value.trim().is_empty() => {}
            _ => {
                return Err(format!(
                    "`{content_type}` has a malformed parameter `{param}` (expected name=value)"
                ));
            }
        }
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| TOKEN[usize::from(b)])
}

/// RFC 9110 `tchar`, as a lookup table.
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.foo+json"));
        assert!(is_json("text/json"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("application/xml"));
        assert!(!is_json("json"));
        assert!(!is_json("application/+jsonp"));
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            envelope("application/cloudevents+json; charset=UTF-8"),
            Envelope::Structured("json")
        );
        assert_eq!(
            envelope("Application/CloudEvents-Batch+JSON"),
            Envelope::Batch("JSON")
        );
        assert_eq!(
            envelope("application/cloudevents+avro"),
            Envelope::Structured("avro")
        );
        assert_eq!(envelope("application/json"), Envelope::Binary);
        assert_eq!(envelope(""), Envelope::Binary);
    }

    /// CloudEvents core, `datacontenttype`: "As specified in RFC 2045, the media type part of
    /// the content type MUST be treated in a case-insensitive manner by consumers, along with
    /// the attribute names in parameters. For example, a datacontenttype of
    /// text/plain; charset=utf-8 MUST be treated in the same way as TEXT/Plain; CharSet=utf-8."
    #[test]
    fn media_types_compare_case_insensitively_and_whitespace_tolerant() {
        assert!(same_media_type(
            "text/plain; charset=utf-8",
            "TEXT/Plain; CharSet=utf-8"
        ));
        assert!(same_media_type(
            "text/plain;charset=UTF-8",
            "text/plain ; charset=utf-8"
        ));
        assert!(same_media_type(" application/json ", "Application/JSON"));
        assert!(same_media_type("a/b; x=1; y=2", "a/b;y=2;x=1"));
        assert!(same_media_type(
            "multipart/mixed; boundary=\"a;b\"",
            "multipart/mixed;boundary=\"a;b\""
        ));
        assert!(same_media_type("a/b; x=\"v\"", "a/b; x=v"));
        assert!(!same_media_type("text/plain", "text/html"));
        assert!(!same_media_type("text/plain", "text/plain; charset=utf-8"));
        // Other parameter values keep their case.
        assert!(!same_media_type("a/b; boundary=X", "a/b; boundary=x"));
    }

    #[test]
    fn media_type_shape() {
        assert!(check_media_type("application/json").is_ok());
        assert!(check_media_type("text/plain; charset=utf-8").is_ok());
        assert!(check_media_type("json").is_err());
        assert!(check_media_type("/json").is_err());
        assert!(check_media_type("application/").is_err());
        assert!(check_media_type("a/b/c").is_err());
        assert!(check_media_type("a/b c").is_err());
        assert!(check_media_type("").is_err());
        assert!(check_media_type("a/b").is_ok());
        assert!(check_media_type("a b/c").is_err());
        assert!(check_media_type("text/plain; charset").is_err());
        assert!(check_media_type("text/plain; x=é").is_err());
    }
}
