//! Declared schemas, from `spindle.toml` to the running app: an event whose data breaks the
//! schema its component `consumes` is refused with `400` naming the JSON Pointer and the rule
//! (dead-lettered on a broker trigger), before the handler runs; a result that breaks what it
//! `produces` is a handler error naming the path; a valid result carries the declared
//! `dataschema`, which the admin API serves; and the registry document the app serves (and
//! `spindle registry export` writes) passes the same check as the xRegistry samples.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use cloudevent::{Data, Event};
use serde_json::{Value, json};

const ORDER_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["name", "qty"],
  "properties": {
    "name": { "type": "string", "minLength": 1 },
    "qty": { "type": "integer", "minimum": 1 }
  }
}"#;

const GREETING_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["greeting", "double"],
  "properties": { "double": { "type": "integer", "maximum": 10 } }
}"#;

fn app(dir: &Path, subject: &str) {
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    std::fs::write(dir.join("schemas/order.json"), ORDER_SCHEMA).unwrap();
    std::fs::write(dir.join("schemas/greeting.json"), GREETING_SCHEMA).unwrap();
    running::write_manifest(
        dir,
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "shop"
[[trigger.http]]
route = "/orders"
component = "behaviours"
[[trigger.nats]]
subject = "{subject}"
component = "behaviours"
[component.behaviours]
source = "{}"
consumes = [
  {{ type = "json.transform", dataschema = "schemas/order.json", description = "An order to greet" }},
  "fanout",
]
produces = [{{ type = "json.transformed", dataschema = "schemas/greeting.json" }}]
"#,
            support::guest("guest_behaviours").display()
        ),
    );
}

fn order(id: &str, data: Value) -> Event {
    Event::builder()
        .id(id)
        .source("/shop")
        .ty("json.transform")
        .data_with_type("application/json", Data::json(&data))
        .build()
        .unwrap()
}

async fn post(url: &str, event: &Event) -> reqwest::Response {
    let encoded = cloudevent::http::encode_binary(event);
    reqwest::Client::new()
        .post(url)
        .headers(encoded.headers)
        .body(encoded.body)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap()
}

/// The registry models' document schemas (the CloudEvents registry's, and the endpoint,
/// message and schema registries' on their own), as far as the spec data is at hand.
fn model_schemas() -> Vec<(&'static str, Value)> {
    ["cloudevents", "endpoint", "message", "schema"]
        .into_iter()
        .filter_map(|model| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "../../../shared/spec/xregistry/{model}/schemas/document-schema.json"
            ));
            let text = std::fs::read_to_string(path).ok()?;
            Some((model, serde_json::from_str(&text).unwrap()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_schemas_hold_at_every_edge_of_a_running_app() {
    let dir = tempfile::tempdir().unwrap();
    let subject = format!("spindle.schemas.{}", uuid::Uuid::new_v4().simple());
    app(dir.path(), &subject);
    let up = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/orders", up.http);

    // Refused before the handler: 400, the pointer and the rule.
    let refused = post(&url, &order("bad", json!({ "name": "ada", "qty": 0 }))).await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.text().await.unwrap().parse::<Value>().unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/qty", "{problem}");
    assert_eq!(problem["errors"][0]["rule"], "minimum", "{problem}");
    let missing = post(&url, &order("bad2", json!({ "qty": 2 }))).await;
    assert_eq!(missing.status(), 400);
    let problem: Value = missing.text().await.unwrap().parse::<Value>().unwrap();
    assert_eq!(problem["errors"][0]["rule"], "required", "{problem}");

    // Valid in, valid out: the result names its schema, and the admin API serves it.
    let ok = post(&url, &order("good", json!({ "name": "ada", "qty": 3 }))).await;
    assert_eq!(ok.status(), 200);
    let dataschema = ok.headers()["ce-dataschema"].to_str().unwrap().to_owned();
    assert_eq!(
        dataschema,
        format!(
            "{}/registry/schemagroups/shop/schemas/json.transformed/versions/1",
            up.admin
        )
    );
    let body: Value = ok.text().await.unwrap().parse::<Value>().unwrap();
    assert_eq!(body["double"], 6);
    let served: Value = reqwest::get(&dataschema)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<Value>()
        .unwrap();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(GREETING_SCHEMA).unwrap()
    );

    // The handler's own output breaks its declared schema: a handler error naming the path.
    let broken = post(&url, &order("big", json!({ "name": "ada", "qty": 6 }))).await;
    assert_eq!(broken.status(), 500);
    let problem: Value = broken.text().await.unwrap().parse::<Value>().unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/double", "{problem}");
    assert_eq!(problem["errors"][0]["rule"], "maximum", "{problem}");

    // A broker message with invalid data is dead-lettered in the trigger's queue, not retried.
    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let encoded = cloudevent::nats::encode(
        &order("nats-bad", json!({ "name": "", "qty": 1 })),
        cloudevent::nats::Mode::Structured,
    );
    nats.publish(subject.clone(), encoded.payload)
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let letters = running::wait_for_dead_letters(&up.admin, 1).await;
    let letter = letters
        .iter()
        .find(|l| l.to_string().contains("nats-bad"))
        .unwrap_or_else(|| panic!("no dead letter for nats-bad: {letters:?}"));
    assert!(letter.to_string().contains("/name"), "{letter}");

    // The served document: every trigger, the declared messages, the schema; it passes the
    // check the xRegistry samples pass.
    let document: Value = reqwest::get(format!("{}/registry", up.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let endpoints = document["endpoints"].as_object().unwrap();
    assert_eq!(
        endpoints["http.behaviours"]["protocoloptions"]["endpoints"][0]["uri"],
        format!("{}/orders", up.http)
    );
    assert_eq!(
        endpoints["nats.behaviours"]["protocoloptions"]["subject"],
        subject
    );
    assert_eq!(
        endpoints["subscriptions"]["protocoloptions"]["endpoints"][0]["uri"],
        format!("{}/subscriptions", up.admin)
    );
    let consumed = &document["messagegroups"]["behaviours.consumes"]["messages"];
    assert_eq!(
        consumed["json.transform"]["dataschemauri"],
        "/schemagroups/shop/schemas/json.transform/versions/1"
    );
    assert_eq!(
        consumed["fanout"]["envelopemetadata"]["type"]["value"],
        "fanout"
    );
    assert!(
        registry::check_document(&document, None)
            .unwrap()
            .is_empty()
    );
    for (model, schema) in model_schemas() {
        let problems = registry::check_document(&document, Some(&schema)).unwrap();
        assert!(
            problems.is_empty(),
            "against the {model} model: {problems:?}"
        );
    }
    drop(up);

    // `spindle registry export` writes the same document for the addresses it is told.
    let exported = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["registry", "export", "--listen", "127.0.0.1:3000"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let exported: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(
        exported["endpoints"]["http.behaviours"]["protocoloptions"]["endpoints"][0]["uri"],
        "http://127.0.0.1:3000/orders"
    );
    assert_eq!(
        exported["schemagroups"]["shop"]["schemas"]["json.transform"]["versions"]["1"]["schema"],
        serde_json::from_str::<Value>(ORDER_SCHEMA).unwrap()
    );
    std::fs::write(dir.path().join("registry.json"), exported.to_string()).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["registry", "check", "registry.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
}

#[test]
fn a_schema_that_is_not_json_schema_stops_the_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    app(dir.path(), "spindle.schemas.unused");
    std::fs::write(dir.path().join("schemas/order.json"), r#"{"type": 12}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("order.json") && stderr.contains("not a valid JSON Schema"),
        "{stderr}"
    );
}

/// A schema declared by URL: app B's component consumes a type whose schema is the one app A
/// serves in its registry; B fetches it when it starts and holds its events to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_can_be_another_apps_registry_entry() {
    let a_dir = tempfile::tempdir().unwrap();
    app(a_dir.path(), "spindle.schemas.a");
    let a = running::up(a_dir.path(), Stdio::inherit());
    let schema_url = format!(
        "{}/registry/schemagroups/shop/schemas/json.transform",
        a.admin
    );

    let b_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        b_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "b"
[[trigger.http]]
route = "/orders"
component = "behaviours"
[component.behaviours]
source = "{}"
consumes = [{{ type = "json.transform", dataschema = "{schema_url}" }}]
"#,
            support::guest("guest_behaviours").display()
        ),
    );
    let b = running::up(b_dir.path(), Stdio::inherit());
    let url = format!("{}/orders", b.http);
    let refused = post(&url, &order("bad", json!({ "name": "ada", "qty": 0 }))).await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.text().await.unwrap().parse().unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/qty", "{problem}");
    assert_eq!(problem["dataschema"], schema_url.as_str(), "{problem}");
    let ok = post(&url, &order("good", json!({ "name": "ada", "qty": 1 }))).await;
    assert_eq!(ok.status(), 200);

    // B's own registry lists the schema as kept elsewhere, and sends readers there.
    let document: Value = reqwest::get(format!("{}/registry", b.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        document["schemagroups"]["b"]["schemas"]["json.transform"]["versions"]["1"]["schemaurl"],
        schema_url.as_str()
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let moved = client
        .get(format!(
            "{}/registry/schemagroups/b/schemas/json.transform",
            b.admin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 307);
    assert_eq!(moved.headers()["location"], schema_url.as_str());
}
