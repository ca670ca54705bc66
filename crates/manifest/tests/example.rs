//! The annotated example from the crate docs parses to exactly the model it
//! describes; plus loading from disk, `check_sources`, and robustness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use manifest::*;

const EXAMPLE: &str = include_str!("../spindle.example.toml");

fn id(s: &str) -> ComponentId {
    ComponentId::new(s).unwrap()
}

fn ep(host: &str, port: u16) -> Endpoint {
    Endpoint::plain(host, port)
}

fn sink(s: &str) -> Sink {
    s.parse().unwrap()
}

#[test]
fn example_round_trips_to_the_typed_model() {
    let m = Manifest::from_str(EXAMPLE, "/srv/orders").unwrap_or_else(|e| panic!("{e}"));
    let base = Path::new("/srv/orders");

    assert_eq!(m.manifest_version, 1);
    assert_eq!(m.base_dir, base);
    assert_eq!(
        m.application,
        Application {
            name: "orders".into(),
            version: Some("0.1.0".into()),
            description: Some("Order processing".into()),
            authors: vec!["Ada <ada@example.com>".into()],
            http: HttpIngress {
                max_body_size: ByteSize(1024 * 1024),
                allowed_origins: vec!["*.example.com".into()],
                allowed_rate: Some(120),
                auth_token: Some(Secret::Env("ORDERS_WEBHOOK_TOKEN".into())),
                limits: ListenerLimits::default(),
                tls: None,
            },
            admin: Admin {
                listen: "127.0.0.1:3001".parse().unwrap(),
                token: Some(Secret::Env("SPINDLE_ADMIN_TOKEN".into())),
                limits: ListenerLimits {
                    max_connections: 16,
                    shutdown_grace: std::time::Duration::from_secs(10),
                    ..ListenerLimits::default()
                },
                tls: None,
            },
            egress: http_server::EgressPolicy {
                allow: vec!["10.1.2.3".parse().unwrap()],
                deny: vec!["10.0.0.0/8".parse().unwrap()],
            },
            max_hops: DEFAULT_MAX_HOPS,
            public_url: None,
            cluster: None,
            store: StoreLimits {
                max_queued_events: None,
                max_queued_bytes: Some(512 * 1024 * 1024),
                max_dead_letters: Some(100_000),
            },
            otlp: None,
        }
    );

    assert_eq!(
        m.triggers,
        Triggers {
            http: vec![
                HttpTrigger {
                    route: Route::Wildcard("/orders".into()),
                    component: Some(id("orders")),
                    executor: HttpExecutor::CloudEvents,
                    binder: None,
                    dedup_window: None,
                },
                HttpTrigger {
                    route: Route::Exact("/events".into()),
                    component: None,
                    executor: HttpExecutor::CloudEvents,
                    binder: None,
                    dedup_window: None,
                },
                HttpTrigger {
                    route: Route::Exact("/legacy".into()),
                    component: Some(id("legacy-api")),
                    executor: HttpExecutor::WasiHttp,
                    binder: None,
                    dedup_window: None,
                },
            ],
            nats: vec![NatsTrigger {
                address: ep("127.0.0.1", 4222),
                subject: "orders.>".into(),
                queue_group: Some("orders".into()),
                jetstream: Some(JetStream {
                    stream: "ORDERS".into(),
                    durable: Some("orders-worker".into()),
                }),
                component: id("orders"),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                dedup_window: Some(std::time::Duration::from_secs(600)),
            }],
            mqtt: vec![MqttTrigger {
                address: ep("127.0.0.1", 1883),
                topic: "shops/+/orders".into(),
                qos: Qos::AtLeastOnce,
                protocol: MqttVersion::V5,
                persistent_session: true,
                client_id: Some("orders-1".into()),
                component: id("orders"),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                dedup_window: None,
            }],
            amqp: vec![AmqpTrigger {
                address: ep("127.0.0.1", 5672),
                source: "/queue/orders".into(),
                component: id("orders"),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                dedup_window: None,
            }],
            kafka: vec![KafkaTrigger {
                brokers: vec![ep("127.0.0.1", 9092)],
                topic: "orders".into(),
                group: "orders-service".into(),
                component: id("orders"),
                max_deliveries: DEFAULT_MAX_DELIVERIES,
                dedup_window: None,
            }],
        }
    );
    assert_eq!(m.triggers.len(), 7);

    let outputs: BTreeMap<String, Output> = [
        (
            "shipping",
            sink("http://127.0.0.1:3001/shipping"),
            ContentMode::Binary,
            vec![],
        ),
        (
            "audit",
            sink("nats://127.0.0.1:4222/audit"),
            ContentMode::Structured,
            vec![],
        ),
        (
            "archive",
            Sink::Nats {
                server: ep("127.0.0.1", 4222),
                subject: "archive.orders".into(),
                jetstream: true,
            },
            ContentMode::Binary,
            vec![],
        ),
        (
            "telemetry",
            Sink::Mqtt {
                broker: ep("127.0.0.1", 1883),
                topic: "telemetry/orders".into(),
                qos: Qos::AtMostOnce,
                version: MqttVersion::V5,
                retain: false,
            },
            ContentMode::Binary,
            vec![],
        ),
        (
            "billing",
            Sink::Amqp {
                broker: ep("127.0.0.1", 5672),
                address: "/exchange/billing/orders.created".into(),
            },
            ContentMode::Binary,
            vec![],
        ),
        (
            "ledger",
            Sink::Kafka {
                broker: ep("127.0.0.1", 9092),
                topic: "ledger".into(),
            },
            ContentMode::Binary,
            vec![],
        ),
        (
            "partner",
            sink("https://partner.example.com/hooks"),
            ContentMode::Binary,
            vec![("Authorization", "Bearer abc")],
        ),
    ]
    .into_iter()
    .map(|(name, sink, mode, headers)| {
        (
            name.to_owned(),
            Output {
                sink,
                mode,
                format: cloudevent::Format::Json,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                webhook_origin: None,
                tls: None,
                ordered: false,
                sequence_gap: None,
                limits: if name == "partner" {
                    QueueLimits {
                        max_queued_events: Some(50_000),
                        dead_letter_retention: Some(std::time::Duration::from_secs(7 * 24 * 3600)),
                        ..QueueLimits::default()
                    }
                } else {
                    QueueLimits::default()
                },
            },
        )
    })
    .collect();

    let orders = Component {
        id: id("orders"),
        source: base.join("target/wasm32-wasip2/release/orders.wasm"),
        description: Some("Validates orders and fans them out".into()),
        build: Some(Build {
            commands: vec!["cargo build --target wasm32-wasip2 --release".into()],
            workdir: base.join("orders"),
        }),
        outputs,
        limits: Limits {
            timeout: Duration::from_secs(5),
            memory: ByteSize(64 * 1024 * 1024),
            max_concurrency: 100,
        },
        variables: [("greeting".to_owned(), Secret::Literal("hello".to_owned()))].into(),
        files: vec![
            FileMount {
                source: base.join("data/"),
                destination: "/data".into(),
            },
            FileMount {
                source: base.join("assets"),
                destination: "/static".into(),
            },
        ],
        allowed_outbound_hosts: vec![
            "https://api.example.com".parse().unwrap(),
            "https://*.example.org:8443".parse().unwrap(),
        ],
        environment: [("RUST_LOG".to_owned(), "info".to_owned())].into(),
        key_value_stores: vec!["default".into()],
        consumes: vec![MessageDecl {
            ty: "com.example.order.created".into(),
            dataschema: None,
            datacontenttype: None,
            description: None,
        }],
        produces: vec![MessageDecl {
            ty: "com.example.order.accepted".into(),
            dataschema: None,
            datacontenttype: Some("application/json".into()),
            description: Some("An order that passed validation".into()),
        }],
    };
    assert_eq!(m.component("orders"), Some(&orders));

    let legacy = Component {
        id: id("legacy-api"),
        source: base.join("legacy/legacy.wasm"),
        description: None,
        build: None,
        outputs: BTreeMap::new(),
        limits: Limits::default(),
        variables: BTreeMap::new(),
        files: vec![],
        allowed_outbound_hosts: vec![],
        environment: BTreeMap::new(),
        key_value_stores: vec![],
        consumes: vec![],
        produces: vec![],
    };
    assert_eq!(m.component("legacy-api"), Some(&legacy));
    assert_eq!(m.components.len(), 2);
    assert_eq!(
        m.key_value_stores,
        BTreeMap::from([
            ("default".to_owned(), KeyValueStore::Embedded),
            (
                "cache".to_owned(),
                KeyValueStore::Redis {
                    url: Secret::Literal("redis://127.0.0.1:6379".into())
                }
            ),
        ])
    );
}

#[test]
fn minimal_manifest_gets_defaults() {
    let m = Manifest::from_str(
        "spindle_manifest_version = 1\n[application]\nname = \"a\"\n[component.c]\nsource = \"c.wasm\"\n[[trigger.nats]]\nsubject = \"s\"\ncomponent = \"c\"\n[[trigger.mqtt]]\ntopic = \"t\"\ncomponent = \"c\"\n",
        "rel",
    )
    .unwrap();
    assert_eq!(m.application.http.max_body_size, DEFAULT_MAX_BODY_SIZE);
    assert!(m.application.http.allowed_origins.is_empty());
    assert_eq!(m.application.http.allowed_rate, None);
    assert_eq!(m.application.http.auth_token, None);
    assert_eq!(m.application.admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert_eq!(m.application.admin.token, None);
    let c = &m.components["c"];
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.timeout, DEFAULT_TIMEOUT);
    assert_eq!(c.limits.memory, DEFAULT_MEMORY);
    assert_eq!(c.limits.max_concurrency, DEFAULT_MAX_CONCURRENCY);
    assert_eq!(c.source, Path::new("rel/c.wasm"));
    assert!(c.files.is_empty() && c.allowed_outbound_hosts.is_empty() && c.environment.is_empty());
    assert_eq!(m.triggers.nats[0].address, ep("127.0.0.1", 4222));
    assert_eq!(m.triggers.nats[0].queue_group, None);
    assert_eq!(m.triggers.mqtt[0].address, ep("127.0.0.1", 1883));
    assert_eq!(m.triggers.mqtt[0].qos, Qos::AtLeastOnce);
    assert_eq!(m.triggers.mqtt[0].protocol, MqttVersion::V5);
    assert!(!m.triggers.mqtt[0].persistent_session);
}

#[test]
fn build_workdir_defaults_to_manifest_dir() {
    let m = Manifest::from_str(
        "spindle_manifest_version = 1\n[application]\nname = \"a\"\n[component.c]\nsource = \"c.wasm\"\n[component.c.build]\ncommand = \"make\"\n",
        "/proj",
    )
    .unwrap();
    assert_eq!(
        m.components["c"].build.as_ref().unwrap().workdir,
        PathBuf::from("/proj")
    );
}

#[test]
fn secret_debug_is_redacted() {
    let s = Secret::Literal("hunter2".into());
    assert!(!format!("{s:?}").contains("hunter2"));
    assert_eq!(s.resolve().unwrap(), "hunter2");
}

/// A scratch directory unique to this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spindle-manifest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn load_resolves_paths_and_check_sources_reports_missing_files() {
    let dir = scratch("load");
    let manifest_path = dir.join("spindle.toml");
    std::fs::write(
        &manifest_path,
        "spindle_manifest_version = 1\n[application]\nname = \"a\"\n\n[component.built]\nsource = \"built.wasm\"\n\n[component.unbuilt]\nsource = \"out/unbuilt.wasm\"\n[component.unbuilt.build]\ncommand = \"make\"\n\n[component.nobuild]\nsource = \"nobuild.wasm\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("built.wasm"), b"\0asm").unwrap();

    let m = Manifest::load(&manifest_path).unwrap();
    assert_eq!(m.base_dir, dir);
    assert_eq!(m.components["built"].source, dir.join("built.wasm"));

    let err = m.check_sources().unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), 2, "{err}");
    assert_eq!(d[0].key, "component.nobuild.source");
    assert_eq!(d[0].line, Some(14));
    assert_eq!(d[0].kind, ErrorKind::MissingSource);
    assert!(d[0].message.contains("no [build] section"), "{}", d[0]);
    assert_eq!(d[1].key, "component.unbuilt.source");
    assert_eq!(d[1].line, Some(9));
    assert!(d[1].message.contains("run `spindle build`"), "{}", d[1]);
    assert!(
        d[1].to_string().starts_with(&format!(
            "{}:9: component.unbuilt.source: ",
            manifest_path.display()
        )),
        "{}",
        d[1]
    );

    std::fs::create_dir_all(dir.join("out/unbuilt.wasm")).unwrap();
    std::fs::write(dir.join("nobuild.wasm"), b"").unwrap();
    let err = m.check_sources().unwrap_err();
    assert!(err.to_string().contains("is not a file"), "{err}");
    std::fs::remove_dir(dir.join("out/unbuilt.wasm")).unwrap();
    std::fs::write(dir.join("out/unbuilt.wasm"), b"").unwrap();
    m.check_sources().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_reports_io_errors() {
    let err = Manifest::load("/definitely/not/here/spindle.toml").unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }));
    assert!(
        err.to_string()
            .contains("/definitely/not/here/spindle.toml")
    );
}

#[test]
fn load_of_bare_file_name_uses_current_dir() {
    // Parsing only: the path has no parent, so the base is ".".
    let err = Manifest::load("no-such-spindle.toml").unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }));
}

/// No input makes the parser panic: every prefix of the example, the example
/// with each line replaced by junk, and assorted hostile snippets.
#[test]
fn no_panics_on_any_input() {
    let mut inputs: Vec<String> = Vec::new();
    // Every 5th prefix keeps the debug-build test fast while still cutting
    // through every kind of construct in the example.
    for (i, _) in EXAMPLE.char_indices().step_by(5) {
        inputs.push(EXAMPLE[..i].to_owned());
    }
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for i in 0..lines.len() {
        for junk in [
            "=",
            "[",
            "x = \"\u{0}\"",
            "[[component]]",
            "route = 1",
            "\"\" = 1",
        ] {
            let mut l = lines.clone();
            l[i] = junk;
            inputs.push(l.join("\n"));
        }
    }
    for s in [
        "",
        "\u{feff}",
        "spindle_manifest_version = 99999999999999999999",
        "spindle_manifest_version = -1\n[application]\nname=\"\"",
        "[component.\"\"]\nsource=\"\"",
        "[component.a]\nsource=\"a\"\n[component.a.outputs]\nx=\"mqtt://[::1]:0/\u{0}\"",
        "[component.a]\nsource=\"a\"\n[component.a.limits]\nmemory=9223372036854775807\ntimeout=\"18446744073709551615h\"",
        "[[trigger.kafka]]\nbrokers=[\":\", \"::\", \"[::1]:1\", \"h:99999\"]\ntopic=\"\"\ncomponent=\"\"",
        "[application.admin]\nlisten=\"[::]:1\"",
    ] {
        inputs.push(s.to_owned());
    }
    for input in &inputs {
        let result = std::panic::catch_unwind(|| Manifest::from_str(input, "/"));
        assert!(result.is_ok(), "panicked on input:\n{input}");
        if let Ok(Err(e)) = result {
            // Every diagnostic renders with a file prefix.
            assert!(e.to_string().starts_with("spindle.toml"), "{e}");
        }
    }
}
