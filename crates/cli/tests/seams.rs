//! The seams between crates, crossed the way a user crosses them: `spindle.toml` text in, the
//! running `spindle up` out. Whatever the manifest accepts must run; each test here failed
//! when the manifest and the engine (or the delivery layer) each had their own rule.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use cloudevent::{Data, Event, http as binding};

fn event(id: &str, ty: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/seams")
        .ty(ty)
        .data_with_type("application/json", Data::json(&serde_json::json!({"n": 1})))
        .build()
        .unwrap()
}

/// POSTs `event` in binary mode (with a bearer token when given); returns the status.
fn post(url: &str, event: &Event, token: Option<&str>) -> u16 {
    let encoded = binding::encode_binary(event);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut request = reqwest::Client::new()
            .post(url)
            .headers(encoded.headers)
            .body(encoded.body)
            .timeout(Duration::from_secs(60));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    })
}

use running::write_manifest;

/// Grants in Spin's format, the largest memory the manifest accepts, and more components at
/// their default concurrency than the engine's old fixed pool could hold: all of it loads and
/// serves.
#[test]
fn spin_format_grants_the_largest_memory_and_many_components_all_run() {
    let echo = support::guest("guest_echo");
    let mut manifest =
        String::from("spindle_manifest_version = 1\n[application]\nname = \"seams\"\n");
    let components = 6;
    for i in 0..components {
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/c{i}\"\ncomponent = \"c{i}\"\n[component.c{i}]\nsource = \"{}\"\n",
            echo.display()
        ));
    }
    manifest.push_str(
        r#"allowed_outbound_hosts = ["https://api.example.com", "https://*.example.org:8443", "tcp://127.0.0.1:5432", "*://localhost:*", "http://[::1]:8080"]
[component.c5.limits]
memory = "4GiB"
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &manifest);
    let up = running::up(dir.path(), Stdio::inherit());
    for i in 0..components {
        assert_eq!(
            post(&format!("{}/c{i}", up.http), &event("e", "ping"), None),
            200,
            "component c{i}"
        );
    }
}

/// An `https://` output written in `spindle.toml` is delivered over TLS (the test CA is
/// trusted through `SSL_CERT_FILE`, as for any OpenSSL-style tool).
#[test]
fn an_https_output_in_the_manifest_is_delivered_over_tls() {
    let sink = test_support::HttpsServer::start(b"");
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &sink.ca_pem).unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "tls-out"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
[component.behaviours.outputs]
audit = "https://localhost:{}/hook"
"#,
            behaviours.display(),
            sink.port
        ),
    );
    let up = running::up_with_env(
        dir.path(),
        Stdio::inherit(),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert_eq!(
        post(&format!("{}/in", up.http), &event("tls-1", "publish"), None),
        200
    );
    let (_, _, headers, _) = sink
        .requests
        .recv_timeout(Duration::from_secs(60))
        .expect("the output reached the TLS sink");
    assert_eq!(headers["ce-type"], "audited");
    assert_eq!(headers["ce-source"], "/seams");
}

/// The documented example manifest, as shipped, starts against the local brokers and serves:
/// every key it shows is one `spindle up` accepts.
#[test]
fn the_example_manifest_starts_against_the_local_brokers() {
    let repo = support::repo();
    let example = std::fs::read_to_string(repo.join("crates/manifest/spindle.example.toml"))
        .expect("the example manifest");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write_manifest(base, &example);
    // What the example points at: its components' Wasm files and its granted directories.
    for (guest, path) in [
        ("guest_echo", "target/wasm32-wasip2/release/orders.wasm"),
        ("guest_http_hello", "legacy/legacy.wasm"),
    ] {
        let to = base.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(support::guest(guest), to).unwrap();
    }
    std::fs::create_dir_all(base.join("data")).unwrap();
    std::fs::create_dir_all(base.join("assets")).unwrap();
    // The JetStream trigger consumes from the stream the example names.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let up = running::up_with_env(
        base,
        Stdio::inherit(),
        &[
            ("ORDERS_WEBHOOK_TOKEN", "webhook-secret"),
            ("SPINDLE_ADMIN_TOKEN", "admin-secret"),
        ],
    );
    let url = format!("{}/orders/new", up.http);
    assert_eq!(post(&url, &event("ex-1", "ping"), None), 401);
    assert_eq!(
        post(&url, &event("ex-1", "ping"), Some("webhook-secret")),
        200
    );
}

/// `[application.http] tls` in `spindle.toml`: the trigger serves HTTPS, and an independent
/// HTTP/2 client (curl) posts a CloudEvent and gets the echo back.
#[test]
fn the_trigger_serves_https_and_http2_from_the_manifest() {
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let pki = test_support::TestPki::new();
    let leaf = pki.leaf();
    std::fs::write(dir.path().join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "tls-in"
[application.http]
tls = {{ cert = "cert.pem", key = "key.pem" }}
[[trigger.http]]
route = "/echo"
component = "echo"
[component.echo]
source = "{}"
"#,
            echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    assert!(up.http.starts_with("https://127.0.0.1:"), "{}", up.http);
    let port = up.http.rsplit(':').next().unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(dir.path().join("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args([
            "-H",
            "ce-specversion: 1.0",
            "-H",
            "ce-id: tls-1",
            "-H",
            "ce-source: /curl",
            "-H",
            "ce-type: ping",
            "-H",
            "content-type: application/json",
            "--data",
            "{\"n\":1}",
        ])
        .arg(format!("https://localhost:{port}/echo"))
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 200");
}

/// An HTTPS output with its own `tls = { ca, cert, key }` trusts that CA for this sink only
/// and presents the client certificate (mutual TLS): the server that requires one gets the
/// event; the same server behind an output without the certificate refuses the handshake,
/// and that output's event is dead-lettered with the TLS reason.
#[test]
fn an_https_output_with_its_own_ca_and_client_certificate_is_delivered_over_mutual_tls() {
    let (server, client) = test_support::HttpsServer::start_mtls(b"");
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &server.ca_pem).unwrap();
    std::fs::write(dir.path().join("client.pem"), &client.cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &client.key_pem).unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "mtls-out"
[[trigger.http]]
route = "/with-cert"
component = "with-cert"
[[trigger.http]]
route = "/without-cert"
component = "without-cert"
[component.with-cert]
source = "{behaviours}"
[component.with-cert.outputs]
audit = {{ uri = "https://localhost:{port}/hook", tls = {{ ca = "ca.pem", cert = "client.pem", key = "client.key" }} }}
[component.without-cert]
source = "{behaviours}"
[component.without-cert.outputs]
audit = {{ uri = "https://localhost:{port}/hook", tls = {{ ca = "ca.pem" }} }}
"#,
            behaviours = behaviours.display(),
            port = server.port
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    assert_eq!(
        post(
            &format!("{}/with-cert", up.http),
            &event("mtls-1", "publish"),
            None
        ),
        200
    );
    let (_, _, headers, _) = server
        .requests
        .recv_timeout(Duration::from_secs(60))
        .expect("the output reached the mutual-TLS sink");
    assert!(!headers["ce-id"].is_empty());
    assert_eq!(headers["ce-type"], "audited");

    assert_eq!(
        post(
            &format!("{}/without-cert", up.http),
            &event("mtls-2", "publish"),
            None
        ),
        200
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let letter = loop {
        let text = rt.block_on(async {
            reqwest::get(format!("{}/deadletters", up.admin))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        if text.contains("output:without-cert:audit") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(letter.contains("TLS"), "{letter}");
    assert!(
        server.requests.try_recv().is_err(),
        "the output without a certificate got through"
    );
}
