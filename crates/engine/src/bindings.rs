//! Host bindings generated from `wit/` (the event conversions are in `event`).

use crate::error::ErrorKind;

wasmtime::component::bindgen!({
    world: "handler",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
    with: { "spindle:cloudevents/key-value.store": crate::kv::OpenStore },
});

pub(crate) use spindle::cloudevents::types as wit;

impl From<wit::ErrorKind> for ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        match k {
            wit::ErrorKind::Transient => ErrorKind::Transient,
            wit::ErrorKind::Permanent => ErrorKind::Permanent,
        }
    }
}
