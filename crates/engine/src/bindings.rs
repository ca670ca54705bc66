//! Host bindings generated from `wit/` and the conversions to the public [`Event`].

use crate::error::ErrorKind;
use crate::event as host;

wasmtime::component::bindgen!({
    world: "handler",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
    with: { "spindle:cloudevents/key-value.store": crate::kv::OpenStore },
});

pub(crate) use spindle::cloudevents::types as wit;

impl From<host::Event> for wit::Event {
    fn from(e: host::Event) -> Self {
        wit::Event {
            id: e.id,
            source: e.source,
            specversion: e.specversion,
            type_: e.ty,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            subject: e.subject,
            time: e.time,
            extensions: e
                .extensions
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            data: e.data,
        }
    }
}

impl From<wit::Event> for host::Event {
    fn from(e: wit::Event) -> Self {
        host::Event {
            id: e.id,
            source: e.source,
            specversion: e.specversion,
            ty: e.type_,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            subject: e.subject,
            time: e.time,
            extensions: e
                .extensions
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            data: e.data,
        }
    }
}

impl From<host::AttributeValue> for wit::AttributeValue {
    fn from(v: host::AttributeValue) -> Self {
        match v {
            host::AttributeValue::Boolean(b) => wit::AttributeValue::Boolean(b),
            host::AttributeValue::Integer(i) => wit::AttributeValue::Integer(i),
            host::AttributeValue::String(s) => wit::AttributeValue::String(s),
            host::AttributeValue::Binary(b) => wit::AttributeValue::Binary(b),
            host::AttributeValue::Uri(s) => wit::AttributeValue::Uri(s),
            host::AttributeValue::UriRef(s) => wit::AttributeValue::UriRef(s),
            host::AttributeValue::Timestamp(s) => wit::AttributeValue::Timestamp(s),
        }
    }
}

impl From<wit::AttributeValue> for host::AttributeValue {
    fn from(v: wit::AttributeValue) -> Self {
        match v {
            wit::AttributeValue::Boolean(b) => host::AttributeValue::Boolean(b),
            wit::AttributeValue::Integer(i) => host::AttributeValue::Integer(i),
            wit::AttributeValue::String(s) => host::AttributeValue::String(s),
            wit::AttributeValue::Binary(b) => host::AttributeValue::Binary(b),
            wit::AttributeValue::Uri(s) => host::AttributeValue::Uri(s),
            wit::AttributeValue::UriRef(s) => host::AttributeValue::UriRef(s),
            wit::AttributeValue::Timestamp(s) => host::AttributeValue::Timestamp(s),
        }
    }
}

impl From<wit::ErrorKind> for ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        match k {
            wit::ErrorKind::Transient => ErrorKind::Transient,
            wit::ErrorKind::Permanent => ErrorKind::Permanent,
        }
    }
}
