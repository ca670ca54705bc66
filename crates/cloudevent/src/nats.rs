//! The NATS protocol binding (cloudevents/bindings/nats-protocol-binding.md, 1.0.3): binary
//! mode in NATS 2.2 headers and structured mode in the JSON format.
//!
//! Pure functions over [`NatsMessage`], a client-neutral picture of a NATS message, so the
//! transport maps it to and from its client crate and everything rule-bound is tested here.
//!
//! This module also holds [`Mode`] and the few decoding steps every broker binding shares
//! (structured-mode dispatch, the implied structured mode of metadata-less messages, and the
//! reconciliation of two places `datacontenttype` may come from); [`crate::mqtt`],
//! [`crate::amqp`] and [`crate::kafka`] use them so the four bindings cannot drift apart.

use bytes::Bytes;

use crate::attribute::check_name;
use crate::data::Data;
use crate::error::{Error, Problem};
use crate::event::{AttributeRef, Event, EventBuilder};
use crate::header;
use crate::json;
use crate::media::{self, Envelope};

/// How an event travels in a broker message (NATS, MQTT, AMQP, Kafka): the one
/// [`ContentMode`](crate::ContentMode). None of the broker bindings defines a batched mode.
pub use crate::ContentMode as Mode;

/// A NATS message as this binding sees it: headers and payload (the subject is routing, not
/// part of the event, so the transport keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatsMessage {
    /// Headers in order, repeats kept. Names are case-insensitive (NATS ADR-4); values are
    /// the header text as sent.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Bytes,
}

impl NatsMessage {
    /// The first value of a header, its name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The header announcing the structured mode's event format.
pub const CONTENT_TYPE: &str = "Content-Type";

const PREFIX: &str = "ce-";

/// Decodes the event of a NATS message (section 3).
///
/// - A `Content-Type` header starting with `application/cloudevents` (any case) selects
///   structured mode; only the JSON format is read.
/// - Otherwise a `ce-specversion` header selects binary mode: every `ce-<name>` header is an
///   attribute (names case-insensitive, values percent-decoded as in HTTP), `ce-datacontenttype`
///   is the media type (a plain `Content-Type` header is accepted as well, and must agree with
///   it), and the payload is `data` (an empty payload is no data).
/// - A message with neither headers of that kind nor any `Content-Type` is read as structured,
///   the only mode before NATS 2.2 (and what publishers that set no headers send); when its
///   payload is not JSON the message is [`Error::NotCloudEvent`].
/// - Anything else is [`Error::NotCloudEvent`].
pub fn decode(message: &NatsMessage) -> Result<Event, Error> {
    let content_type = message.header(CONTENT_TYPE);
    if let Some(ct) = content_type
        && is_structured(ct)
    {
        return decode_structured("NATS", ct, Some(&message.payload));
    }
    let has_prefix = |name: &str| {
        name.len() >= PREFIX.len()
            && name.is_char_boundary(PREFIX.len())
            && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    };
    if message.header("ce-specversion").is_some() {
        return decode_binary(message, content_type, has_prefix);
    }
    match content_type {
        None if !message.headers.iter().any(|(n, _)| has_prefix(n)) => decode_implied_structured(
            "a NATS message with no ce-specversion and no Content-Type header is read as structured",
            &message.payload,
        ),
        Some(ct) => Err(Error::NotCloudEvent(format!(
            "Content-Type `{ct}` is not a CloudEvents format and there is no ce-specversion header (binary mode)"
        ))),
        None => Err(Error::NotCloudEvent(
            "ce- headers without a ce-specversion header (binary mode)".to_owned(),
        )),
    }
}

fn decode_binary(
    message: &NatsMessage,
    content_type: Option<&str>,
    has_prefix: impl Fn(&str) -> bool,
) -> Result<Event, Error> {
    let mut b = EventBuilder::default();
    let mut seen: Vec<String> = Vec::with_capacity(message.headers.len());
    let mut datacontenttype: Option<String> = None;
    for (name, value) in &message.headers {
        if !has_prefix(name) {
            continue;
        }
        // Header names are case-insensitive: `CE-Id` is `ce-id`.
        let attribute = name[PREFIX.len()..].to_ascii_lowercase();
        if seen.contains(&attribute) {
            b.problem(Problem::attribute(
                attribute,
                format!("the {name} header appears more than once"),
            ));
            continue;
        }
        seen.push(attribute.clone());
        if let Err(e) = check_name(&attribute) {
            b.problem(Problem::attribute(attribute, format!("header {name}: {e}")));
            continue;
        }
        match header::decode(value.as_bytes()) {
            Ok(text) if attribute == "datacontenttype" => datacontenttype = Some(text.into_owned()),
            Ok(text) => b.attribute_str(&attribute, &text),
            Err(e) => b.problem(Problem::attribute(attribute, format!("header {name}: {e}"))),
        }
    }
    reconcile_datacontenttype(
        &mut b,
        ("ce-datacontenttype header", datacontenttype.as_deref()),
        ("Content-Type header", content_type),
    );
    if !message.payload.is_empty() {
        b.set_data(Data::binary(message.payload.clone()));
    }
    b.build_decoded()
}

/// Encodes an event as a NATS message in the given mode.
///
/// Binary mode writes every attribute, `datacontenttype` included, as a `ce-<name>` header
/// with its canonical string percent-encoded (section 3.1.3), and `data` as the payload. It
/// deliberately writes no `Content-Type`: a `datacontenttype` of `application/cloudevents+json`
/// (an event carried as data) would otherwise make receivers read the message as structured.
/// Structured mode writes `Content-Type: application/cloudevents+json; charset=utf-8` and the
/// JSON format as the payload.
pub fn encode(event: &Event, mode: Mode) -> NatsMessage {
    encode_as(event, mode, crate::Format::Json)
}

/// [`encode`], with structured mode in `format` (`Content-Type` names it).
pub fn encode_as(event: &Event, mode: Mode, format: crate::Format) -> NatsMessage {
    match mode {
        Mode::Binary => NatsMessage {
            headers: event
                .attributes()
                .map(|(name, value)| {
                    (
                        format!("{PREFIX}{name}"),
                        header::encode(&canonical(value)).into_owned(),
                    )
                })
                .collect(),
            payload: event.data().map(Data::to_bytes).unwrap_or_default(),
        },
        Mode::Structured => NatsMessage {
            headers: vec![(CONTENT_TYPE.to_owned(), format.media_type().to_owned())],
            payload: format.encode(event),
        },
    }
}

/// The canonical string of an attribute, borrowing nothing (most are short).
pub(crate) fn canonical(value: AttributeRef<'_>) -> String {
    match value {
        AttributeRef::Str(s) => s.to_owned(),
        other => other.to_canonical_string(),
    }
}

// ---- Steps shared by the broker bindings -------------------------------------------------

/// Whether a content type announces a CloudEvents format (structured or batched mode): the
/// `application/cloudevents` prefix, matched case-insensitively, that every binding uses.
pub(crate) fn is_structured(content_type: &str) -> bool {
    media::envelope(content_type) != Envelope::Binary
}

/// Decodes a structured-mode payload whose content type [`is_structured`]: the JSON, Protobuf
/// and Avro formats are read; other formats are [`Error::UnsupportedFormat`]; the batch format is refused because
/// no broker binding defines a batched mode. `None` is a message without any payload (a
/// null Kafka value, an AMQP message without a `data` section), which structured mode cannot
/// be.
pub(crate) fn decode_structured(
    binding: &str,
    content_type: &str,
    payload: Option<&Bytes>,
) -> Result<Event, Error> {
    let essence = media::essence(content_type);
    match media::envelope(content_type) {
        Envelope::Batch(_) => Err(Error::invalid(Problem::event(format!(
            "`{essence}`: the {binding} binding has no batched mode, send one event per message"
        )))),
        Envelope::Structured(format) => match (crate::Format::from_suffix(format), payload) {
            (None, _) => Err(Error::UnsupportedFormat(essence.to_owned())),
            (Some(format), Some(payload)) => format.decode(payload),
            (Some(_), None) => Err(Error::invalid(Problem::event(format!(
                "the {binding} message announces structured mode (`{essence}`) but has no payload"
            )))),
        },
        Envelope::Binary => match payload {
            Some(payload) => json::decode_bytes(payload),
            None => Err(Error::invalid(Problem::event(format!(
                "the {binding} message announces structured mode (`{essence}`) but has no payload"
            )))),
        },
    }
}

/// Decodes a message that carries no CloudEvents metadata at all as structured JSON, the
/// mode its protocol's older versions imply (NATS before 2.2, MQTT 3.1.1, Kafka before
/// 0.11). A payload that is not a JSON object, or one without `specversion`, is
/// [`Error::NotCloudEvent`] rather than a syntax or validation error: such a message (plain
/// text, a sensor's JSON reading) was never meant to be an event, just as a binary-mode
/// message without `specversion` is not one.
pub(crate) fn decode_implied_structured(why: &str, payload: &Bytes) -> Result<Event, Error> {
    json::decode_bytes(payload).map_err(|e| match e {
        Error::MalformedJson { .. } => {
            Error::NotCloudEvent(format!("{why}, but its payload is not a JSON object ({e})"))
        }
        Error::Invalid(problems) if problems.iter().any(is_missing_specversion) => {
            Error::NotCloudEvent(format!("{why}, but its JSON payload has no specversion"))
        }
        other => other,
    })
}

fn is_missing_specversion(problem: &Problem) -> bool {
    // The exact problem `EventBuilder::build_decoded` reports.
    problem.attribute.as_deref() == Some("specversion")
        && problem.message == "required attribute is missing"
}

/// Sets `datacontenttype` from the two places a binding may carry it, reporting a conflict:
/// the binding's own media-type slot (`Content Type`, `content-type`) and an attribute-style
/// header or property some producers also write. Either alone is taken; when both are present
/// they must name the same media type ([`media::same_media_type`]: case and whitespace do not
/// matter), and the first is kept.
pub(crate) fn reconcile_datacontenttype(
    b: &mut EventBuilder,
    first: (&str, Option<&str>),
    second: (&str, Option<&str>),
) {
    match (first.1, second.1) {
        (Some(x), Some(y)) if !media::same_media_type(x, y) => b.problem(Problem::attribute(
            "datacontenttype",
            format!(
                "the {} (`{x}`) and the {} (`{y}`) disagree",
                first.0, second.0
            ),
        )),
        (Some(ct), _) | (None, Some(ct)) => b.set_datacontenttype(ct.to_owned()),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AttributeValue;

    fn message(headers: &[(&str, &str)], payload: &'static [u8]) -> NatsMessage {
        NatsMessage {
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            payload: Bytes::from_static(payload),
        }
    }

    const REQUIRED: [(&str, &str); 4] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ];

    fn binary(extra: &[(&str, &str)], payload: &'static [u8]) -> Result<Event, Error> {
        let mut headers = REQUIRED.to_vec();
        headers.extend_from_slice(extra);
        decode(&message(&headers, payload))
    }

    const JSON_EVENT: &[u8] = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    #[test]
    fn spec_binary_example_decodes() {
        // Section 3.1.4.
        let e = decode(&message(
            &[
                ("ce-specversion", "1.0"),
                ("ce-type", "com.example.someevent"),
                ("ce-time", "2018-04-05T03:56:24Z"),
                ("ce-id", "1234-1234-1234"),
                ("ce-source", "/mycontext/subcontext"),
                ("ce-datacontenttype", "application/json"),
            ],
            b"{\"a\":1}",
        ))
        .unwrap();
        assert_eq!(e.ty(), "com.example.someevent");
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24Z");
        assert_eq!(e.id(), "1234-1234-1234");
        assert_eq!(e.source(), "/mycontext/subcontext");
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert_eq!(e.data().unwrap().as_bytes(), b"{\"a\":1}");
    }

    #[test]
    fn spec_structured_example_decodes_with_or_without_content_type() {
        let with = decode(&message(
            &[("content-type", "application/cloudevents+json")],
            JSON_EVENT,
        ))
        .unwrap();
        assert_eq!(with.id(), "1");
        // Section 3: before NATS 2.2 there are no headers and the mode is always structured.
        let without = decode(&message(&[], JSON_EVENT)).unwrap();
        assert_eq!(without, with);
    }

    #[test]
    fn header_values_are_percent_decoded_and_names_case_insensitive() {
        let e = binary(
            &[
                ("CE-Subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
                ("ce-myext", "\"quoted value\""),
            ],
            b"",
        )
        .unwrap();
        assert_eq!(e.subject(), Some("Euro € 😀"));
        assert_eq!(
            e.extension("myext"),
            Some(&AttributeValue::String("quoted value".into()))
        );
        assert!(e.data().is_none());
    }

    #[test]
    fn structured_detection_is_a_case_insensitive_prefix() {
        let e = decode(&message(
            &[(
                "CONTENT-TYPE",
                "Application/CloudEvents+JSON; charset=UTF-8",
            )],
            JSON_EVENT,
        ))
        .unwrap();
        assert_eq!(e.id(), "1");
        // ce- headers are ignored in structured mode.
        let e = decode(&message(
            &[
                ("content-type", "application/cloudevents+json"),
                ("ce-id", "header"),
            ],
            JSON_EVENT,
        ))
        .unwrap();
        assert_eq!(e.id(), "1");
    }

    #[test]
    fn other_formats_and_batches_are_refused() {
        let avro = message(&[("content-type", "application/cloudevents+cbor")], b"");
        assert!(matches!(decode(&avro), Err(Error::UnsupportedFormat(_))));
        let batch = message(
            &[("content-type", "application/cloudevents-batch+json")],
            b"[]",
        );
        let err = decode(&batch).unwrap_err().to_string();
        assert!(err.contains("no batched mode"), "{err}");
    }

    #[test]
    fn messages_without_cloudevents_metadata_are_not_cloudevents() {
        let plain = message(&[("content-type", "text/plain")], b"hello");
        assert!(matches!(decode(&plain), Err(Error::NotCloudEvent(_))));
        let partial = message(&[("ce-id", "1")], b"");
        assert!(matches!(decode(&partial), Err(Error::NotCloudEvent(_))));
        let headerless = message(&[], b"hello");
        assert!(matches!(decode(&headerless), Err(Error::NotCloudEvent(_))));
        // Headerless JSON without specversion is someone else's JSON...
        let reading = message(&[], br#"{"temperature":20}"#);
        assert!(matches!(decode(&reading), Err(Error::NotCloudEvent(_))));
        let array = message(&[], br#"[1]"#);
        assert!(matches!(decode(&array), Err(Error::NotCloudEvent(_))));
        // ...but with specversion it is an event, and its problems are reported.
        let headerless_json = message(&[], br#"{"specversion":"1.0"}"#);
        let err = decode(&headerless_json).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert_eq!(err.problems().len(), 3, "{err}");
    }

    #[test]
    fn datacontenttype_comes_from_ce_header_or_content_type() {
        let e = binary(&[("Content-Type", "text/plain")], b"x").unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        let e = binary(
            &[
                ("ce-datacontenttype", "text/plain;%20charset=utf-8"),
                ("content-type", "text/plain; charset=utf-8"),
            ],
            b"x",
        )
        .unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain; charset=utf-8"));
        let err = binary(
            &[
                ("ce-datacontenttype", "text/plain"),
                ("content-type", "application/json"),
            ],
            b"x",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("disagree"), "{err}");
    }

    /// CloudEvents core, `datacontenttype`: "the media type part of the content type MUST be
    /// treated in a case-insensitive manner by consumers, along with the attribute names in
    /// parameters." The two copies NATS, Kafka, MQTT and AMQP may carry agree when they differ
    /// only in case or in the whitespace around `;`.
    #[test]
    fn datacontenttype_copies_agree_ignoring_case_and_whitespace() {
        let e = binary(
            &[
                ("ce-datacontenttype", "text/plain;%20charset=utf-8"),
                ("content-type", "TEXT/Plain;CharSet=UTF-8"),
            ],
            b"x",
        )
        .unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain; charset=utf-8"));
        let e = binary(
            &[
                ("ce-datacontenttype", "Text/Plain"),
                ("content-type", "text/plain"),
            ],
            b"x",
        )
        .unwrap();
        assert_eq!(e.datacontenttype(), Some("Text/Plain"));
    }

    #[test]
    fn bad_headers_are_precise_problems() {
        let err = binary(&[("ce-bad_name", "x")], b"").unwrap_err();
        assert_eq!(err.problems()[0].attribute.as_deref(), Some("bad_name"));
        let err = binary(&[("ce-subject", "%C0%A0")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("subject") && err.contains("UTF-8"), "{err}");
        let err = binary(&[("CE-ID", "2")], b"").unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
        let err = binary(&[("ce-time", "yesterday")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("time"), "{err}");
    }

    #[test]
    fn binary_encoding_uses_ce_headers_for_everything() {
        let e = Event::builder()
            .id("a b")
            .source("/s")
            .ty("t")
            .subject("Euro € 😀")
            .extension("n", 7)
            .data_with_type("text/plain; charset=utf-8", Data::text("hi"))
            .build()
            .unwrap();
        let m = encode(&e, Mode::Binary);
        assert_eq!(m.header("ce-specversion"), Some("1.0"));
        assert_eq!(m.header("ce-id"), Some("a%20b"));
        assert_eq!(
            m.header("ce-subject"),
            Some("Euro%20%E2%82%AC%20%F0%9F%98%80")
        );
        assert_eq!(m.header("ce-n"), Some("7"));
        assert_eq!(
            m.header("ce-datacontenttype"),
            Some("text/plain;%20charset=utf-8")
        );
        assert_eq!(m.header("content-type"), None);
        assert_eq!(&m.payload[..], b"hi");
        let back = decode(&m).unwrap();
        // Headers carry strings: the Integer extension comes back as its canonical string.
        assert_eq!(
            back.extension("n"),
            Some(&AttributeValue::String("7".into()))
        );
        assert_eq!((back.id(), back.subject()), (e.id(), e.subject()));
        assert_eq!(back.datacontenttype(), e.datacontenttype());
        assert_eq!(back.data(), e.data());
    }

    #[test]
    fn an_event_as_data_stays_binary() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .data_with_type("application/cloudevents+json", Data::binary(JSON_EVENT))
            .build()
            .unwrap();
        let back = decode(&encode(&e, Mode::Binary)).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn structured_encoding_sets_content_type() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        let m = encode(&e, Mode::Structured);
        assert_eq!(
            m.header("content-type"),
            Some(crate::Format::Json.media_type())
        );
        assert_eq!(m.headers.len(), 1);
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("binary".parse::<Mode>(), Ok(Mode::Binary));
        assert_eq!("structured".parse::<Mode>(), Ok(Mode::Structured));
        assert!("batch".parse::<Mode>().is_err());
        assert_eq!(Mode::Structured.to_string(), "structured");
    }
}
