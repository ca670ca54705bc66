//! The Protobuf and Avro event formats against independent implementations, both ways:
//! Google's `protoc` (from the PyPI package `grpcio-tools`) decodes what Spindle encodes with
//! the specification's `cloudevents.proto` and encodes what Spindle decodes; `fastavro` (PyPI)
//! does the same with the specification's `cloudevents.avsc`. The packages are installed with
//! pip when missing; the schemas are read from ../shared/spec (the test is skipped without it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cloudevent::{AttributeValue, Data, Event, Format};
use serde_json::json;

fn spec_formats() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/formats");
    dir.join("cloudevents.proto").is_file().then_some(dir)
}

fn ok(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

/// Makes `import <module>` work, installing `package` with pip once.
fn python_package(module: &str, package: &str) {
    let import = ["-c", &format!("import {module}")];
    if ok(Command::new("python3").args(import)) {
        return;
    }
    let install = ["-m", "pip", "install", "-q", package];
    if !ok(Command::new("python3").args(install)) {
        assert!(
            ok(Command::new("python3")
                .args(install)
                .arg("--break-system-packages")),
            "could not install {package} with pip"
        );
    }
    assert!(ok(Command::new("python3").args(import)));
}

/// Runs `program args`, feeding `input`; its stdout.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sample() -> Event {
    Event::builder()
        .id("order-1")
        .source("/shop")
        .ty("com.example.order.created")
        .subject("A1")
        .time("2024-05-06T07:08:09Z".parse().unwrap())
        .extension("priority", 3)
        .extension("urgent", true)
        .data_with_type(
            "application/json",
            Data::json(&json!({"sku": "A1", "qty": 2, "meta": {"gift": false}})),
        )
        .build()
        .unwrap()
}

/// `python3 -m grpc_tools.protoc` with the spec's proto and the well-known types.
fn protoc(dir: &Path, mode: &str, input: &[u8]) -> Vec<u8> {
    let include = String::from_utf8(pipe(
        "python3",
        &[
            "-c",
            "import grpc_tools, os, sys; sys.stdout.write(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))",
        ],
        b"",
    ))
    .unwrap();
    pipe(
        "python3",
        &[
            "-m",
            "grpc_tools.protoc",
            &format!("-I{}", dir.display()),
            &format!("-I{include}"),
            &format!("--{mode}=io.cloudevents.v1.CloudEvent"),
            "cloudevents.proto",
        ],
        input,
    )
}

#[test]
fn protobuf_round_trips_through_protoc() {
    let Some(dir) = spec_formats() else {
        eprintln!("skipped: ../shared/spec is not here");
        return;
    };
    python_package("grpc_tools.protoc", "grpcio-tools");

    // Spindle → protoc: every attribute in its typed place, JSON data as text_data.
    let text =
        String::from_utf8(protoc(&dir, "decode", &Format::Protobuf.encode(&sample()))).unwrap();
    for expected in [
        "id: \"order-1\"",
        "spec_version: \"1.0\"",
        "type: \"com.example.order.created\"",
        "ce_integer: 3",
        "ce_boolean: true",
        "seconds: 1714979289",
        "text_data: ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }

    // protoc → Spindle: an event written by hand in protobuf text format.
    let written = r#"
        id: "p-2"
        source: "/sensors/7"
        spec_version: "1.0"
        type: "com.example.reading"
        attributes { key: "datacontenttype" value { ce_string: "application/octet-stream" } }
        attributes { key: "dataschema" value { ce_uri: "https://example.com/reading.proto" } }
        attributes { key: "seq" value { ce_integer: 42 } }
        attributes { key: "time" value { ce_timestamp { seconds: 1714979289 nanos: 500000000 } } }
        binary_data: "\001\002\377"
    "#;
    let bytes = protoc(&dir, "encode", written.as_bytes());
    let event = Format::Protobuf.decode(&bytes.into()).unwrap();
    assert_eq!(event.id(), "p-2");
    assert_eq!(
        event.dataschema(),
        Some("https://example.com/reading.proto")
    );
    assert_eq!(event.extension("seq"), Some(&AttributeValue::Integer(42)));
    assert_eq!(
        event.time().unwrap().to_string(),
        "2024-05-06T07:08:09.500Z"
    );
    assert_eq!(event.data().unwrap().as_bytes(), &[1, 2, 255]);

    // And what protoc re-encodes from Spindle's bytes reads back as the same event.
    let again = protoc(
        &dir,
        "encode",
        &protoc(&dir, "decode", &Format::Protobuf.encode(&sample())),
    );
    assert_eq!(Format::Protobuf.decode(&again.into()).unwrap(), sample());
}

const FASTAVRO: &str = r#"
import io, json, sys
import fastavro
schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
if sys.argv[2] == "read":
    record = fastavro.schemaless_reader(io.BytesIO(sys.stdin.buffer.read()), schema)
    json.dump(record, sys.stdout, sort_keys=True, default=lambda b: list(b))
else:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, {
        "attribute": {
            "specversion": "1.0", "id": "a-2", "source": "/sensors/7",
            "type": "com.example.reading", "seq": 42, "blob": b"\x01\x02",
        },
        "data": {"temp": 21.5, "unit": "C", "ok": True, "note": None},
    })
    sys.stdout.buffer.write(out.getvalue())
"#;

#[test]
fn avro_round_trips_through_fastavro() {
    let Some(dir) = spec_formats() else {
        eprintln!("skipped: ../shared/spec is not here");
        return;
    };
    python_package("fastavro", "fastavro");
    let schema = dir.join("cloudevents.avsc");
    let schema = schema.to_str().unwrap();

    // Spindle → fastavro: the record the schema describes, JSON data in its JSON branches.
    let read = pipe(
        "python3",
        &["-c", FASTAVRO, schema, "read"],
        &Format::Avro.encode(&sample()),
    );
    let record: serde_json::Value = serde_json::from_slice(&read).unwrap();
    assert_eq!(record["attribute"]["id"], "order-1");
    assert_eq!(record["attribute"]["specversion"], "1.0");
    assert_eq!(record["attribute"]["priority"], 3);
    assert_eq!(record["attribute"]["urgent"], true);
    assert_eq!(record["attribute"]["time"], "2024-05-06T07:08:09Z");
    assert_eq!(record["data"]["sku"], "A1");
    assert_eq!(record["data"]["qty"], 2.0);
    assert_eq!(record["data"]["meta"]["value"]["gift"], false);

    // fastavro → Spindle.
    let written = pipe("python3", &["-c", FASTAVRO, schema, "write"], b"");
    let event = Format::Avro.decode(&written.into()).unwrap();
    assert_eq!(event.id(), "a-2");
    assert_eq!(event.extension("seq"), Some(&AttributeValue::Integer(42)));
    assert_eq!(
        event.extension("blob"),
        Some(&AttributeValue::Binary(vec![1, 2]))
    );
    let data: serde_json::Value = serde_json::from_slice(event.data().unwrap().as_bytes()).unwrap();
    assert_eq!(
        data,
        json!({"temp": 21.5, "unit": "C", "ok": true, "note": null})
    );
}
