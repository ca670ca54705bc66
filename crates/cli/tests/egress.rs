//! The egress policy from `spindle.toml` to every path that connects on someone's behalf:
//! subscription sinks (refused at creation with a `400` naming the rule), guests' outbound
//! HTTP (refused at connect time, whatever the grants say), and the webhook handshake's
//! callback.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use cloudevent::Event;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates a subscription; the status and the body.
fn create(admin: &str, body: serde_json::Value) -> (u16, String) {
    rt().block_on(running::post_subscription(admin, &body))
}

/// A plain HTTP server that counts the requests it gets.
fn counting_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    });
    (port, hits)
}

#[test]
fn the_egress_policy_holds_for_sinks_guests_and_handshake_callbacks() {
    let (port, hits) = counting_server();
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "egress"
[application.egress]
deny = ["127.0.0.0/8", "*.blocked.test"]
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
allowed_outbound_hosts = ["*://*:*"]
"#,
            behaviours.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());

    // Sinks: the defaults (a metadata address), a denied network, a denied domain.
    for (sink, protocol, rule) in [
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "HTTP",
            "link-local",
        ),
        (
            format!("http://127.0.0.1:{port}/hook"),
            "HTTP",
            "deny \\\"127.0.0.0/8\\\"",
        ),
        (
            "nats://bus.blocked.test:4222/orders".to_owned(),
            "NATS",
            "deny \\\"*.blocked.test\\\"",
        ),
    ] {
        let (status, body) = create(
            &up.admin,
            serde_json::json!({"sink": sink, "protocol": protocol}),
        );
        assert_eq!(status, 400, "{sink}: {body}");
        assert!(body.contains(rule), "{sink}: {body}");
    }

    // A guest granted every host still cannot reach a denied address, by name or literally.
    for url in [
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        let event = Event::builder()
            .id("e1")
            .source("/egress")
            .ty("http.get")
            .subject(url.as_str())
            .build()
            .unwrap();
        let (_, text) = running::post_blocking(&format!("{}/in", up.http), &event);
        assert!(
            text.starts_with("error:") && text.contains("DestinationIpProhibited"),
            "{url}: {text}"
        );
    }

    // The handshake's callback may not point at a denied address either.
    let status = rt().block_on(async {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{}/in", up.http))
            .header("webhook-request-origin", "127.0.0.1")
            .header(
                "webhook-request-callback",
                format!("http://127.0.0.1:{port}/validate"),
            )
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 400);

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the denied server"
    );
}
