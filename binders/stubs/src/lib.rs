//! Stand-ins for Spindle's host imports (`config`, `log`, `outbound`, `key-value`), linked by
//! `spindle compose` so that a composed CloudEvents component imports nothing but WASI and
//! runs unchanged on any `wasi:http` host (`wasmtime serve`, Spin).
//!
//! What each one does outside Spindle:
//! - `config.get(name)` reads the environment variable `name` (`wasmtime serve --env name=…`);
//! - `log.log` writes one line to stderr: `LEVEL message key=value …`;
//! - `outbound.publish` fails with `failed(…)`: outputs are Spindle's, a plain host has none;
//! - `key-value` stores cannot be opened (`access-denied`).

wit_bindgen::generate!({
    world: "host-stubs",
    path: "../../wit",
    generate_all,
});

use exports::spindle::cloudevents::{config, key_value, log, outbound};
use spindle::cloudevents::types::Event;

struct Stubs;

impl config::Guest for Stubs {
    fn get(name: String) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl log::Guest for Stubs {
    fn log(level: log::Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            log::Level::Trace => "TRACE",
            log::Level::Debug => "DEBUG",
            log::Level::Info => "INFO",
            log::Level::Warn => "WARN",
            log::Level::Error => "ERROR",
        };
        let mut line = format!("{level} {message}");
        for (key, value) in fields {
            line.push_str(&format!(" {key}={value}"));
        }
        eprintln!("{line}");
    }
}

impl outbound::Guest for Stubs {
    fn publish(output: String, _event: Event) -> Result<(), outbound::PublishError> {
        Err(outbound::PublishError::Failed(format!(
            "cannot publish to `{output}`: outputs are bound by Spindle, and this component runs \
             on a plain wasi:http host (composed by `spindle compose`)"
        )))
    }
}

/// A store that can never be opened: no value of it exists.
struct NoStore;

impl key_value::Guest for Stubs {
    type Store = NoStore;
}

impl key_value::GuestStore for NoStore {
    fn open(_label: String) -> Result<key_value::Store, key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn get(&self, _key: String) -> Result<Option<Vec<u8>>, key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn set(&self, _key: String, _value: Vec<u8>) -> Result<(), key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn delete(&self, _key: String) -> Result<(), key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn exists(&self, _key: String) -> Result<bool, key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn get_keys(&self) -> Result<Vec<String>, key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
    fn increment(&self, _key: String, _delta: i64) -> Result<i64, key_value::Error> {
        Err(key_value::Error::AccessDenied)
    }
}

export!(Stubs);
