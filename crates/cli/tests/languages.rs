//! Handlers in other languages, as a new user makes them: `spindle new <language>-cloudevents`,
//! `spindle build` with the language's toolchain from its registry, `spindle up`, and events
//! over HTTP: binary, structured and batched, a permanent and a transient error, a publish to
//! an output, a variable, and typed extensions through the SDK.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the test adds to a template's handler: the behaviours the template's greeting does
/// not show, falling back to the template's own `handle`.
const PYTHON_BEHAVIOURS: &str = r#"

def behaviours(event: Event):
    if event.type == "test.transient":
        raise spindle_sdk.TransientError("the database is down, try later")
    if event.type == "test.publish":
        spindle_sdk.publish("audit", event.replace(type="test.audited").with_fresh_id())
        return event.with_data("text/plain", "published")
    if event.type == "test.config":
        return event.with_data("text/plain", spindle_sdk.config.get("greeting") or "<none>")
    if event.type == "test.echo":
        return event
    return handle(event)


WitWorld = spindle_sdk.export(behaviours)
"#;

async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client.post(url).body(body).timeout(Duration::from_secs(60));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn binary(ty: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "lang-1"),
        ("ce-source", "/languages"),
        ("ce-type", ty),
        ("content-type", "application/json"),
    ]
}

/// The same for JavaScript.
const JS_BEHAVIOURS: &str = r#"
import { TransientError, publish, config } from './node_modules/spindle-sdk/index.js';

function behaviours(event) {
  if (event.type === 'test.transient') throw new TransientError('the database is down, try later');
  if (event.type === 'test.publish') {
    publish('audit', event.replace({ type: 'test.audited' }).withFreshId());
    return event.withData('text/plain', 'published');
  }
  if (event.type === 'test.config') return event.withData('text/plain', config.get('greeting') ?? '<none>');
  if (event.type === 'test.echo') return event;
  return greet(event);
}

export const handle = handler(behaviours);
"#;

/// `source` with its last line `export_line` replaced by `behaviours`.
fn swap_export(source: &str, export_line: &str, behaviours: &str) -> String {
    let (head, _) = source
        .rsplit_once(export_line)
        .expect("the template exports its handler");
    format!("{head}{behaviours}")
}

/// Creates `template` as `greeter` in `root`, rewrites its handler `file` with `patch`,
/// declares a variable and an output to `sink`, and builds it.
fn create_and_build(
    root: &Path,
    template: &str,
    file: &str,
    patch: impl Fn(&str) -> String,
    sink: &str,
) -> std::path::PathBuf {
    running::spindle_ok(root, &["new", template, "greeter", "--dir", "greeter"]);
    let dir = root.join("greeter");
    let app = dir.join(file);
    let source = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, patch(&source)).unwrap();
    let manifest = std::fs::read_to_string(dir.join("spindle.toml")).unwrap();
    std::fs::write(
        dir.join("spindle.toml"),
        format!(
            "{manifest}\n[component.greeter.variables]\ngreeting = \"hi from the manifest\"\n\
             [component.greeter.outputs]\naudit = \"{sink}\"\n[component.greeter.limits]\n\
             timeout = \"60s\"\n"
        ),
    )
    .unwrap();
    running::spindle_ok(&dir, &["build"]);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_template_builds_runs_and_answers() {
    running::componentize_py();
    let sink = running::RecordingSink::start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = create_and_build(
        root.path(),
        "python-cloudevents",
        "app.py",
        |s| {
            swap_export(
                s,
                "WitWorld = spindle_sdk.export(handle)",
                PYTHON_BEHAVIOURS,
            )
        },
        &sink.url,
    );
    exercise(&dir, &sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_template_builds_runs_and_answers() {
    let sink = running::RecordingSink::start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = create_and_build(
        root.path(),
        "js-cloudevents",
        "app.js",
        |s| swap_export(s, "export const handle = handler(greet);", JS_BEHAVIOURS),
        &sink.url,
    );
    exercise(&dir, &sink).await;
}

/// The same for C: the template's handler becomes `greet`, called by these behaviours.
const C_BEHAVIOURS: &str = r#"
#include <string.h>

static spindle_event_t with_text(const spindle_event_t *event, const char *text) {
    spindle_event_t reply = spindle_event_clone(event);
    spindle_event_set_data(&reply, "text/plain", text, strlen(text));
    return reply;
}

bool spindle_handle(const spindle_event_t *event, spindle_results_t *results, spindle_error_t *error) {
    if (spindle_event_type_is(event, "test.transient"))
        return spindle_fail_transient(error, "the database is down, try later");
    if (spindle_event_type_is(event, "test.publish")) {
        spindle_event_t audited = spindle_event_clone(event);
        spindle_event_set_type(&audited, "test.audited");
        spindle_event_set_id(&audited, "audited-1");
        char *why = NULL;
        bool published = spindle_publish("audit", &audited, &why);
        spindle_event_free(&audited);
        if (!published) {
            bool failed = spindle_fail_permanent(error, why);
            free(why);
            return failed;
        }
        spindle_results_push(results, with_text(event, "published"));
        return true;
    }
    if (spindle_event_type_is(event, "test.config")) {
        char *value = spindle_config_get("greeting");
        spindle_results_push(results, with_text(event, value ? value : "<none>"));
        free(value);
        return true;
    }
    if (spindle_event_type_is(event, "test.echo")) {
        spindle_results_push(results, spindle_event_clone(event));
        return true;
    }
    return greet(event, results, error);
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_template_builds_runs_and_answers() {
    let toolchain = Command::new("bash")
        .arg(running::repo().join("scripts/language-toolchains.sh"))
        .arg("c")
        .status()
        .unwrap();
    assert!(
        toolchain.success(),
        "scripts/language-toolchains.sh c failed"
    );
    let sink = running::RecordingSink::start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = create_and_build(
        root.path(),
        "c-cloudevents",
        "handler.c",
        |s| {
            let renamed = s.replacen("bool spindle_handle(", "static bool greet(", 1);
            format!("{renamed}{C_BEHAVIOURS}")
        },
        &sink.url,
    );
    exercise(&dir, &sink).await;
}

/// Runs the app in `dir` and sends it every case.
async fn exercise(dir: &Path, sink: &running::RecordingSink) {
    let up = running::up(dir, Stdio::inherit());
    let url = format!("{}/", up.http);
    let client = reqwest::Client::new();

    // Binary in, binary out.
    let (status, headers, body) = post(
        &client,
        &url,
        &binary("com.example.greet"),
        r#"{"name":"ada"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["ce-type"], "com.example.greeting");
    assert_eq!(headers["ce-source"], "/greeter");
    assert_eq!(body, r#"{"message":"Hello, ada!"}"#);

    // Structured in, structured out; typed extensions survive the SDK both ways.
    let (status, headers, body) = post(
        &client,
        &url,
        &[("content-type", "application/cloudevents+json")],
        r#"{"specversion":"1.0","id":"s-1","source":"/languages","type":"test.echo","count":3,"flag":true,"label":"x","datacontenttype":"application/json","data":{"k":1}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents+json")
    );
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["count"], 3, "{body}");
    assert_eq!(echoed["flag"], true, "{body}");
    assert_eq!(echoed["label"], "x", "{body}");
    assert_eq!(echoed["data"]["k"], 1, "{body}");

    // A batch in, a batch out, in order.
    let (status, _, body) = post(
        &client,
        &url,
        &[("content-type", "application/cloudevents-batch+json")],
        r#"[{"specversion":"1.0","id":"b-1","source":"/l","type":"com.example.greet","datacontenttype":"application/json","data":{"name":"ada"}},{"specversion":"1.0","id":"b-2","source":"/l","type":"com.example.greet","datacontenttype":"application/json","data":{"name":"grace"}}]"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let batch: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(batch.len(), 2, "{body}");
    assert_eq!(batch[0]["data"]["message"], "Hello, ada!");
    assert_eq!(batch[1]["data"]["message"], "Hello, grace!");

    // A permanent error: 422 with the handler's message.
    let (status, _, body) = post(&client, &url, &binary("com.example.greet"), "{}").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("needs a `name`"), "{body}");

    // A transient error: 503 and Retry-After.
    let (status, headers, body) = post(&client, &url, &binary("test.transient"), "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert!(body.contains("database is down"), "{body}");

    // A variable.
    let (status, _, body) = post(&client, &url, &binary("test.config"), "").await;
    assert_eq!((status, body.as_str()), (200, "hi from the manifest"));

    // A publish reaches the output.
    let (status, _, body) = post(&client, &url, &binary("test.publish"), "").await;
    assert_eq!((status, body.as_str()), (200, "published"));
    sink.wait_for(1).await;
    assert_eq!(sink.header("ce-type"), ["test.audited"]);
}
