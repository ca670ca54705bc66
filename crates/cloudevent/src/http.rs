//! The HTTP protocol binding (cloudevents/bindings/http-protocol-binding.md): binary,
//! structured and batched modes, for requests and responses alike.
//!
//! Pure functions over [`http::HeaderMap`] and a body, so the same code serves the HTTP
//! trigger, HTTP sinks, `spindle send` and the benchmarks, whatever the HTTP stack.

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::attribute::{AttributeValue, Timestamp, check_name};
use crate::data::{Data, DataKind};
use crate::error::{Error, Problem};
use crate::event::{Event, EventBuilder};
use crate::format::Format;
use crate::header;
use crate::json;
use crate::media::{self, CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON, Envelope};

/// How an event travels in an HTTP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Attributes in `ce-` headers, `data` as the body.
    #[default]
    Binary,
    /// The whole event in the body, in the JSON format.
    Structured,
    /// Several events in the body, in the JSON batch format.
    Batch,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(Mode::Binary),
            "structured" => Ok(Mode::Structured),
            "batch" | "batched" => Ok(Mode::Batch),
            other => Err(format!(
                "unknown content mode `{other}` (expected binary, structured or batch)"
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Binary => "binary",
            Mode::Structured => "structured",
            Mode::Batch => "batch",
        })
    }
}

/// What an HTTP message carried.
// A short-lived return value: boxing the single event would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// One event, in binary or structured mode.
    Event(Event, Mode),
    /// A batch (possibly empty).
    Batch(Vec<Event>),
}

impl Message {
    /// The mode the message was in.
    pub fn mode(&self) -> Mode {
        match self {
            Message::Event(_, mode) => *mode,
            Message::Batch(_) => Mode::Batch,
        }
    }

    /// The events, in order.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Message::Event(event, _) => vec![event],
            Message::Batch(events) => events,
        }
    }
}

/// An encoded HTTP message: headers to add and the body.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// `Content-Type` and, in binary mode, the `ce-` headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Decodes the event(s) of an HTTP request or response. The mode is chosen by `Content-Type`
/// (section 3): `application/cloudevents-batch+…` is batched, `application/cloudevents+…`
/// structured, anything else binary.
///
/// A message that is not a CloudEvent at all is [`Error::UnsupportedFormat`] when it declares a
/// `Content-Type` (a structured format other than JSON, or a media type without any
/// `ce-specversion` header: the webhook spec's "notification format has not been understood",
/// answered with 415), and [`Error::NotCloudEvent`] when it declares none and has no
/// `ce-specversion` either.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Message, Error> {
    let content_type = match headers.get(CONTENT_TYPE) {
        Some(v) => Some(v.to_str().map_err(|_| {
            Error::invalid(Problem::attribute(
                "datacontenttype",
                "the Content-Type header is not visible ASCII",
            ))
        })?),
        None => None,
    };
    match content_type.map_or(Envelope::Binary, media::envelope) {
        Envelope::Structured(format) if Format::from_suffix(format).is_some() => {
            let format = Format::from_suffix(format).expect("checked by the guard");
            format
                .decode(&body)
                .map(|e| Message::Event(e, Mode::Structured))
        }
        Envelope::Batch(format)
            if let Some(decoded) =
                Format::from_suffix(format).and_then(|f| f.decode_batch(&body)) =>
        {
            decoded.map(Message::Batch)
        }
        Envelope::Structured(_) | Envelope::Batch(_) => Err(Error::UnsupportedFormat(
            media::essence(content_type.unwrap_or_default()).to_owned(),
        )),
        Envelope::Binary => {
            decode_binary(headers, content_type, body).map(|e| Message::Event(e, Mode::Binary))
        }
    }
}

fn decode_binary(
    headers: &HeaderMap,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Event, Error> {
    let mut b = EventBuilder::default();
    let mut specversion = false;
    // HeaderMap yields the values of a repeated header one after another; when no header has
    // more than one value (as many values as names), there is nothing to compare.
    let any_repeated = headers.len() != headers.keys_len();
    let mut previous: Option<&HeaderName> = None;
    for (name, value) in headers {
        let repeated = any_repeated && previous == Some(name);
        previous = Some(name);
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if repeated {
            b.problem(Problem::attribute(
                attribute,
                format!("the {name} header appears more than once"),
            ));
            continue;
        }
        match attribute {
            "specversion" => specversion = true,
            "id" | "source" | "type" | "dataschema" | "subject" | "time" => {}
            "datacontenttype" => {
                b.problem(Problem::attribute(
                    attribute,
                    "the ce-datacontenttype header must not be used: binary mode carries the media type in Content-Type",
                ));
                continue;
            }
            extension => {
                if let Err(e) = check_name(extension) {
                    b.problem(Problem::attribute(attribute, format!("header {name}: {e}")));
                    continue;
                }
            }
        }
        // A visible-ASCII value (the vectorised check of `to_str`) needs no UTF-8 validation.
        let text = match value.to_str() {
            Ok(text) => header::decode_str(text),
            Err(_) => header::decode(value.as_bytes()),
        };
        match text {
            Ok(text) => b.attribute_str(attribute, &text),
            Err(e) => b.problem(Problem::attribute(attribute, format!("header {name}: {e}"))),
        }
    }
    if !specversion {
        return Err(match content_type {
            // Webhook 2.2: "If the delivery cannot be accepted because the notification format
            // has not been understood, the service MUST respond with status code 415". A
            // declared media type that is neither a CloudEvents format nor accompanied by
            // ce-specversion (binary mode) is such a format; the trigger maps this to 415.
            Some(ct) => Error::UnsupportedFormat(media::essence(ct).to_owned()),
            None => Error::NotCloudEvent(
                "no ce-specversion header (binary mode) and no CloudEvents Content-Type (structured mode)".to_owned(),
            ),
        });
    }
    if let Some(ct) = content_type {
        b.set_datacontenttype(ct.to_owned());
    }
    if !body.is_empty() {
        b.set_data(Data::binary(body));
    }
    b.build_decoded()
}

// Header names and values built at compile time (`from_static` is a `const fn`).
const SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const ID: HeaderName = HeaderName::from_static("ce-id");
const SOURCE: HeaderName = HeaderName::from_static("ce-source");
const TYPE: HeaderName = HeaderName::from_static("ce-type");
const DATASCHEMA: HeaderName = HeaderName::from_static("ce-dataschema");
const SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
const TIME: HeaderName = HeaderName::from_static("ce-time");
const SPECVERSION_1_0: HeaderValue = HeaderValue::from_static("1.0");

/// The header of a widely used extension (the CloudEvents documented extensions), built at
/// compile time; other extensions get theirs built at run time.
fn known_extension_header(name: &str) -> Option<HeaderName> {
    Some(match name {
        "traceparent" => const { HeaderName::from_static("ce-traceparent") },
        "tracestate" => const { HeaderName::from_static("ce-tracestate") },
        "partitionkey" => const { HeaderName::from_static("ce-partitionkey") },
        "sequence" => const { HeaderName::from_static("ce-sequence") },
        "dataref" => const { HeaderName::from_static("ce-dataref") },
        "recordedtime" => const { HeaderName::from_static("ce-recordedtime") },
        "authtype" => const { HeaderName::from_static("ce-authtype") },
        "authid" => const { HeaderName::from_static("ce-authid") },
        _ => return None,
    })
}

fn extension_header(name: &str) -> Option<HeaderName> {
    if let Some(header) = known_extension_header(name) {
        return Some(header);
    }
    // Extension names are [a-z0-9]+, always a valid header name; build it on the stack.
    let mut buf = [0u8; 64];
    let len = 3 + name.len();
    let header = if len <= buf.len() {
        buf[..3].copy_from_slice(b"ce-");
        buf[3..len].copy_from_slice(name.as_bytes());
        HeaderName::from_bytes(&buf[..len])
    } else {
        HeaderName::from_bytes(format!("ce-{name}").as_bytes())
    };
    header.ok()
}

/// Encodes an event in the given mode; [`Mode::Batch`] gives a batch of one.
///
/// An event **without data** asked for in [`Mode::Binary`] is sent in structured mode
/// instead: binary mode would be a request without a body and without `Content-Type`, which
/// the webhook spec forbids (section 2.1: "The `Content-Type` header MUST be carried and the
/// request MUST carry a notification payload [...]. Requests without payloads [...] are not
/// permitted."). Structured mode carries exactly the same event and every binding-conformant
/// receiver reads it from its `Content-Type`. The binary-mode `ce-` headers are written as
/// well, which structured mode allows (HTTP binding 3.2.3: "Implementations MAY include the
/// same HTTP headers as defined for the binary mode"), so whoever routes on them still can.
/// Use [`encode_binary`] to force binary mode.
pub fn encode(event: &Event, mode: Mode) -> Encoded {
    match mode {
        Mode::Binary if event.data().is_none() => {
            let mut headers = encode_binary(event).headers;
            let structured = encode_structured(event);
            headers.extend(structured.headers);
            Encoded {
                headers,
                body: structured.body,
            }
        }
        Mode::Binary => encode_binary(event),
        Mode::Structured => encode_structured(event),
        Mode::Batch => encode_batch(std::slice::from_ref(event)),
    }
}

/// Binary mode: `ce-` headers with percent-encoded canonical values, `Content-Type` from
/// `datacontenttype` (never a `ce-datacontenttype` header), `data` as the body.
///
/// Data without a `datacontenttype` still gets a `Content-Type` (webhook 2.1: it "MUST be
/// carried"), the type the data implies ([`implied_content_type`]); the event itself is not
/// changed.
///
/// Headers are written core attributes first in specification order, then extensions by name
/// (the order of [`Event::attributes`]).
pub fn encode_binary(event: &Event) -> Encoded {
    let extensions = event.extensions();
    let mut headers = HeaderMap::with_capacity(8 + extensions.len());
    let mut values = Values::for_event(event);
    headers.insert(SPECVERSION, SPECVERSION_1_0);
    headers.insert(ID, values.encoded(event.id()));
    headers.insert(SOURCE, values.encoded(event.source()));
    headers.insert(TYPE, values.encoded(event.ty()));
    match (event.datacontenttype(), event.data()) {
        (Some(ct), _) => {
            if let Some(value) = values.verbatim(ct) {
                headers.insert(CONTENT_TYPE, value);
            }
        }
        (None, Some(data)) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(implied_content_type(data)),
            );
        }
        (None, None) => {}
    }
    if let Some(dataschema) = event.dataschema() {
        headers.insert(DATASCHEMA, values.encoded(dataschema));
    }
    if let Some(subject) = event.subject() {
        headers.insert(SUBJECT, values.encoded(subject));
    }
    if let Some(time) = event.time() {
        headers.insert(TIME, values.timestamp(time));
    }
    for (name, value) in extensions {
        let value = match value {
            AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
                values.encoded(s)
            }
            AttributeValue::Timestamp(t) => values.timestamp(t),
            other => values.encoded(&other.to_canonical_string()),
        };
        if let Some(header) = extension_header(name) {
            headers.insert(header, value);
        }
    }
    Encoded {
        headers,
        body: event.data().map(Data::to_bytes).unwrap_or_default(),
    }
}

/// The `Content-Type` binary mode writes for data that has no `datacontenttype`.
///
/// CloudEvents core: "When translating an event message with no `datacontenttype` attribute
/// to a different format or protocol binding, the target `datacontenttype` SHOULD be set
/// explicitly to the implied `datacontenttype` of the source." In the JSON format the implied
/// type of `data` is `application/json`, so JSON data, and opaque bytes that are a JSON
/// document, get that. Other payloads cannot honestly be called JSON (the body carries the
/// bytes, not a JSON encoding of them): a string payload is `text/plain; charset=utf-8`, and
/// other bytes are `application/octet-stream`, the type RFC 9110 section 8.3 lets a
/// recipient assume when none is given.
pub fn implied_content_type(data: &Data) -> &'static str {
    match data.kind() {
        DataKind::Json => media::APPLICATION_JSON,
        DataKind::Text => "text/plain; charset=utf-8",
        DataKind::Binary if Data::is_json_text(data.as_bytes()) => media::APPLICATION_JSON,
        DataKind::Binary => "application/octet-stream",
    }
}

/// The header values of one message, written one after another into a single buffer and
/// handed out as shared slices of it: one allocation for all of them instead of one each.
struct Values(BytesMut);

impl Values {
    fn for_event(event: &Event) -> Self {
        // Room for every value as is; one needing percent-escapes makes the buffer grow.
        let optional = |s: Option<&str>| s.map_or(0, str::len);
        let extensions: usize = event
            .extensions()
            .values()
            .map(|v| v.as_str().map_or(32, str::len))
            .sum();
        let capacity = event.id().len()
            + event.source().len()
            + event.ty().len()
            + optional(event.datacontenttype())
            + optional(event.dataschema())
            + optional(event.subject())
            + event.time().map_or(0, |_| 40)
            + extensions;
        Values(BytesMut::with_capacity(capacity))
    }

    /// A header value holding the percent-encoded `text`.
    fn encoded(&mut self, text: &str) -> HeaderValue {
        header::encode_into(text, &mut self.0);
        // After percent-encoding only U+0021–U+007E remain, which every header value accepts.
        HeaderValue::from_maybe_shared(self.0.split().freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A header value holding a timestamp's canonical form.
    fn timestamp(&mut self, time: &Timestamp) -> HeaderValue {
        match time.canonical_ascii() {
            // Digits and `-:.+TZ`: nothing to percent-encode.
            Some(ascii) => self.0.extend_from_slice(ascii.as_bytes()),
            None => header::encode_into(&time.to_string(), &mut self.0),
        }
        HeaderValue::from_maybe_shared(self.0.split().freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A header value holding `text` as is, if it is a valid header value.
    fn verbatim(&mut self, text: &str) -> Option<HeaderValue> {
        self.0.extend_from_slice(text.as_bytes());
        HeaderValue::from_maybe_shared(self.0.split().freeze()).ok()
    }
}

/// The event format of an HTTP message: the one its structured or batched `Content-Type`
/// names, else JSON (binary mode has none; a reply in structured mode then uses JSON).
pub fn format_of(headers: &HeaderMap) -> Format {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| match media::envelope(ct) {
            Envelope::Structured(f) | Envelope::Batch(f) => Format::from_suffix(f),
            Envelope::Binary => None,
        })
        .unwrap_or_default()
}

/// [`encode`], with structured and batched mode in `format`. A format without a batch form
/// (Avro) writes batches in JSON.
pub fn encode_as(event: &Event, mode: Mode, format: Format) -> Encoded {
    match (mode, format) {
        (_, Format::Json) => encode(event, mode),
        (Mode::Binary, _) if event.data().is_some() => encode_binary(event),
        (Mode::Binary | Mode::Structured, _) => {
            let mut headers = match mode {
                Mode::Binary => encode_binary(event).headers,
                _ => HeaderMap::with_capacity(1),
            };
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
            Encoded {
                headers,
                body: format.encode(event),
            }
        }
        (Mode::Batch, _) => encode_batch_as(std::slice::from_ref(event), format),
    }
}

/// A batch in `format`'s batch form; JSON for a format without one.
pub fn encode_batch_as(events: &[Event], format: Format) -> Encoded {
    match (format.batch_media_type(), format.encode_batch(events)) {
        (Some(media_type), Some(body)) => {
            let mut headers = HeaderMap::with_capacity(1);
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
            Encoded { headers, body }
        }
        _ => encode_batch(events),
    }
}

/// Structured mode: the JSON format, `Content-Type: application/cloudevents+json`.
pub fn encode_structured(event: &Event) -> Encoded {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents+json; charset=utf-8"),
    );
    Encoded {
        headers,
        body: Bytes::from(json::encode(event)),
    }
}

/// Batched mode: the JSON batch format, `Content-Type: application/cloudevents-batch+json`.
pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a Event>) -> Encoded {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents-batch+json; charset=utf-8"),
    );
    Encoded {
        headers,
        body: Bytes::from(json::encode_batch(events)),
    }
}

/// Whether an `Accept` header admits the JSON batch format (so a handler's several results
/// can be returned as one batch).
pub fn accepts_batch(headers: &HeaderMap) -> bool {
    accepts(headers, CLOUDEVENTS_BATCH_JSON)
}

/// Whether an `Accept` header admits the given media type explicitly (wildcards do not count:
/// batched mode must be solicited).
pub fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| media::essence(item).eq_ignore_ascii_case(media_type) && !q_is_zero(item))
}

fn q_is_zero(item: &str) -> bool {
    item.split(';').skip(1).any(|p| {
        p.trim()
            .strip_prefix("q=")
            .and_then(|q| q.trim().parse::<f32>().ok())
            == Some(0.0)
    })
}

/// The structured media type, for callers that build requests by hand.
pub const STRUCTURED_CONTENT_TYPE: &str = CLOUDEVENTS_JSON;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        map
    }

    const REQUIRED: [(&str, &str); 4] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ];

    fn binary(extra: &[(&str, &str)], body: &'static [u8]) -> Result<Event, Error> {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend_from_slice(extra);
        match decode(&headers(&pairs), Bytes::from_static(body))? {
            Message::Event(e, Mode::Binary) => Ok(e),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binary_mode_maps_headers_and_content_type() {
        let e = binary(
            &[
                ("Content-Type", "application/json"),
                ("CE-Subject", "Euro%20%E2%82%AC"),
                ("ce-myext", "\"quoted value\""),
                ("ce-time", "2018-04-05T03:56:24Z"),
            ],
            b"{\"a\":1}",
        )
        .unwrap();
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert_eq!(e.subject(), Some("Euro €"));
        assert_eq!(
            e.extension("myext"),
            Some(&AttributeValue::String("quoted value".into()))
        );
        assert_eq!(e.data().unwrap().as_bytes(), b"{\"a\":1}");
    }

    #[test]
    fn binary_mode_rejects_bad_headers() {
        let err = binary(&[("ce-subject", "%C0%A0")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("subject") && err.contains("UTF-8"), "{err}");
        let err = binary(&[("ce-bad_name", "x")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad_name"), "{err}");
        let err = binary(&[("ce-datacontenttype", "text/plain")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be used"), "{err}");
        let err = binary(&[("ce-id", "2")], b"").unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
    }

    /// HTTP binding 3.1.3.2 requires a single round of percent-decoding; a `%` that begins no
    /// escape is taken literally, and raw UTF-8 bytes are accepted, so binary-mode events from
    /// producers that do not percent-encode (npm `cloudevents` 10) are not lost.
    #[test]
    fn binary_mode_accepts_unencoded_header_values() {
        let e = binary(&[("ce-subject", "50%")], b"").unwrap();
        assert_eq!(e.subject(), Some("50%"));
        let e = binary(&[("ce-subject", "a b%c é")], b"").unwrap();
        assert_eq!(e.subject(), Some("a b%c é"));
    }

    #[test]
    fn missing_specversion_is_not_a_cloudevent() {
        let err = decode(&headers(&[("ce-id", "1")]), Bytes::new()).unwrap_err();
        assert!(matches!(err, Error::NotCloudEvent(_)));
        // Whatever else is wrong with the headers.
        let bad = headers(&[
            ("ce-bad_name", "x"),
            ("ce-datacontenttype", "text/plain"),
            ("ce-id", "1"),
            ("ce-id", "2"),
            ("ce-subject", "%zz"),
        ]);
        let err = decode(&bad, Bytes::new()).unwrap_err();
        assert!(matches!(err, Error::NotCloudEvent(_)), "{err}");
    }

    #[test]
    fn binary_encoding_writes_every_kind_of_value() {
        let t: crate::Timestamp = "2026-11-27T20:42:15.123+01:00".parse().unwrap();
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .time(t)
            .dataschema("https://example.com/s.json")
            .extension(
                "traceparent",
                AttributeValue::String(
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                ),
            )
            .extension("seq", -42)
            .extension("flag", true)
            .extension("when", t)
            .extension("bin", AttributeValue::Binary(vec![0xFB, 0xFF]))
            .extension("link", AttributeValue::UriRef("/a?b=%C3%A9".into()))
            .build()
            .unwrap();
        let enc = encode_binary(&e);
        let names: Vec<&str> = enc.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "ce-specversion",
                "ce-id",
                "ce-source",
                "ce-type",
                "ce-dataschema",
                "ce-time",
                "ce-bin",
                "ce-flag",
                "ce-link",
                "ce-seq",
                "ce-traceparent",
                "ce-when",
            ]
        );
        assert_eq!(enc.headers["ce-specversion"], "1.0");
        assert_eq!(enc.headers["ce-time"], "2026-11-27T20:42:15.123+01:00");
        assert_eq!(enc.headers["ce-when"], "2026-11-27T20:42:15.123+01:00");
        assert_eq!(enc.headers["ce-dataschema"], "https://example.com/s.json");
        assert_eq!(
            enc.headers["ce-traceparent"],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(enc.headers["ce-seq"], "-42");
        assert_eq!(enc.headers["ce-flag"], "true");
        assert_eq!(enc.headers["ce-bin"], "+/8=");
        assert_eq!(enc.headers["ce-link"], "/a?b=%25C3%25A9");
        assert!(!enc.headers.contains_key(CONTENT_TYPE));
        assert!(enc.body.is_empty());
        let back = decode(&enc.headers, enc.body)
            .unwrap()
            .into_events()
            .remove(0);
        assert_eq!(back.time(), Some(&t));
        assert_eq!(
            back.extension("link"),
            Some(&AttributeValue::String("/a?b=%C3%A9".into()))
        );
    }

    #[test]
    fn mode_follows_content_type() {
        let body =
            Bytes::from_static(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#);
        let structured = headers(&[(
            "content-type",
            "application/cloudevents+json; charset=UTF-8",
        )]);
        assert_eq!(
            decode(&structured, body.clone()).unwrap().mode(),
            Mode::Structured
        );
        let batch = headers(&[("content-type", "application/cloudevents-batch+json")]);
        let in_array = Bytes::from(format!("[{}]", std::str::from_utf8(&body).unwrap()));
        assert_eq!(decode(&batch, in_array).unwrap().into_events().len(), 1);
        let avro = headers(&[("content-type", "application/cloudevents+cbor")]);
        assert!(matches!(
            decode(&avro, body),
            Err(Error::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn structured_mode_ignores_ce_headers() {
        let mut pairs = vec![("content-type", "application/cloudevents+json")];
        pairs.push(("ce-id", "from-header"));
        let body =
            Bytes::from_static(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#);
        let e = decode(&headers(&pairs), body)
            .unwrap()
            .into_events()
            .remove(0);
        assert_eq!(e.id(), "1");
    }

    #[test]
    fn binary_encoding_percent_encodes_and_never_writes_ce_datacontenttype() {
        let e = Event::builder()
            .id("a b")
            .source("/s")
            .ty("t")
            .subject("Euro € 😀")
            .extension("n", 7)
            .data_with_type("text/plain", Data::text("hi"))
            .build()
            .unwrap();
        let enc = encode_binary(&e);
        assert_eq!(enc.headers["ce-id"], "a%20b");
        assert_eq!(enc.headers["ce-subject"], "Euro%20%E2%82%AC%20%F0%9F%98%80");
        assert_eq!(enc.headers["ce-n"], "7");
        assert_eq!(enc.headers["content-type"], "text/plain");
        assert!(!enc.headers.contains_key("ce-datacontenttype"));
        assert_eq!(&enc.body[..], b"hi");
        let back = decode(&enc.headers, enc.body)
            .unwrap()
            .into_events()
            .remove(0);
        assert_eq!(back.subject(), e.subject());
        assert_eq!(back.id(), "a b");
    }

    /// Webhook 2.1: "The `Content-Type` header MUST be carried and the request MUST carry a
    /// notification payload of the given content type. Requests without payloads, e.g. where
    /// the notification is entirely expressed in HTTP headers, are not permitted by this
    /// specification." Core, `datacontenttype`: "the target `datacontenttype` SHOULD be set
    /// explicitly to the implied `datacontenttype` of the source."
    #[test]
    fn binary_mode_always_carries_a_content_type_and_a_payload() {
        let builder = || Event::builder().id("1").source("/s").ty("t");
        // JSON bytes without a type: the implied application/json.
        let e = builder()
            .data(Data::binary(&b"{\"a\":1}"[..]))
            .build()
            .unwrap();
        assert_eq!(e.datacontenttype(), None);
        let enc = encode(&e, Mode::Binary);
        assert_eq!(enc.headers[CONTENT_TYPE], "application/json");
        assert_eq!(&enc.body[..], b"{\"a\":1}");
        // Bytes that are not JSON are not called JSON.
        let e = builder()
            .data(Data::binary(&[0xFF, 0x00][..]))
            .build()
            .unwrap();
        let enc = encode(&e, Mode::Binary);
        assert_eq!(enc.headers[CONTENT_TYPE], "application/octet-stream");
        let e = builder().data(Data::text("hello")).build().unwrap();
        let enc = encode(&e, Mode::Binary);
        assert_eq!(enc.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        // No data: structured mode, so there is a payload and a Content-Type.
        let e = builder().subject("x").build().unwrap();
        let enc = encode(&e, Mode::Binary);
        assert_eq!(
            enc.headers[CONTENT_TYPE],
            "application/cloudevents+json; charset=utf-8"
        );
        assert!(!enc.body.is_empty());
        // The binary-mode headers come along (HTTP binding 3.2.3 allows them).
        assert_eq!(enc.headers["ce-id"], "1");
        assert_eq!(enc.headers.get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(
            decode(&enc.headers, enc.body).unwrap(),
            Message::Event(e.clone(), Mode::Structured)
        );
        // A datacontenttype without data travels in the payload, never as the Content-Type.
        let mut typed = e;
        typed.set_data(Some("text/plain".into()), None).unwrap();
        let enc = encode(&typed, Mode::Binary);
        assert_eq!(
            enc.headers[CONTENT_TYPE],
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(
            decode(&enc.headers, enc.body).unwrap(),
            Message::Event(typed, Mode::Structured)
        );
    }

    /// Webhook 2.2: "If the delivery cannot be accepted because the notification format has
    /// not been understood, the service MUST respond with status code `415 Unsupported Media
    /// Type`." A request with a non-CloudEvents Content-Type and no ce-specversion is
    /// `UnsupportedFormat`, which the trigger answers with 415.
    #[test]
    fn a_request_that_is_not_a_cloudevent_is_an_unsupported_format() {
        let plain = headers(&[("content-type", "text/plain")]);
        let err = decode(&plain, Bytes::from_static(b"hello")).unwrap_err();
        assert_eq!(err, Error::UnsupportedFormat("text/plain".into()));
        let json = headers(&[("content-type", "application/json"), ("ce-id", "1")]);
        let err = decode(&json, Bytes::from_static(b"{}")).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat(_)), "{err}");
        // Without any Content-Type there is no format to refuse: still not a CloudEvent.
        let err = decode(&HeaderMap::new(), Bytes::from_static(b"x")).unwrap_err();
        assert!(matches!(err, Error::NotCloudEvent(_)), "{err}");
    }

    #[test]
    fn accept_negotiates_batches_only_when_asked() {
        assert!(accepts_batch(&headers(&[(
            "accept",
            "application/json, application/cloudevents-batch+json"
        )])));
        assert!(!accepts_batch(&headers(&[("accept", "*/*")])));
        assert!(!accepts_batch(&headers(&[(
            "accept",
            "application/cloudevents-batch+json;q=0"
        )])));
    }
}
