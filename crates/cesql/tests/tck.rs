//! Runs the CESQL conformance kit (TCK) shipped in `shared/spec/cesql/tck`.
//!
//! Every case is checked strictly: a parse error where one is expected; else
//! the exact result value (type included) and exactly the expected kind of
//! evaluation error (or none).

use std::path::{Path, PathBuf};

use cesql::{Expression, MapEvent, Value};
use serde::Deserialize;

#[derive(Deserialize)]
struct TckFile {
    name: String,
    tests: Vec<TckCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TckCase {
    name: String,
    expression: String,
    result: Option<serde_json::Value>,
    error: Option<String>,
    event: Option<serde_json::Map<String, serde_json::Value>>,
    event_overrides: Option<serde_json::Map<String, serde_json::Value>>,
}

fn kit_dir() -> PathBuf {
    match std::env::var_os("SPINDLE_SPEC_DIR") {
        Some(dir) => Path::new(&dir).join("cesql").join("tck"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/cesql/tck"),
    }
}

/// A valid event with the required attributes and a few optional ones, used
/// when a case gives no `event`.
fn default_event() -> MapEvent {
    MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "A234-1234-1234".to_string())
        .with("source", "/mycontext".to_string())
        .with("type", "com.example.someevent".to_string())
        .with("datacontenttype", "application/json".to_string())
        .with("subject", "mysubject".to_string())
        .with("time", "2018-04-05T17:31:00Z".to_string())
}

fn expected_value(v: &serde_json::Value) -> Value<'static> {
    match v {
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Integer(
            n.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .expect("32-bit result"),
        ),
        serde_json::Value::String(s) => Value::from(s.clone()),
        other => panic!("unsupported result {other}"),
    }
}

/// Runs one case; `Err` describes a failure.
fn run(case: &TckCase) -> Result<(), String> {
    if case.error.as_deref() == Some("parse") {
        return match Expression::parse(&case.expression) {
            Err(_) => Ok(()),
            Ok(_) => Err("parsed, a parse error was expected".into()),
        };
    }
    let expression =
        Expression::parse(&case.expression).map_err(|e| format!("parse error: {e}"))?;
    let mut event = match &case.event {
        Some(e) => MapEvent::from_json_object(e),
        None => default_event(),
    };
    for (name, value) in case.event_overrides.iter().flatten() {
        event.insert(name.clone(), Value::from_json(value));
    }
    let evaluation = expression.evaluate(&event);
    if let Some(expected) = &case.result {
        let expected = expected_value(expected);
        if evaluation.value != expected {
            return Err(format!(
                "value {:?}, expected {expected:?}",
                evaluation.value
            ));
        }
    }
    let kinds: Vec<&str> = evaluation
        .errors
        .iter()
        .map(|e| e.kind().as_str())
        .collect();
    match &case.error {
        None if !kinds.is_empty() => Err(format!("unexpected errors {:?}", evaluation.errors)),
        Some(kind) if kinds.is_empty() || kinds.iter().any(|k| k != kind) => {
            Err(format!("errors {kinds:?}, expected only {kind}"))
        }
        _ => Ok(()),
    }
}

/// Writes a line to stderr past the test harness's output capture, so a skip
/// or the pass count shows in every run.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn conformance_kit() {
    let dir = kit_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect(),
        Err(err) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CESQL TCK not found at {}: {err}", dir.display());
            }
            say(&format!(
                "SKIPPED: CESQL TCK not found at {} ({err}); set SPINDLE_SPEC_DIR",
                dir.display()
            ));
            return;
        }
    };
    files.sort();
    assert!(!files.is_empty(), "no TCK files in {}", dir.display());

    let (mut total, mut failures) = (0, Vec::new());
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable TCK file");
        let file: TckFile =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in &file.tests {
            total += 1;
            if let Err(why) = run(case) {
                failures.push(format!(
                    "{} / {}: `{}`: {why}",
                    file.name, case.name, case.expression
                ));
            }
        }
    }
    say(&format!(
        "CESQL TCK: {}/{total} cases passed",
        total - failures.len()
    ));
    assert!(
        failures.is_empty(),
        "{} of {total} TCK cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
