//! `https://` sinks against a real TLS server on 127.0.0.1 whose certificate comes from a test
//! CA made here: delivered in binary and structured mode when the CA is trusted, and
//! dead-lettered at once (no retries) with a reason naming the certificate problem when not.

mod support;

use std::sync::Arc;
use std::time::Duration;

use delivery::sink::HttpSinkFactory;
use delivery::{ContentMode, Delivery, SinkRegistry, SubscriptionId};
use support::*;

/// A CA and a server certificate for `localhost` it signed.
struct TestPki {
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn pki() -> TestPki {
    let pki = test_support::TestPki::new();
    let leaf = pki.leaf();
    TestPki {
        ca_pem: pki.ca_pem(),
        acceptor: pki.acceptor(&leaf),
    }
}

async fn open_trusting(dir: &std::path::Path, ca_pem: Option<&str>) -> Delivery {
    let mut sinks = SinkRegistry::with_defaults();
    if let Some(ca) = ca_pem {
        let factory =
            HttpSinkFactory::with_tls(Duration::from_secs(10), ca.as_bytes()).expect("valid PEM");
        sinks.register("https", Arc::new(factory));
    }
    Delivery::open(dir, sinks).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_sink_with_a_trusted_ca_gets_binary_and_structured_events() {
    init_tracing();
    let pki = pki();
    let sink = TestSink::start_tls(pki.acceptor.clone(), |_, _, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = open_trusting(dir.path(), Some(&pki.ca_pem)).await;
    let binary = subscription("binary", &sink.https_url("localhost"));
    let mut structured = subscription("structured", &sink.https_url("localhost"));
    structured.delivery.mode = ContentMode::Structured;
    engine.put_subscription(binary).await.unwrap();
    engine.put_subscription(structured).await.unwrap();
    engine
        .outbox()
        .enqueue(vec![
            (SubscriptionId::new("binary"), event(1)),
            (SubscriptionId::new("structured"), event(2)),
        ])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == 2).await);
    let seen = sink.state.seen();
    let by_id = |id: &str| {
        seen.iter()
            .find(|s| s.event.as_ref().is_some_and(|e| e.id() == id))
            .unwrap()
    };
    assert_eq!(by_id("e1").headers["ce-id"], "e1");
    assert!(
        by_id("e2").headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents+json")
    );
    assert!(engine.dead_letters(None, 10).unwrap().is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_or_misnamed_certificate_is_dead_lettered_at_once() {
    init_tracing();
    let pki = pki();
    let sink = TestSink::start_tls(pki.acceptor.clone(), |_, _, _| Reply::ok()).await;

    // The system's roots do not know the test CA.
    let dir = tempfile::tempdir().unwrap();
    let engine = open_trusting(dir.path(), None).await;
    let mut sub = subscription("unknown-ca", &sink.https_url("localhost"));
    sub.delivery.max_attempts = Some(10);
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("unknown-ca");
    let letter = dead_letter_of(&engine, &id, event(1)).await;
    assert_eq!(letter.attempts, 1, "a certificate problem is not retried");
    assert!(letter.reason.contains("UnknownIssuer"), "{}", letter.reason);
    engine.shutdown().await;

    // Trusted CA, but the certificate is for `localhost`, not `127.0.0.1`.
    let dir = tempfile::tempdir().unwrap();
    let engine = open_trusting(dir.path(), Some(&pki.ca_pem)).await;
    let sub = subscription("wrong-name", &sink.https_url("127.0.0.1"));
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("wrong-name");
    let letter = dead_letter_of(&engine, &id, event(2)).await;
    assert!(
        letter.reason.contains("not valid for name \"127.0.0.1\""),
        "{}",
        letter.reason
    );
    assert!(sink.state.delivered().is_empty());
    engine.shutdown().await;
}
