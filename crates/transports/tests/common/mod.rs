//! Helpers shared by the broker tests: reachability checks, unique names, sample events,
//! bounded waits, and Python producers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use cloudevent::{AttributeValue, Data, Event};
use transports::Endpoint;
use transports::{Delivery, Receiver};

/// Generous: the machine is a loaded 2-core box shared with other builds.
pub const WAIT: Duration = Duration::from_secs(30);

/// Panics with the fix when a broker is down.
pub fn require(port: u16, name: &str) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!("{name} is not reachable on 127.0.0.1:{port}: run `bash scripts/services.sh` first");
    }
}

pub fn endpoint(port: u16) -> Endpoint {
    Endpoint::plain("127.0.0.1", port)
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// An event with every optional attribute and extensions of several types.
pub fn sample(id: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/spindle/tests")
        .ty("com.example.transport.test")
        .subject("Euro € sign and spaces")
        .time("2026-11-27T10:11:12.345Z".parse().unwrap())
        .dataschema("https://example.com/schema.json")
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"n": 1, "text": "héllo"})),
        )
        .extension(
            "myext",
            AttributeValue::string("value with spaces").unwrap(),
        )
        .extension("count", 42)
        .extension("flag", true)
        .extension("partitionkey", AttributeValue::string("key-1").unwrap())
        .build()
        .unwrap()
}

/// The event as header-based binary modes carry it: extensions as strings.
pub fn stringly(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).unwrap();
        event
            .set_extension(name, AttributeValue::String(value.to_canonical_string()))
            .unwrap();
    }
    event
}

/// The next delivery, or a panic after [`WAIT`].
pub async fn next(rx: &mut Receiver) -> Delivery {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no delivery within 30 s")
        .expect("receiver closed")
}

/// Asserts that nothing arrives for `quiet`.
pub async fn nothing_for(rx: &mut Receiver, quiet: Duration) {
    if let Ok(Some(d)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected delivery of event {}", d.event.id());
    }
}

/// Makes sure Python modules are importable, installing their packages with pip once.
pub fn python_with(modules: &[&str], packages: &[&str]) {
    let import = format!("import {}", modules.join(", "));
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    if ok(Command::new("python3").args(["-c", &import])) {
        return;
    }
    let mut args = vec!["-m", "pip", "install", "-q"];
    args.extend_from_slice(packages);
    if !ok(Command::new("python3").args(&args)) {
        args.push("--break-system-packages");
        assert!(
            ok(Command::new("python3").args(&args)),
            "could not install {packages:?} with pip"
        );
    }
    assert!(
        ok(Command::new("python3").args(["-c", &import])),
        "{import} fails after installing {packages:?}"
    );
}

/// Runs a Python script, panicking with its output when it fails.
pub fn python(script: &str, args: &[&str]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "transports=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The next delivery must be a message that was not a CloudEvent, kept whole: checks it and
/// acknowledges it (what the runtime does once it is dead-lettered).
pub async fn next_undecodable(rx: &mut Receiver, payload: &[u8]) {
    let bad = next(rx).await;
    assert!(
        bad.refused
            .as_deref()
            .is_some_and(|why| why.starts_with("not a CloudEvent")),
        "{:?}",
        bad.refused
    );
    assert_eq!(bad.event.ty(), transports::UNDECODABLE_TYPE);
    assert_eq!(bad.event.data().unwrap().as_bytes(), payload);
    bad.ack.ack().await.unwrap();
}
