//! What a handler may reach beyond its event, granted in `spindle.toml` and exercised through
//! a running `spindle up`: outbound HTTP(S) to granted hosts only, key-value stores (embedded
//! and Redis), and variables read from the environment or a file.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use cloudevent::Event;
use running::write_manifest;

/// POSTs an event of type `ty` (subject `subject`) in binary mode to `url`; returns the
/// status and the reply's data as text.
fn call(url: &str, ty: &str, subject: &str) -> (u16, String) {
    call_with_id(url, "cap-1", ty, subject)
}

/// [`call`] with the event id `id`.
fn call_with_id(url: &str, id: &str, ty: &str, subject: &str) -> (u16, String) {
    let event = Event::builder()
        .id(id)
        .source("/capabilities")
        .ty(ty)
        .subject(subject)
        .build()
        .unwrap();
    running::post_blocking(url, &event)
}

/// A handler granted `https://localhost:<port>` calls that HTTPS server (trusting the test CA
/// through `SSL_CERT_FILE`) and gets its answer; the same server by another name, and a host
/// it was not granted, are refused inside the guest, and nothing reaches the server.
#[test]
fn a_handler_calls_a_granted_https_host_and_is_refused_any_other() {
    let server = test_support::HttpsServer::start(b"rate=1.08");
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "outbound"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
allowed_outbound_hosts = ["https://localhost:{}"]
"#,
            behaviours.display(),
            server.port
        ),
    );
    let up = running::up_with_env(
        dir.path(),
        Stdio::inherit(),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let url = format!("{}/in", up.http);

    let granted = format!("https://localhost:{}/rates?base=eur", server.port);
    assert_eq!(
        call(&url, "http.get", &granted),
        (200, "200 rate=1.08".into())
    );
    let (method, path, headers, _) = server
        .requests
        .recv_timeout(Duration::from_secs(30))
        .expect("the request reached the server");
    assert_eq!(method, http::Method::GET);
    assert_eq!(path, "/rates");
    assert_eq!(headers["host"], format!("localhost:{}", server.port));

    for refused in [
        format!("https://127.0.0.1:{}/", server.port),
        format!("http://localhost:{}/", server.port),
        "https://example.com/".to_owned(),
    ] {
        let (status, text) = call(&url, "http.get", &refused);
        assert_eq!(status, 200, "{refused}");
        assert!(
            text.starts_with("error: request to ") && text.contains("denied"),
            "{refused}: {text}"
        );
    }
    assert!(
        server.requests.try_recv().is_err(),
        "a refused request reached the server"
    );
}

/// A server whose certificate the handler cannot verify (no `SSL_CERT_FILE` for its CA) is a
/// TLS certificate error inside the guest, not a hang or a trap.
#[test]
fn an_unverifiable_certificate_fails_the_request_inside_the_guest() {
    let server = test_support::HttpsServer::start(b"secret");
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "outbound-untrusted"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
allowed_outbound_hosts = ["https://localhost:{}"]
"#,
            behaviours.display(),
            server.port
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let (status, text) = call(
        &format!("{}/in", up.http),
        "http.get",
        &format!("https://localhost:{}/", server.port),
    );
    assert_eq!(status, 200);
    assert!(
        text.starts_with("error:") && text.contains("TlsCertificateError"),
        "{text}"
    );
}

/// Variables written inline, read from the environment and read from a file (one trailing
/// newline dropped) all reach the guest's `config.get`; a missing environment variable stops
/// `spindle up` with a message naming the variable, never a value.
#[test]
fn variables_come_from_the_manifest_the_environment_or_a_file() {
    let behaviours = support::guest("guest_behaviours");
    let manifest = |greeting: &str| {
        format!(
            r#"spindle_manifest_version = 1
[application]
name = "variables"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
[component.behaviours.variables]
greeting = {greeting}
"#,
            behaviours.display()
        )
    };
    for (value, env, expected) in [
        ("\"inline hello\"", None, "inline hello"),
        (
            "{ env = \"SPINDLE_TEST_GREETING\" }",
            Some("from the environment"),
            "from the environment",
        ),
        ("{ file = \"greeting.txt\" }", None, "from a file"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("greeting.txt"), "from a file\n").unwrap();
        write_manifest(dir.path(), &manifest(value));
        let env: Vec<(&str, &str)> = env
            .map(|v| ("SPINDLE_TEST_GREETING", v))
            .into_iter()
            .collect();
        let up = running::up_with_env(dir.path(), Stdio::inherit(), &env);
        assert_eq!(
            call(&format!("{}/in", up.http), "config", "x"),
            (200, expected.to_owned()),
            "{value}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        &manifest("{ env = \"SPINDLE_TEST_UNSET_VAR\" }"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env_remove("SPINDLE_TEST_UNSET_VAR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("greeting") && stderr.contains("SPINDLE_TEST_UNSET_VAR"),
        "{stderr}"
    );
}

fn kv_manifest(behaviours: &Path, extra: &str) -> String {
    format!(
        r#"spindle_manifest_version = 1
[application]
name = "kv"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
{extra}"#,
        behaviours.display()
    )
}

/// A counter in the embedded `default` store survives a `kill -9` of `spindle up`; a store the
/// component was not granted cannot be opened.
#[test]
fn a_counter_in_the_embedded_store_survives_restarts() {
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        &kv_manifest(&behaviours, "key_value_stores = [\"default\"]\n"),
    );
    {
        let up = running::up(dir.path(), Stdio::inherit());
        let url = format!("{}/in", up.http);
        for n in 1..=3 {
            assert_eq!(call(&url, "kv.counter", "default"), (200, n.to_string()));
        }
        let (_, text) = call(&url, "kv.counter", "cache");
        assert!(text.contains("access denied"), "{text}");
    } // SIGKILL
    let up = running::up(dir.path(), Stdio::inherit());
    assert_eq!(
        call(&format!("{}/in", up.http), "kv.counter", "default"),
        (200, "4".into())
    );
}

/// Without a grant, even `default` is denied.
#[test]
fn key_value_is_denied_without_a_grant() {
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &kv_manifest(&behaviours, ""));
    let up = running::up(dir.path(), Stdio::inherit());
    let (_, text) = call(&format!("{}/in", up.http), "kv.counter", "default");
    assert!(text.contains("access denied"), "{text}");
}

/// A Redis-backed store (the local server) counts, and an independent client (`redis-cli`)
/// reads what the component wrote.
#[test]
fn a_redis_store_keeps_what_the_component_writes() {
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        &kv_manifest(
            &behaviours,
            "key_value_stores = [\"cache\"]\n[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n",
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/in", up.http);
    let id = format!("redis-{}", uuid::Uuid::new_v4());
    assert_eq!(
        call_with_id(&url, &id, "kv.counter", "cache"),
        (200, "1".into())
    );
    assert_eq!(
        call_with_id(&url, &id, "kv.counter", "cache"),
        (200, "2".into())
    );
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "GET",
            &format!("hits-{id}"),
        ])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    let _ = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "DEL",
            &format!("hits-{id}"),
        ])
        .output();
}
