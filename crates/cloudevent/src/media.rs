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
