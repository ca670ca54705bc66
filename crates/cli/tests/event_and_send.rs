//! `spindle event validate` and `spindle send`, run as a user would: the real binary, a real
//! HTTP server on a loopback socket.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use bytes::Bytes;
use cloudevent::http as binding;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn spindle(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spindle runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the test server saw.
struct Seen {
    headers: http::HeaderMap,
    body: Bytes,
}

/// A server that records each request and answers `status`, echoing the event(s) back in the
/// request's mode when `status` is 200.
fn server(status: u16) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let mut response = Response::builder().status(status);
                            let mut reply = Bytes::new();
                            if status == 200
                                && let Ok(message) = binding::decode(&parts.headers, body.clone())
                            {
                                let encoded = match message {
                                    binding::Message::Event(e, mode) => binding::encode(&e, mode),
                                    binding::Message::Batch(events) => {
                                        binding::encode_batch(&events)
                                    }
                                };
                                for (k, v) in &encoded.headers {
                                    response = response.header(k, v);
                                }
                                reply = encoded.body;
                            }
                            let _ = tx.send(Seen {
                                headers: parts.headers,
                                body,
                            });
                            Ok::<_, hyper::Error>(response.body(Full::new(reply)).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (addr_rx.recv().unwrap(), rx)
}

#[test]
fn validate_prints_the_normalized_event() {
    let o = spindle(
        &["event", "validate"],
        Some(
            r#"{"type":"t","specversion":"1.0","id":"1","source":"/a","data":{"x":1},"subject":null}"#,
        ),
    );
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["datacontenttype"], "application/json");
    assert_eq!(v["data"]["x"], 1);
    assert!(v.get("subject").is_none());
}

#[test]
fn validate_lists_every_problem_with_index_and_attribute() {
    let batch = r#"[{"specversion":"1.0","id":"1","source":"/a","type":"t"},
                    {"specversion":"1.0","id":"","source":"a b","type":"t","Bad-Name":"x"}]"#;
    let o = spindle(&["event", "validate", "-"], Some(batch));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("invalid: 3 problems"), "{out}");
    assert!(out.contains("event [1]: id:"), "{out}");
    assert!(out.contains("event [1]: source:"), "{out}");
    assert!(out.contains("event [1]: Bad-Name:"), "{out}");
}

#[test]
fn validate_reports_malformed_json_with_position() {
    let o = spindle(&["event", "validate"], Some("{\n \"id\": }"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("line 2, column 8"), "{}", stdout(&o));
}

#[test]
fn validate_refuses_oversize_input() {
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let o = spindle(&["event", "validate", "--max-size", "1024"], Some(&big));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("limit of 1024 bytes"));
}

#[test]
fn send_binary_mode_percent_encodes_and_prints_the_reply() {
    let (addr, seen) = server(200);
    let url = format!("http://{addr}/hook");
    let o = spindle(
        &[
            "send",
            &url,
            "--type",
            "com.example.t",
            "--source",
            "/shop",
            "--subject",
            "Euro € 1",
            "--ext",
            "tenant=acme corp",
            "--data",
            r#"{"sku":"A1"}"#,
            "--id",
            "42",
        ],
        None,
    );
    assert!(o.status.success(), "{o:?}");
    let req = seen.recv().unwrap();
    assert_eq!(req.headers["ce-subject"], "Euro%20%E2%82%AC%201");
    assert_eq!(req.headers["ce-tenant"], "acme%20corp");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(&req.body[..], br#"{"sku":"A1"}"#);
    let out = stdout(&o);
    assert!(out.starts_with("200 OK\n"), "{out}");
    let reply: serde_json::Value = serde_json::from_str(&out["200 OK\n".len()..]).unwrap();
    assert_eq!(reply["id"], "42");
    assert_eq!(reply["subject"], "Euro € 1");
    assert_eq!(reply["data"]["sku"], "A1");
}

#[test]
fn send_structured_and_batch_modes() {
    let (addr, seen) = server(200);
    let url = format!("http://{addr}/");
    let o = spindle(
        &[
            "send",
            &url,
            "--type",
            "t",
            "--mode",
            "structured",
            "--data",
            "hi",
        ],
        None,
    );
    assert!(o.status.success(), "{o:?}");
    let req = seen.recv().unwrap();
    assert!(
        req.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents+json")
    );
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["data"], "hi");
    assert_eq!(v["datacontenttype"], "text/plain; charset=utf-8");

    let dir = std::env::temp_dir().join(format!("spindle-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("batch.json");
    std::fs::write(
        &file,
        r#"[{"specversion":"1.0","id":"1","source":"/a","type":"t"},{"specversion":"1.0","id":"2","source":"/a","type":"t"}]"#,
    )
    .unwrap();
    let o = spindle(
        &[
            "send",
            &url,
            "--event",
            file.to_str().unwrap(),
            "--mode",
            "batch",
        ],
        None,
    );
    assert!(o.status.success(), "{o:?}");
    let req = seen.recv().unwrap();
    assert!(
        req.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents-batch+json")
    );
    assert_eq!(
        binding::decode(&req.headers, req.body)
            .unwrap()
            .into_events()
            .len(),
        2
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout(&o)["200 OK\n".len()..]).unwrap();
    assert_eq!(printed.as_array().map(Vec::len), Some(2));

    // The same batch file in binary mode is one request per event.
    let o = spindle(&["send", &url, "--event", file.to_str().unwrap()], None);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(seen.recv().unwrap().headers["ce-id"], "1");
    assert_eq!(seen.recv().unwrap().headers["ce-id"], "2");

    // Structured mode in the other event formats; the echoed reply is decoded and printed.
    for (format, media_type) in [
        ("protobuf", "application/cloudevents+protobuf"),
        ("avro", "application/cloudevents+avro"),
    ] {
        let o = spindle(
            &[
                "send",
                &url,
                "--type",
                "t",
                "--id",
                "f1",
                "--mode",
                "structured",
                "--format",
                format,
                "--data",
                "hi",
            ],
            None,
        );
        assert!(o.status.success(), "{o:?}");
        let req = seen.recv().unwrap();
        assert_eq!(req.headers["content-type"], media_type);
        let event = binding::decode(&req.headers, req.body)
            .unwrap()
            .into_events()
            .remove(0);
        assert_eq!(event.id(), "f1");
        assert!(stdout(&o).contains("\"f1\""), "{}", stdout(&o));
    }
}

#[test]
fn send_exits_non_zero_on_a_non_2xx_answer() {
    let (addr, _seen) = server(503);
    let o = spindle(&["send", &format!("http://{addr}/"), "--type", "t"], None);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).starts_with("503 Service Unavailable"));
}

#[test]
fn send_rejects_bad_flags_clearly() {
    let o = spindle(&["send", "http://127.0.0.1:9/"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--type is required"));
    let o = spindle(
        &[
            "send",
            "http://127.0.0.1:9/",
            "--type",
            "t",
            "--source",
            "not a uri",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("source"));
    let o = spindle(
        &[
            "send",
            "http://127.0.0.1:9/",
            "--type",
            "t",
            "--mode",
            "fancy",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

fn event_file(json: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spindle-filter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{:x}.json",
        json.len() * 31 + json.bytes().map(usize::from).sum::<usize>()
    ));
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn filter_eval_prints_the_outcome_and_errors() {
    let file = event_file(
        r#"{"specversion":"1.0","id":"1","source":"/shop/eu","type":"com.example.order.created","priority":5}"#,
    );
    let file = file.to_str().unwrap();
    let o = spindle(
        &[
            "filter",
            "eval",
            "--sql",
            "type = 'com.example.order.created' AND source LIKE '/shop/%'",
            "--event",
            file,
        ],
        None,
    );
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "true\n"));
    let o = spindle(
        &["filter", "eval", "--sql", "nothere = 1", "--event", file],
        None,
    );
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "false\n"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing attribute"));
    let o = spindle(
        &[
            "filter",
            "eval",
            "--filter",
            r#"[{"prefix":{"type":"com."}},{"sql":"priority > 3"}]"#,
            "--event",
            file,
        ],
        None,
    );
    assert_eq!(stdout(&o), "true\n");
    let o = spindle(
        &[
            "filter",
            "eval",
            "--filter",
            r#"{"not":{"exact":{"priority":"5"}}}"#,
            "--event",
            file,
        ],
        None,
    );
    assert_eq!(stdout(&o), "false\n");
}

#[test]
fn filter_eval_reports_parse_errors_with_position() {
    let file = event_file(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#);
    let file = file.to_str().unwrap();
    let o = spindle(
        &["filter", "eval", "--sql", "type = ", "--event", file],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1, column 8"));
    let o = spindle(
        &[
            "filter",
            "eval",
            "--filter",
            r#"{"bogus":{}}"#,
            "--event",
            file,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown filter dialect"));
}
