//! Broker connections over TLS, in and out, from `spindle.toml`: a NATS server and a
//! Mosquitto broker started here with certificates from a test CA (made at test time), a
//! `spindle up` whose triggers and outputs use `nats+tls://` and `mqtts://` and trusts the CA
//! through `SSL_CERT_FILE`, and independent clients on the other side (async-nats with the CA,
//! `mosquitto_pub` / `mosquitto_sub --cafile`).

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A broker process, killed when dropped.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

/// The test PKI written to `dir`: `ca.pem`, `cert.pem`, `key.pem` (for `localhost`).
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let pki = test_support::TestPki::new();
    let leaf = pki.leaf();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (ca, cert, key)
}

fn nats_tls(port: u16, cert: &Path, key: &Path) -> Broker {
    let child = Command::new("nats-server")
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--tls",
            "--tlscert",
        ])
        .arg(cert)
        .arg("--tlskey")
        .arg(key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (Debian package nats-server)");
    wait_for(port, "nats-server");
    Broker(child)
}

fn mosquitto_tls(dir: &Path, port: u16, ca: &Path, cert: &Path, key: &Path) -> Broker {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\n",
            ca.display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    wait_for(port, "mosquitto");
    Broker(child)
}

fn event_json(id: &str) -> String {
    serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "/brokers-tls",
        "type": "com.example.tls",
        "datacontenttype": "application/json",
        "data": {"id": id}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_and_mqtt_over_tls_carry_events_in_and_out() {
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path());
    let (nats_port, mqtt_port) = (free_port(), free_port());
    let _nats = nats_tls(nats_port, &cert, &key);
    let _mosquitto = mosquitto_tls(dir.path(), mqtt_port, &ca, &cert, &key);

    let app_dir = dir.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("spindle.toml"),
        format!(
            r#"spindle_manifest_version = 1
[application]
name = "brokers-tls"

[[trigger.nats]]
address = "nats+tls://localhost:{nats_port}"
subject = "tls.in"
component = "echo"

[[trigger.mqtt]]
address = "mqtts://localhost:{mqtt_port}"
topic = "tls/in"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
nats = {{ uri = "nats+tls://localhost:{nats_port}/tls.out", mode = "structured" }}
mqtt = {{ uri = "mqtts://localhost:{mqtt_port}/tls/out", mode = "structured" }}
"#,
            echo.display()
        ),
    )
    .unwrap();

    // The receiving side first: an independent MQTT client over TLS, and a NATS client.
    let mqtt_out = Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &mqtt_port.to_string(), "--cafile"])
        .arg(&ca)
        .args([
            "-t", "tls/out", "-q", "1", "-C", "2", "-W", "90", "-F", "%p",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    // This test binary links two rustls providers (reqwest's and Spindle's): choose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(format!("tls://localhost:{nats_port}"))
        .await
        .expect("a TLS NATS client");
    let mut nats_out = nats.subscribe("tls.out").await.unwrap();
    nats.flush().await.unwrap();

    let up = running::up_with_env(
        &app_dir,
        Stdio::inherit(),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert!(
        up.listing
            .iter()
            .any(|l| l.contains("nats+tls://localhost"))
            || up.listing.iter().any(|l| l.contains("tls")),
        "{:?}",
        up.listing
    );

    // In: one event over each TLS trigger.
    nats.publish("tls.in", event_json("via-nats-tls").into())
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let published = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &mqtt_port.to_string(), "--cafile"])
        .arg(&ca)
        .args([
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            "tls/in",
            "-D",
            "publish",
            "content-type",
            "application/cloudevents+json",
            "-m",
            &event_json("via-mqtt-tls"),
        ])
        .status()
        .expect("mosquitto_pub");
    assert!(published.success());

    // Out: both events on both TLS outputs.
    let expected: BTreeSet<String> = ["via-nats-tls", "via-mqtt-tls"].map(String::from).into();
    let mut from_nats = BTreeSet::new();
    while from_nats != expected {
        let message = tokio::time::timeout(
            Duration::from_secs(90),
            futures::StreamExt::next(&mut nats_out),
        )
        .await
        .unwrap_or_else(|_| panic!("only {from_nats:?} came out on NATS"))
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        from_nats.insert(v["id"].as_str().unwrap().to_owned());
    }
    let out = tokio::task::spawn_blocking(move || mqtt_out.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let from_mqtt: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(from_mqtt, expected);
}
