//! `spindle up` as a user runs it: the real binary, a manifest, real Wasm components compiled
//! from source (tests/guests), real loopback sockets, and SIGTERM to stop.

#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloudevent::{Data, Event, http as binding};

struct Up {
    child: Child,
    base: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(manifest: &str) -> Up {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("spindle.toml"), manifest).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("spindle up prints a line").unwrap();
    assert!(first.starts_with("Serving"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    Up {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn event(ty: &str) -> Event {
    Event::builder()
        .id("e-1")
        .source("/test")
        .ty(ty)
        .data_with_type("application/json", Data::json(&serde_json::json!({"n": 1})))
        .build()
        .unwrap()
}

fn post(url: &str, encoded: binding::Encoded) -> (u16, http::HeaderMap, bytes::Bytes) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .headers(encoded.headers)
            .body(encoded.body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.unwrap())
    })
}

#[test]
fn serves_components_over_every_mode_and_maps_handler_outcomes() {
    let echo = support::guest("guest_echo");
    let behaviours = support::guest("guest_behaviours");
    let hello = support::guest("guest_http_hello");
    let up = start(&format!(
        r#"spindle_manifest_version = 1
[application]
name = "e2e"
[[trigger.http]]
route = "/echo"
component = "echo"
[[trigger.http]]
route = "/behave"
component = "behaviours"
[[trigger.http]]
route = "/raw/..."
component = "hello"
executor = "wasi-http"
[component.echo]
source = "{}"
[component.behaviours]
source = "{}"
[component.behaviours.limits]
timeout = "2s"
[component.hello]
source = "{}"
"#,
        echo.display(),
        behaviours.display(),
        hello.display()
    ));

    for mode in [
        binding::Mode::Binary,
        binding::Mode::Structured,
        binding::Mode::Batch,
    ] {
        let (status, headers, body) = post(
            &format!("{}/echo", up.base),
            binding::encode(&event("ping"), mode),
        );
        assert_eq!(status, 200, "{mode}: {body:?}");
        let reply = binding::decode(&headers, body).unwrap();
        assert_eq!(reply.mode(), mode);
        assert_eq!(reply.into_events()[0].data(), event("ping").data());
    }

    let behave = format!("{}/behave", up.base);
    let (status, headers, _) = post(&behave, binding::encode_binary(&event("fail.transient")));
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));
    let (status, _, body) = post(&behave, binding::encode_binary(&event("fail.permanent")));
    assert_eq!(status, 422);
    assert!(String::from_utf8_lossy(&body).contains("can never be processed"));
    let (status, _, _) = post(&behave, binding::encode_binary(&event("panic")));
    assert_eq!(status, 500);
    let (status, _, _) = post(&behave, binding::encode_binary(&event("loop")));
    assert_eq!(status, 500);
    // The component still serves after each bad event.
    let (status, _, _) = post(
        &format!("{}/echo", up.base),
        binding::encode_binary(&event("ping")),
    );
    assert_eq!(status, 200);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = rt.block_on(async {
        reqwest::get(format!("{}/raw/greet", up.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(text.starts_with("hello /raw/greet"), "{text}");
}

#[test]
fn missing_component_files_suggest_spindle_build_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spindle.toml"),
        r#"spindle_manifest_version = 1
[application]
name = "nothing-built"
[[trigger.http]]
route = "/"
component = "app"
[component.app]
source = "target/wasm32-wasip2/release/app.wasm"
[component.app.build]
command = "cargo build --target wasm32-wasip2 --release"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["up"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spindle build"), "{err}");

    let echo = support::guest("guest_echo");
    let mut up = start(&format!(
        "spindle_manifest_version = 1\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"echo\"\n[component.echo]\nsource = \"{}\"\n",
        echo.display()
    ));
    let pid = up.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = up.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spindle up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
