//! Which event format a structured-mode message is in: the one type every binding, sink and
//! setting (`format = "protobuf"`) names formats with.

use bytes::Bytes;

use crate::error::Error;
use crate::event::Event;

/// A CloudEvents event format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `application/cloudevents+json`, the format every implementation speaks. The default.
    #[default]
    Json,
    /// `application/cloudevents+protobuf`.
    Protobuf,
    /// `application/cloudevents+avro` (no batch form).
    Avro,
}

impl Format {
    /// Every format, for messages listing them.
    pub const ALL: [Format; 3] = [Format::Json, Format::Protobuf, Format::Avro];

    /// The format a structured media type's suffix names (`json` in
    /// `application/cloudevents+json`), case-insensitively.
    pub fn from_suffix(suffix: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(suffix))
    }

    /// Its name as settings and media types spell it: `json`, `protobuf`, `avro`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
            Format::Avro => "avro",
        }
    }

    /// The structured-mode `Content-Type` (JSON with its charset, as the bindings write it).
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/cloudevents+json; charset=utf-8",
            Format::Protobuf => "application/cloudevents+protobuf",
            Format::Avro => "application/cloudevents+avro",
        }
    }

    /// The batch `Content-Type`, for the formats that have a batch form.
    pub fn batch_media_type(self) -> Option<&'static str> {
        match self {
            Format::Json => Some("application/cloudevents-batch+json; charset=utf-8"),
            Format::Protobuf => Some("application/cloudevents-batch+protobuf"),
            Format::Avro => None,
        }
    }

    /// Encodes one event.
    pub fn encode(self, event: &Event) -> Bytes {
        Bytes::from(match self {
            Format::Json => crate::json::encode(event),
            Format::Protobuf => crate::protobuf::encode(event),
            Format::Avro => crate::avro::encode(event),
        })
    }

    /// Decodes one event (JSON shares `data` with `input`).
    pub fn decode(self, input: &Bytes) -> Result<Event, Error> {
        match self {
            Format::Json => crate::json::decode_bytes(input),
            Format::Protobuf => crate::protobuf::decode(input),
            Format::Avro => crate::avro::decode(input),
        }
    }

    /// Encodes a batch; `None` for a format without a batch form.
    pub fn encode_batch<'a>(self, events: impl IntoIterator<Item = &'a Event>) -> Option<Bytes> {
        match self {
            Format::Json => Some(Bytes::from(crate::json::encode_batch(events))),
            Format::Protobuf => Some(Bytes::from(crate::protobuf::encode_batch(events))),
            Format::Avro => None,
        }
    }

    /// Decodes a batch; `None` for a format without a batch form.
    pub fn decode_batch(self, input: &Bytes) -> Option<Result<Vec<Event>, Error>> {
        match self {
            Format::Json => Some(crate::json::decode_batch_bytes(input)),
            Format::Protobuf => Some(crate::protobuf::decode_batch(input)),
            Format::Avro => None,
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::from_suffix(s)
            .ok_or_else(|| format!("unknown event format `{s}` (expected json, protobuf or avro)"))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Data;

    fn event() -> Event {
        Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("n", 5)
            .data_with_type(
                "application/json",
                Data::json(&serde_json::json!({"a": "b"})),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn every_binding_carries_every_format_in_structured_mode() {
        use crate::nats::Mode;
        let e = event();
        for format in Format::ALL {
            let m = crate::nats::encode_as(&e, Mode::Structured, format);
            assert_eq!(crate::nats::decode(&m).unwrap(), e, "nats {format}");
            let m = crate::mqtt::encode_as(&e, crate::mqtt::Version::V5, Mode::Structured, format);
            assert_eq!(
                crate::mqtt::decode(&m, crate::mqtt::Version::V5).unwrap(),
                e,
                "mqtt {format}"
            );
            let m = crate::amqp::encode_as(&e, Mode::Structured, format);
            assert_eq!(crate::amqp::decode(&m).unwrap(), e, "amqp {format}");
            let keys = crate::kafka::KeyMapping::None;
            let r = crate::kafka::encode_as(&e, Mode::Structured, keys, format);
            assert_eq!(crate::kafka::decode(&r, keys).unwrap(), e, "kafka {format}");
            let h = crate::http::encode_as(&e, crate::http::Mode::Structured, format);
            assert_eq!(crate::http::format_of(&h.headers), format);
            let back = crate::http::decode(&h.headers, h.body).unwrap();
            assert_eq!(back.into_events(), vec![e.clone()], "http {format}");
        }
    }

    #[test]
    fn batches_use_the_format_when_it_has_a_batch_form() {
        let events = vec![event(), event()];
        let h = crate::http::encode_batch_as(&events, Format::Protobuf);
        assert_eq!(
            h.headers["content-type"],
            "application/cloudevents-batch+protobuf"
        );
        assert_eq!(
            crate::http::decode(&h.headers, h.body)
                .unwrap()
                .into_events(),
            events
        );
        // Avro has none: JSON carries the batch.
        let h = crate::http::encode_batch_as(&events, Format::Avro);
        assert_eq!(crate::http::format_of(&h.headers), Format::Json);
    }

    #[test]
    fn names_parse_and_print() {
        assert_eq!("Protobuf".parse::<Format>(), Ok(Format::Protobuf));
        assert!("xml".parse::<Format>().is_err());
        assert_eq!(Format::Avro.to_string(), "avro");
    }
}
