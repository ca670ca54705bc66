//! Distributed tracing across a two-app pipeline, as a user sets it up: app A takes an event
//! from NATS, its handler's result goes over HTTP (an output) to app B's route, and both apps
//! export spans over OTLP (`[application.telemetry] otlp`) to a receiver here that decodes the
//! protobuf. The event's `traceparent` roots one trace: A's handler span is its child, A's
//! delivery attempt and B's handler span are children of A's handler span.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// One exported span: service, name, trace id, span id, parent span id (hex).
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver on 127.0.0.1 collecting the spans of `POST /v1/traces`.
async fn receiver(spans: Arc<Mutex<Vec<Span>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let spans = spans.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let spans = spans.clone();
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let request =
                                ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                            for resource in request.resource_spans {
                                let service = resource
                                    .resource
                                    .iter()
                                    .flat_map(|r| &r.attributes)
                                    .find(|a| a.key == "service.name")
                                    .and_then(|a| a.value.as_ref())
                                    .map(|v| format!("{:?}", v.value))
                                    .unwrap_or_default();
                                for scope in resource.scope_spans {
                                    for span in scope.spans {
                                        spans.lock().unwrap().push(Span {
                                            service: service.clone(),
                                            name: span.name,
                                            trace: hex(&span.trace_id),
                                            id: hex(&span.span_id),
                                            parent: hex(&span.parent_span_id),
                                        });
                                    }
                                }
                            }
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_app_pipeline_is_one_trace() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let otlp = receiver(spans.clone()).await;
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "100")];

    let b_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        b_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "app-b"
[application.telemetry]
otlp = "http://127.0.0.1:{otlp}"

[[trigger.http]]
route = "/events"
component = "echo"

[component.echo]
source = "{}"
"#,
            echo.display()
        ),
    );
    let b = running::up_with_env(b_dir.path(), Stdio::inherit(), &env);

    let input = format!("trace.in.{run}");
    let a_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        a_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "app-a"
[application.telemetry]
otlp = "http://127.0.0.1:{otlp}"

[[trigger.nats]]
subject = "{input}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
next = "{}/events"
"#,
            echo.display(),
            b.http
        ),
    );
    let _a = running::up_with_env(a_dir.path(), Stdio::inherit(), &env);

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let root = "00f067aa0ba902b7";
    let event = serde_json::json!({
        "specversion": "1.0", "id": "traced", "source": "/tracing", "type": "com.example.traced",
        "traceparent": format!("00-{trace}-{root}-01"),
    });
    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    nats.publish(input, event.to_string().into()).await.unwrap();
    nats.flush().await.unwrap();

    // A's handler, A's delivery attempt to B, and B's handler, all in the event's trace.
    let find = |spans: &[Span], service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.service.contains(service) && s.name == name && s.trace == trace)
            .cloned()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (a_event, a_deliver, b_event) = loop {
        {
            let spans = spans.lock().unwrap();
            if let (Some(a), Some(d), Some(b)) = (
                find(&spans, "app-a", "event"),
                find(&spans, "app-a", "deliver"),
                find(&spans, "app-b", "event"),
            ) {
                break (a, d, b);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans so far: {:#?}",
            spans.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        a_event.parent, root,
        "A's handler continues the event's trace"
    );
    assert_eq!(
        a_deliver.parent, a_event.id,
        "A's delivery is under A's handler"
    );
    assert_eq!(
        b_event.parent, a_event.id,
        "B's handler is under A's handler (multi-hop rule)"
    );
    assert_ne!(b_event.id, a_event.id);
}
