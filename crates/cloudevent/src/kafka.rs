//! The Kafka protocol binding (cloudevents/bindings/kafka-protocol-binding.md, 1.0.3): binary
//! mode in `ce_` record headers, structured mode in the JSON format, and the key mapping of
//! the Partitioning extension (`partitionkey` ↔ record key, on by default).
//!
//! Pure functions over [`KafkaRecord`], a client-neutral picture of a record, so the transport
//! maps it to and from its client crate and every rule is tested here without a broker.

use bytes::Bytes;

use crate::attribute::check_name;
use crate::data::Data;
use crate::error::{Error, Problem};
use crate::event::{Event, EventBuilder};
use crate::nats::{
    canonical, decode_implied_structured, decode_structured, is_structured,
    reconcile_datacontenttype,
};

pub use crate::nats::Mode;

/// A Kafka record as this binding sees it (topic, partition and offset are routing, kept by
/// the transport).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaRecord {
    /// The record key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Headers in order, repeats kept; Kafka header keys are case-sensitive strings and values
    /// raw bytes.
    pub headers: Vec<(String, Bytes)>,
    /// The record value; `None` is a null value (in binary mode: an event without data, which
    /// a compacted topic treats as a tombstone).
    pub value: Option<Bytes>,
}

impl KafkaRecord {
    /// The first value of a header (names are case-sensitive in Kafka).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Whether the record key is tied to the `partitionkey` attribute (section 3.1).
///
/// Section 3.1: "Every implementation MUST, by default, map the user provided record key to
/// the Kafka record key." A Spindle event has one place for a user-provided key, the
/// Partitioning extension's `partitionkey` (a guest, the SDK, a subscription or another
/// binding sets it), so the default is [`KeyMapping::PartitionKey`], in both directions: a
/// record's key survives a Kafka → handler → Kafka trip, and with it the record's partition
/// (and so its order). [`KeyMapping::None`] opts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyMapping {
    /// The key is left to the caller (encode writes a null key; decode ignores the key).
    None,
    /// The Partitioning extension's key mapper: encode writes the `partitionkey` attribute,
    /// as-is, as the key (the attribute stays in the event too: "A mapping function MUST NOT
    /// modify the CloudEvent"). Decode sets `partitionkey` from the key when the event has
    /// none, so a record keyed by a non-CloudEvents producer keeps its key on its next hop
    /// (the extension allows the attribute to "change, or even be removed" between hops); a
    /// key that cannot be a `partitionkey` (empty, not UTF-8) is left out, never an error.
    #[default]
    PartitionKey,
}

/// The header carrying `datacontenttype` in binary mode and the event format in structured.
pub const CONTENT_TYPE: &str = "content-type";

const PREFIX: &str = "ce_";

/// The Partitioning extension's attribute.
const PARTITIONKEY: &str = "partitionkey";

/// Decodes the event of a Kafka record (section 3).
///
/// - A `content-type` header starting with `application/cloudevents` (any case) selects
///   structured mode; only the JSON format is read.
/// - Otherwise a `ce_specversion` header selects binary mode: every `ce_<name>` header is an
///   attribute, its value UTF-8 text taken as-is (no percent-decoding: the binding defines
///   none), `content-type` is `datacontenttype`, and the value is `data` (a null value is no
///   data, an empty one is empty data).
/// - A record with no `content-type` and no `ce_` header is read as structured: the
///   structured `content-type` is optional (section 3.3.1) and Kafka before 0.11 had no
///   headers. If its value is not JSON the record is [`Error::NotCloudEvent`].
/// - Anything else is [`Error::NotCloudEvent`].
pub fn decode(record: &KafkaRecord, keys: KeyMapping) -> Result<Event, Error> {
    let content_type = match record.header(CONTENT_TYPE) {
        Some(v) => Some(std::str::from_utf8(v).map_err(|_| {
            Error::invalid(Problem::attribute(
                "datacontenttype",
                "the content-type header is not UTF-8",
            ))
        })?),
        None => None,
    };
    let event = if let Some(ct) = content_type
        && is_structured(ct)
    {
        decode_structured("Kafka", ct, record.value.as_ref())
    } else if record.header("ce_specversion").is_some() {
        decode_binary(record, content_type)
    } else {
        match content_type {
            None if !record.headers.iter().any(|(n, _)| n.starts_with(PREFIX)) => {
                decode_implied_structured(
                    "a Kafka record with no ce_specversion and no content-type header is read as structured",
                    &record.value.clone().unwrap_or_default(),
                )
            }
            Some(ct) => Err(Error::NotCloudEvent(format!(
                "content-type `{ct}` is not a CloudEvents format and there is no ce_specversion header (binary mode)"
            ))),
            None => Err(Error::NotCloudEvent(
                "ce_ headers without a ce_specversion header (binary mode)".to_owned(),
            )),
        }
    }?;
    match keys {
        KeyMapping::PartitionKey => with_partition_key(event, record.key.as_ref()),
        KeyMapping::None => Ok(event),
    }
}

fn with_partition_key(mut event: Event, key: Option<&Bytes>) -> Result<Event, Error> {
    if event.extension(PARTITIONKEY).is_some() {
        // The event's own attribute wins: the key may have been chosen by someone else.
        return Ok(event);
    }
    // Only a key that is a valid non-empty String becomes the attribute; any other key is
    // the record's business and does not make a valid event invalid.
    if let Some(value) = key
        .and_then(|key| std::str::from_utf8(key).ok())
        .filter(|text| !text.is_empty())
        .and_then(|text| crate::attribute::AttributeValue::string(text).ok())
    {
        event.set_extension(PARTITIONKEY, value)?;
    }
    Ok(event)
}

fn decode_binary(record: &KafkaRecord, content_type: Option<&str>) -> Result<Event, Error> {
    let mut b = EventBuilder::default();
    let mut seen: Vec<&str> = Vec::with_capacity(record.headers.len());
    let mut datacontenttype: Option<&str> = None;
    for (name, value) in &record.headers {
        let Some(attribute) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if seen.contains(&attribute) {
            b.problem(Problem::attribute(
                attribute,
                format!("the {name} header appears more than once"),
            ));
            continue;
        }
        seen.push(attribute);
        if let Err(e) = check_name(attribute) {
            b.problem(Problem::attribute(attribute, format!("header {name}: {e}")));
            continue;
        }
        match std::str::from_utf8(value) {
            Ok(text) if attribute == "datacontenttype" => datacontenttype = Some(text),
            Ok(text) => b.attribute_str(attribute, text),
            Err(e) => b.problem(Problem::attribute(
                attribute,
                format!(
                    "header {name} is not UTF-8 (invalid byte at {})",
                    e.valid_up_to()
                ),
            )),
        }
    }
    reconcile_datacontenttype(
        &mut b,
        ("content-type header", content_type),
        ("ce_datacontenttype header", datacontenttype),
    );
    if let Some(value) = &record.value {
        b.set_data(Data::binary(value.clone()));
    }
    b.build_decoded()
}

/// Encodes an event as a Kafka record in the given mode.
///
/// Binary mode writes `datacontenttype` as the `content-type` header, every other attribute
/// as a `ce_<name>` header holding its canonical string in UTF-8, and `data` as the value, or
/// a null value when there is no data (section 3.2.2). Structured mode writes
/// `content-type: application/cloudevents+json; charset=utf-8` and the JSON format as the
/// value, which is never null. The key is null unless `keys` is
/// [`KeyMapping::PartitionKey`] and the event has a `partitionkey`.
pub fn encode(event: &Event, mode: Mode, keys: KeyMapping) -> KafkaRecord {
    encode_as(event, mode, keys, crate::Format::Json)
}

/// [`encode`], with structured mode in `format` (the `content-type` header names it).
pub fn encode_as(
    event: &Event,
    mode: Mode,
    keys: KeyMapping,
    format: crate::Format,
) -> KafkaRecord {
    let key = match keys {
        KeyMapping::PartitionKey => event
            .extension(PARTITIONKEY)
            .map(|v| Bytes::from(v.to_canonical_string())),
        KeyMapping::None => None,
    };
    match mode {
        Mode::Binary => KafkaRecord {
            key,
            headers: event
                .attributes()
                .map(|(name, value)| {
                    let name = if name == "datacontenttype" {
                        CONTENT_TYPE.to_owned()
                    } else {
                        format!("{PREFIX}{name}")
                    };
                    (name, Bytes::from(canonical(value)))
                })
                .collect(),
            value: event.data().map(Data::to_bytes),
        },
        Mode::Structured => KafkaRecord {
            key,
            headers: vec![(
                CONTENT_TYPE.to_owned(),
                Bytes::from_static(format.media_type().as_bytes()),
            )],
            value: Some(format.encode(event)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AttributeValue;

    fn record(headers: &[(&str, &[u8])], value: Option<&'static [u8]>) -> KafkaRecord {
        KafkaRecord {
            key: None,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Bytes::copy_from_slice(v)))
                .collect(),
            value: value.map(Bytes::from_static),
        }
    }

    const REQUIRED: [(&str, &[u8]); 4] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t"),
    ];

    fn binary(extra: &[(&str, &[u8])], value: Option<&'static [u8]>) -> Result<Event, Error> {
        let mut headers = REQUIRED.to_vec();
        headers.extend_from_slice(extra);
        decode(&record(&headers, value), KeyMapping::None)
    }

    const JSON_EVENT: &[u8] = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    fn minimal() -> crate::event::EventBuilder {
        Event::builder().id("1").source("/s").ty("t")
    }

    #[test]
    fn spec_binary_example_decodes() {
        // Section 3.2.5 (the quotes around header values there are presentation).
        let mut r = record(
            &[
                ("ce_specversion", b"1.0"),
                ("ce_type", b"com.example.someevent"),
                ("ce_source", b"/mycontext/subcontext"),
                ("ce_id", b"1234-1234-1234"),
                ("ce_time", b"2018-04-05T03:56:24Z"),
                ("content-type", b"application/avro"),
            ],
            Some(b"\x02avro"),
        );
        r.key = Some(Bytes::from_static(b"mykey"));
        let e = decode(&r, KeyMapping::None).unwrap();
        assert_eq!(e.ty(), "com.example.someevent");
        assert_eq!(e.id(), "1234-1234-1234");
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24Z");
        assert_eq!(e.datacontenttype(), Some("application/avro"));
        assert_eq!(e.data().unwrap().as_bytes(), b"\x02avro");
        assert_eq!(e.extension("partitionkey"), None);
    }

    #[test]
    fn spec_structured_example_decodes() {
        // Section 3.3.4.
        let value: &'static [u8] = br#"{"specversion":"1.0","type":"com.example.someevent","source":"/mycontext/subcontext","id":"1234-1234-1234","time":"2018-04-05T03:56:24Z","datacontenttype":"application/xml","data":"<much wow=\"xml\"/>"}"#;
        let e = decode(
            &record(
                &[(
                    "content-type",
                    b"application/cloudevents+json; charset=UTF-8",
                )],
                Some(value),
            ),
            KeyMapping::None,
        )
        .unwrap();
        assert_eq!(e.datacontenttype(), Some("application/xml"));
        assert_eq!(e.data().unwrap().as_str(), Some("<much wow=\"xml\"/>"));
    }

    #[test]
    fn header_values_are_utf8_taken_as_is() {
        let e = binary(
            &[
                ("ce_subject", "Euro%20€".as_bytes()),
                ("ce_myext", b"\"quoted\""),
            ],
            None,
        )
        .unwrap();
        assert_eq!(e.subject(), Some("Euro%20€"));
        assert_eq!(
            e.extension("myext"),
            Some(&AttributeValue::String("\"quoted\"".into()))
        );
        let err = binary(&[("ce_subject", b"\xC0\xA0")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("subject") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn null_value_is_no_data_and_empty_value_is_empty_data() {
        assert!(binary(&[], None).unwrap().data().is_none());
        assert_eq!(binary(&[], Some(b"")).unwrap().data().unwrap().len(), 0);
        let e = minimal().build().unwrap();
        assert_eq!(encode(&e, Mode::Binary, KeyMapping::None).value, None);
        // Structured mode always has a value: not a tombstone.
        assert!(
            encode(&e, Mode::Structured, KeyMapping::None)
                .value
                .is_some()
        );
    }

    #[test]
    fn structured_detection_is_a_case_insensitive_prefix() {
        let r = record(
            &[
                ("content-type", b"Application/CloudEvents+JSON"),
                ("ce_id", b"ignored"),
            ],
            Some(JSON_EVENT),
        );
        assert_eq!(decode(&r, KeyMapping::None).unwrap().id(), "1");
        let avro = record(&[("content-type", b"application/cloudevents+cbor")], None);
        assert!(matches!(
            decode(&avro, KeyMapping::None),
            Err(Error::UnsupportedFormat(_))
        ));
        let null = record(&[("content-type", b"application/cloudevents+json")], None);
        let err = decode(&null, KeyMapping::None).unwrap_err().to_string();
        assert!(err.contains("no payload"), "{err}");
        let batch = record(
            &[("content-type", b"application/cloudevents-batch+json")],
            Some(b"[]"),
        );
        assert!(decode(&batch, KeyMapping::None).is_err());
    }

    #[test]
    fn headerless_records_are_structured_or_not_cloudevents() {
        assert_eq!(
            decode(&record(&[], Some(JSON_EVENT)), KeyMapping::None)
                .unwrap()
                .id(),
            "1"
        );
        for r in [
            record(&[], Some(b"plain")),
            record(&[], None),
            record(&[("content-type", b"text/plain")], Some(b"x")),
            record(&[("ce_id", b"1")], Some(b"x")),
        ] {
            assert!(
                matches!(decode(&r, KeyMapping::None), Err(Error::NotCloudEvent(_))),
                "{r:?}"
            );
        }
    }

    #[test]
    fn bad_headers_are_precise_problems() {
        let err = binary(&[("ce_Bad", b"x")], None).unwrap_err();
        assert_eq!(err.problems()[0].attribute.as_deref(), Some("Bad"));
        let err = binary(&[("ce_id", b"2")], None).unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
        let err = binary(&[("content-type", b"\xFF")], None).unwrap_err();
        assert_eq!(
            err.problems()[0].attribute.as_deref(),
            Some("datacontenttype")
        );
        // Header names are case-sensitive: CE_ID is not a CloudEvents header.
        assert_eq!(binary(&[("CE_ID", b"2")], None).unwrap().id(), "1");
    }

    #[test]
    fn datacontenttype_is_content_type_and_may_be_repeated_consistently() {
        let e = binary(&[("content-type", b"text/plain")], Some(b"x")).unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        let e = binary(&[("ce_datacontenttype", b"text/plain")], Some(b"x")).unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        let err = binary(
            &[
                ("content-type", b"text/plain"),
                ("ce_datacontenttype", b"text/xml"),
            ],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("disagree"), "{err}");
    }

    #[test]
    fn binary_encoding_writes_ce_headers_and_content_type() {
        let e = minimal()
            .subject("Euro € 😀")
            .extension("n", 7)
            .data_with_type("text/plain; charset=utf-8", Data::text("hi"))
            .build()
            .unwrap();
        let r = encode(&e, Mode::Binary, KeyMapping::None);
        assert_eq!(r.header("ce_specversion").unwrap(), "1.0");
        assert_eq!(r.header("ce_subject").unwrap(), "Euro € 😀".as_bytes());
        assert_eq!(r.header("ce_n").unwrap(), "7");
        assert_eq!(
            r.header("content-type").unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(r.header("ce_datacontenttype").is_none());
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn key_mapper_writes_partitionkey_and_keeps_it_in_the_event() {
        let e = minimal()
            .extension("partitionkey", AttributeValue::String("order-7".into()))
            .build()
            .unwrap();
        for mode in [Mode::Binary, Mode::Structured] {
            let r = encode(&e, mode, KeyMapping::PartitionKey);
            assert_eq!(r.key.as_deref(), Some(&b"order-7"[..]));
            assert_eq!(decode(&r, KeyMapping::None).unwrap(), e);
            // Opted out.
            assert_eq!(encode(&e, mode, KeyMapping::None).key, None);
        }
        let keyless = minimal().build().unwrap();
        assert_eq!(
            encode(&keyless, Mode::Binary, KeyMapping::PartitionKey).key,
            None
        );
    }

    #[test]
    fn key_mapper_sets_partitionkey_from_the_key_only_when_missing() {
        let mut r = record(&REQUIRED, None);
        r.key = Some(Bytes::from_static(b"k1"));
        let e = decode(&r, KeyMapping::PartitionKey).unwrap();
        assert_eq!(
            e.extension("partitionkey"),
            Some(&AttributeValue::String("k1".into()))
        );
        assert_eq!(
            decode(&r, KeyMapping::None)
                .unwrap()
                .extension("partitionkey"),
            None
        );
        r.headers
            .push(("ce_partitionkey".into(), Bytes::from_static(b"own")));
        let e = decode(&r, KeyMapping::PartitionKey).unwrap();
        assert_eq!(
            e.extension("partitionkey"),
            Some(&AttributeValue::String("own".into()))
        );
        r.headers.pop();
        // A key that cannot be a partitionkey is left out; the event stays valid.
        for key in [&b"\xFF"[..], b"", b"a\nb"] {
            r.key = Some(Bytes::copy_from_slice(key));
            let e = decode(&r, KeyMapping::PartitionKey).unwrap();
            assert_eq!(e.extension("partitionkey"), None, "{key:?}");
        }
        r.key = None;
        assert_eq!(
            decode(&r, KeyMapping::PartitionKey)
                .unwrap()
                .extension("partitionkey"),
            None
        );
    }

    /// Kafka binding 3.1: "Every implementation MUST, by default, map the user provided
    /// record key to the Kafka record key." The user-provided key of a Spindle event is its
    /// `partitionkey`, so the default mapping writes it as the key and reads a key back into
    /// it; "the aforementioned `partitionkey` attribute MUST still be included with the
    /// transmitted event".
    #[test]
    fn by_default_partitionkey_is_the_record_key_both_ways() {
        assert_eq!(KeyMapping::default(), KeyMapping::PartitionKey);
        let e = minimal()
            .extension("partitionkey", AttributeValue::String("order-7".into()))
            .build()
            .unwrap();
        for mode in [Mode::Binary, Mode::Structured] {
            let r = encode(&e, mode, KeyMapping::default());
            assert_eq!(r.key.as_deref(), Some(&b"order-7"[..]), "{mode}");
            assert_eq!(decode(&r, KeyMapping::default()).unwrap(), e, "{mode}");
        }
        // A record keyed by a producer that sets no partitionkey keeps its key on the next hop.
        let mut r = record(&REQUIRED, None);
        r.key = Some(Bytes::from_static(b"customer-42"));
        let e = decode(&r, KeyMapping::default()).unwrap();
        let again = encode(&e, Mode::Binary, KeyMapping::default());
        assert_eq!(again.key.as_deref(), Some(&b"customer-42"[..]));
    }

    #[test]
    fn structured_encoding_round_trips() {
        let e = minimal()
            .extension("n", 7)
            .data_with_type("application/json", Data::json(&serde_json::json!([1])))
            .build()
            .unwrap();
        let r = encode(&e, Mode::Structured, KeyMapping::None);
        assert_eq!(
            r.header("content-type").unwrap(),
            crate::Format::Json.media_type()
        );
        assert_eq!(r.headers.len(), 1);
        assert_eq!(decode(&r, KeyMapping::None).unwrap(), e);
    }
}
