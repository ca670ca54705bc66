//! Helpers shared by the fuzz targets in `fuzz_targets/`: the text input format of the message
//! targets, and the round-trip invariants every decoded event must satisfy.
//!
//! # Input format of the message targets
//!
//! Text-like, so seed inputs are written by hand (see `fuzz/corpus/<target>/`):
//!
//! ```text
//! ce-specversion: 1.0          <- a header / property line: `name: value`
//! @content-type: text/plain    <- a meta line (leading `@`): the protocol's own slot
//!                              <- the first empty line ends the header block
//! the body, raw bytes to the end of the input
//! ```
//!
//! Lines end with `\n` (a trailing `\r` is dropped). The name is everything before the first
//! `: ` (colon and space; the first `:` when the line has no `: `, so AMQP's
//! `cloudEvents:id: 1` works), the value everything after it minus leading spaces and tabs; a
//! line without `:` is a name with an empty value. Without an empty line the whole input is
//! the body (no headers).

use bytes::Bytes;
use cloudevent::media::{self, Envelope};
use cloudevent::{AttributeValue, Data, Event, http, json};

mod event;
pub use event::sample_event;

/// A message split into meta lines, header/property lines and the body.
#[derive(Debug, Default)]
pub struct Message<'a> {
    /// `@name: value` lines, name without the `@`.
    pub meta: Vec<(&'a [u8], &'a [u8])>,
    /// `name: value` lines, in order, repeats kept.
    pub fields: Vec<(&'a [u8], &'a [u8])>,
    /// Everything after the first empty line.
    pub body: Bytes,
}

impl<'a> Message<'a> {
    /// Splits `data` as described in the crate documentation.
    pub fn split(data: &'a [u8]) -> Self {
        let (head, body) = match find(data, b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => match data.strip_prefix(b"\n") {
                // An input starting with an empty line has no headers.
                Some(rest) => (&data[..0], rest),
                None => (&data[..0], data),
            },
        };
        let mut message = Message {
            body: Bytes::copy_from_slice(body),
            ..Message::default()
        };
        if head.is_empty() {
            return message;
        }
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = find(line, b": ").or_else(|| line.iter().position(|&b| b == b':'));
            let (name, value) = match colon {
                Some(at) => (&line[..at], trim_start(&line[at + 1..])),
                None => (line, &line[line.len()..]),
            };
            match name.strip_prefix(b"@") {
                Some(meta) => message.meta.push((meta, value)),
                None => message.fields.push((name, value)),
            }
        }
        message
    }

    /// The value of the last meta line named `name` (ASCII case ignored).
    pub fn meta(&self, name: &str) -> Option<&'a [u8]> {
        self.meta
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    /// A meta value as text (lossily).
    pub fn meta_str(&self, name: &str) -> Option<String> {
        self.meta(name).map(lossy)
    }

    /// The header lines as text pairs (lossily).
    pub fn text_fields(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(n, v)| (lossy(n), lossy(v)))
            .collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    &b[start..]
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether a `datacontenttype` can travel in a binding's media-type slot in binary mode: a
/// CloudEvents media type there (`application/cloudevents+json` data) announces structured
/// mode instead, so such an event cannot be sent in binary mode over HTTP, MQTT 5, AMQP or
/// Kafka (NATS writes no Content-Type in binary mode and is not affected).
pub fn binary_safe(e: &Event) -> bool {
    e.datacontenttype()
        .is_none_or(|ct| media::envelope(ct) == Envelope::Binary)
}

/// Fails the run with a description of the mismatch.
#[track_caller]
pub fn expect_same(what: &str, back: &Event, expected: &Event, wire: &dyn std::fmt::Debug) {
    if back != expected {
        panic!(
            "{what}: the round trip changed the event\n  expected: {expected:?}\n  got:      {back:?}\n  wire:     {wire:?}"
        );
    }
}

/// Binary-mode header bindings carry every extension as its canonical string.
pub fn with_string_extensions(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).expect("listed");
        event
            .set_extension(name, AttributeValue::String(value.to_canonical_string()))
            .expect("a canonical string is a valid String value");
    }
    event
}

/// The JSON format (and so every structured mode) carries Boolean, Integer and String
/// extensions natively and every other type as its canonical string, and JSON data as a JSON
/// value when it is written as one: whitespace around the document is not part of it.
pub fn as_json_carries(mut event: Event) -> Event {
    let ct = event.datacontenttype().map(str::to_owned);
    // Written as a JSON value (not `data_base64`): JSON or text data under a JSON type or none,
    // binary data only under an explicit JSON type (cloudevent::json's write_data).
    let explicit_json = ct.as_deref().is_some_and(media::is_json);
    if let Some(data) = event.data()
        && (explicit_json || (ct.is_none() && data.kind() != cloudevent::DataKind::Binary))
        && Data::is_json_text(data.as_bytes())
    {
        let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
        let bytes = data.as_bytes();
        let start = bytes.iter().position(|c| !is_ws(c)).unwrap_or(bytes.len());
        let end = bytes.iter().rposition(|c| !is_ws(c)).map_or(start, |i| i + 1);
        if (start, end) != (0, bytes.len()) {
            let trimmed = Data::binary(bytes[start..end].to_vec());
            event
                .set_data(ct.clone(), Some(trimmed))
                .expect("the event's own content type");
        }
    }
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).expect("listed");
        let value = match value {
            v @ (AttributeValue::Boolean(_)
            | AttributeValue::Integer(_)
            | AttributeValue::String(_)) => v,
            other => AttributeValue::String(other.to_canonical_string()),
        };
        event
            .set_extension(name, value)
            .expect("a canonical string is a valid String value");
    }
    event
}

/// Bindings that carry `data` as a payload that is absent when empty (HTTP, NATS, MQTT) cannot
/// tell empty data from no data: empty data comes back as none.
pub fn without_empty_data(mut event: Event) -> Event {
    if event.data().is_some_and(Data::is_empty) {
        let ct = event.datacontenttype().map(str::to_owned);
        event
            .set_data(ct, None)
            .expect("the event's own content type");
    }
    event
}

/// JSON format: `decode(encode(e)) == e` (extension types JSON lacks as strings), alone and
/// as a batch of one.
pub fn check_json(e: &Event) {
    let expected = as_json_carries(e.clone());
    let encoded = json::encode(e);
    match json::decode(&encoded) {
        Ok(back) => expect_same("JSON format", &back, &expected, &lossy(&encoded)),
        Err(err) => panic!(
            "JSON format: the encoding of a valid event does not decode: {err}\n  event: {e:?}\n  json:  {}",
            lossy(&encoded)
        ),
    }
    let batch = json::encode_batch([e]);
    match json::decode_batch(&batch) {
        Ok(back) if back.len() == 1 => {
            expect_same("JSON batch", &back[0], &expected, &lossy(&batch))
        }
        other => panic!("JSON batch of one: {other:?}\n  json: {}", lossy(&batch)),
    }
}

/// HTTP binding, every mode: structured and batched give the event back as the JSON format
/// carries it; binary mode gives it back with string extensions, the implied `Content-Type`
/// made explicit, and empty data as none.
pub fn check_http(e: &Event) {
    check_json(e);
    let json_expected = as_json_carries(e.clone());
    let enc = http::encode_structured(e);
    match http::decode(&enc.headers, enc.body.clone()) {
        Ok(http::Message::Event(back, http::Mode::Structured)) => {
            expect_same("HTTP structured", &back, &json_expected, &enc)
        }
        other => panic!("HTTP structured: {other:?}\n  event: {e:?}\n  wire: {enc:?}"),
    }
    let enc = http::encode(e, http::Mode::Batch);
    match http::decode(&enc.headers, enc.body.clone()) {
        Ok(http::Message::Batch(back)) if back.len() == 1 => {
            expect_same("HTTP batch", &back[0], &json_expected, &enc)
        }
        other => panic!("HTTP batch: {other:?}\n  event: {e:?}\n  wire: {enc:?}"),
    }
    if !binary_safe(e) {
        return;
    }
    let enc = http::encode_binary(e);
    let mut expected = with_string_extensions(e.clone());
    if expected.datacontenttype().is_none()
        && let Some(data) = expected.take_data()
    {
        let implied = http::implied_content_type(&data).to_owned();
        expected
            .set_data(Some(implied), Some(data))
            .expect("an implied content type is valid");
    }
    let expected = without_empty_data(expected);
    match http::decode(&enc.headers, enc.body.clone()) {
        Ok(http::Message::Event(back, http::Mode::Binary)) => {
            expect_same("HTTP binary", &back, &expected, &enc)
        }
        other => panic!("HTTP binary: {other:?}\n  event: {e:?}\n  wire: {enc:?}"),
    }
}

/// An HTTP header map from header lines; lines that are not a valid header name and value
/// are left out.
pub fn header_map(fields: &[(&[u8], &[u8])]) -> ::http::HeaderMap {
    let mut map = ::http::HeaderMap::new();
    for (name, value) in fields {
        if let (Ok(name), Ok(value)) = (
            ::http::HeaderName::from_bytes(name),
            ::http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Every invariant of the HTTP binding, for whatever one HTTP message decoded to.
pub fn check_http_message(message: &http::Message) {
    match message {
        http::Message::Event(e, _) => check_http(e),
        http::Message::Batch(events) => {
            for e in events {
                check_http(e);
            }
            let expected: Vec<Event> = events.iter().cloned().map(as_json_carries).collect();
            let enc = http::encode_batch(events);
            match http::decode(&enc.headers, enc.body.clone()) {
                Ok(http::Message::Batch(back)) if back == expected => {}
                other => panic!("HTTP batch of {}: {other:?}\n  wire: {enc:?}", events.len()),
            }
        }
    }
}

/// With `SPINDLE_FUZZ_TRACE` set, prints what an input decoded to (to check hand-written seeds:
/// `SPINDLE_FUZZ_TRACE=1 fuzz/target/<host>/release/<target> -runs=0 fuzz/corpus/<target>`).
pub fn trace(what: impl FnOnce() -> String) {
    static ON: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("SPINDLE_FUZZ_TRACE").is_some());
    if *ON {
        eprintln!("[trace] {}", what());
    }
}
