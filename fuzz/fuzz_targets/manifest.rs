//! `spindle.toml` (`manifest::Manifest::from_str(text, "/app")`) on arbitrary text. A refusal
//! must carry at least one diagnostic, each with a line inside the text; an accepted manifest
//! must be version 1, refer only to defined components, and parse again to an equal manifest.
//!
//! Input: the manifest text (UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifest::{Manifest, ManifestError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Manifest::from_str(text, "/app");
    spindle_fuzz::trace(|| match &parsed {
        Ok(m) => format!("ok: {} component(s)", m.components.len()),
        Err(e) => format!("{e}"),
    });
    match parsed {
        Ok(m) => {
            assert_eq!(m.manifest_version, 1);
            let t = &m.triggers;
            let referenced = t
                .http
                .iter()
                .filter_map(|x| x.component.as_ref())
                .chain(t.nats.iter().map(|x| &x.component))
                .chain(t.mqtt.iter().map(|x| &x.component))
                .chain(t.amqp.iter().map(|x| &x.component))
                .chain(t.kafka.iter().map(|x| &x.component));
            for id in referenced {
                assert!(
                    m.components.contains_key(id),
                    "trigger names undefined component {id:?}"
                );
            }
            let again = Manifest::from_str(text, "/app").expect("parsed once");
            assert_eq!(again, m, "parsing is not deterministic");
        }
        Err(ManifestError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "a refusal without diagnostics");
            let last_line = text.bytes().filter(|&b| b == b'\n').count() + 1;
            for d in &diagnostics {
                if let Some(line) = d.line {
                    assert!(
                        (1..=last_line).contains(&line),
                        "line {line} outside 1..={last_line}: {d}"
                    );
                }
                assert!(!d.to_string().is_empty());
            }
        }
        Err(other) => panic!("from_str did I/O: {other}"),
    }
});
