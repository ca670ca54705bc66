//! The conversion between [`Event`](crate::Event) and the `spindle:cloudevents` WIT `event`
//! record, for any Rust bindings of that record.
//!
//! The host (wasmtime's bindings, in the engine) and guests written in Rust (wit-bindgen's,
//! e.g. the stock HTTP binder) each generate their own types from `wit/`, with the same shape:
//! one macro writes the conversion for each, so the two cannot drift apart.

/// Defines, in the calling module, `to_wit(&Event) -> $wit::Event` and
/// `from_wit($wit::Event) -> Result<Event, Error>` for the bindings module `$wit` (the
/// generated `spindle::cloudevents::types`, imported under that name).
///
/// `from_wit` checks what it is given by every rule an event from the wire is checked by:
/// an event a component hands back never skips validation, and an extension it names twice is
/// refused (see [`EventBuilder::listed_extension`](crate::EventBuilder::listed_extension)).
#[macro_export]
macro_rules! wit_conversions {
    ($wit:ident) => {
        /// The WIT form of `event`, for a component.
        pub(crate) fn to_wit(event: &$crate::Event) -> $wit::Event {
            use $crate::AttributeValue as V;
            $wit::Event {
                id: event.id().to_owned(),
                source: event.source().to_owned(),
                specversion: event.specversion().to_owned(),
                type_: event.ty().to_owned(),
                datacontenttype: event.datacontenttype().map(str::to_owned),
                dataschema: event.dataschema().map(str::to_owned),
                subject: event.subject().map(str::to_owned),
                time: event.time().map(ToString::to_string),
                extensions: event
                    .extensions()
                    .iter()
                    .map(|(name, value)| {
                        let value = match value {
                            V::Boolean(b) => $wit::AttributeValue::Boolean(*b),
                            V::Integer(i) => $wit::AttributeValue::Integer(*i),
                            V::String(s) => $wit::AttributeValue::String(s.clone()),
                            V::Binary(b) => $wit::AttributeValue::Binary(b.clone()),
                            V::Uri(s) => $wit::AttributeValue::Uri(s.clone()),
                            V::UriRef(s) => $wit::AttributeValue::UriRef(s.clone()),
                            V::Timestamp(t) => $wit::AttributeValue::Timestamp(t.to_string()),
                        };
                        (name.clone(), value)
                    })
                    .collect(),
                data: event.data().map(|d| d.as_bytes().to_vec()),
            }
        }

        /// An event a component handed over, checked by every rule an event from the wire is.
        pub(crate) fn from_wit(event: $wit::Event) -> Result<$crate::Event, $crate::Error> {
            use $crate::{AttributeType as T, AttributeValue as V};
            let mut b = $crate::EventBuilder::default();
            b.specversion(&event.specversion);
            b.attribute_str("id", &event.id);
            b.attribute_str("source", &event.source);
            b.attribute_str("type", &event.type_);
            for (name, value) in [
                ("datacontenttype", &event.datacontenttype),
                ("dataschema", &event.dataschema),
                ("subject", &event.subject),
                ("time", &event.time),
            ] {
                if let Some(value) = value {
                    b.attribute_str(name, value);
                }
            }
            for (name, value) in event.extensions {
                let typed = match value {
                    $wit::AttributeValue::Boolean(v) => Ok(V::Boolean(v)),
                    $wit::AttributeValue::Integer(v) => Ok(V::Integer(v)),
                    $wit::AttributeValue::String(v) => V::parse(T::String, &v),
                    $wit::AttributeValue::Binary(v) => Ok(V::Binary(v)),
                    $wit::AttributeValue::Uri(v) => V::parse(T::Uri, &v),
                    $wit::AttributeValue::UriRef(v) => V::parse(T::UriRef, &v),
                    $wit::AttributeValue::Timestamp(v) => V::parse(T::Timestamp, &v),
                };
                b.listed_extension(name, typed);
            }
            if let Some(data) = event.data {
                b.set_data($crate::Data::binary(data));
            }
            b.build_decoded()
        }
    };
}
