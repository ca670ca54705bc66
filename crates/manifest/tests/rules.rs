//! One test (at least) per validation rule: each fails if its rule is removed.
//! Every diagnostic is checked for its key and line, not just its message.

use manifest::{Diagnostic, ErrorKind, Manifest, ManifestError};

const BASE: &str = r#"spindle_manifest_version = 1

[application]
name = "app"

[component.orders]
source = "orders.wasm"
"#;

/// BASE plus `extra` appended (BASE is 7 lines, so `extra` starts on line 8).
fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match Manifest::from_str(text, "/app") {
        Ok(m) => panic!("expected errors, got a manifest: {m:#?}"),
        Err(ManifestError::Invalid(d)) => {
            assert!(!d.is_empty());
            d
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Exactly one diagnostic, with the given kind, key and line.
#[track_caller]
fn one(text: &str, kind: ErrorKind, key: &str, line: usize) -> Diagnostic {
    let d = errors(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got: {d:#?}");
    let d = d.into_iter().next().unwrap();
    assert_eq!(d.kind, kind, "{d}");
    assert_eq!(d.key, key, "{d}");
    assert_eq!(d.line, Some(line), "{d}");
    assert_eq!(d.file, "spindle.toml");
    d
}

fn ok(text: &str) -> Manifest {
    Manifest::from_str(text, "/app").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn base_is_valid() {
    let m = ok(BASE);
    assert_eq!(m.application.name, "app");
    assert_eq!(m.manifest_version, 1);
}

// ------------------------------------------------------------ TOML shape

#[test]
fn syntax_error_has_line() {
    let d = one(&with("\n[component.x\n"), ErrorKind::Syntax, "", 9);
    assert!(
        d.to_string().starts_with("spindle.toml:9: invalid TOML"),
        "{d}"
    );
}

#[test]
fn unknown_top_level_key() {
    let text = BASE.replacen("\n", "\nbogus = 1\n", 1);
    let d = one(&text, ErrorKind::UnknownKey, "bogus", 2);
    assert!(d.message.contains("unknown key `bogus`"), "{d}");
}

#[test]
fn unknown_key_in_component_names_path_and_line() {
    let text = with("sorce = \"x.wasm\"\n");
    let d = one(&text, ErrorKind::UnknownKey, "component.orders.sorce", 8);
    assert!(
        d.to_string()
            .starts_with("spindle.toml:8: component.orders.sorce: unknown key `sorce`"),
        "{d}"
    );
}

#[test]
fn unknown_key_in_nested_tables() {
    one(
        &with("[component.orders.limits]\ncpu = 1\n"),
        ErrorKind::UnknownKey,
        "component.orders.limits.cpu",
        9,
    );
    one(
        &format!("{BASE}[application.http]\nmax_body = \"1MiB\"\n"),
        ErrorKind::UnknownKey,
        "application.http.max_body",
        9,
    );
    one(
        &with("[component.orders.outputs]\na = { uri = \"http://x/\", mod = \"binary\" }\n"),
        ErrorKind::UnknownKey,
        "component.orders.outputs.a.mod",
        9,
    );
}

#[test]
fn unknown_key_in_trigger_array() {
    let text = with(
        "[[trigger.http]]\nroute = \"/a\"\ncomponent = \"orders\"\n\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"orders\"\nroutes = 1\n",
    );
    one(&text, ErrorKind::UnknownKey, "trigger.http[1].routes", 15);
}

#[test]
fn unknown_trigger_type() {
    let d = one(
        &with("[[trigger.redis]]\nchannel = \"x\"\n"),
        ErrorKind::UnknownKey,
        "trigger.redis",
        8,
    );
    assert!(d.message.contains("`redis`"), "{d}");
}

#[test]
fn spin_manifest_gets_a_hint() {
    let d = one(
        "spin_manifest_version = 2\n",
        ErrorKind::UnknownKey,
        "spin_manifest_version",
        1,
    );
    assert!(d.message.contains("looks like a Spin manifest"), "{d}");
}

#[test]
fn wrong_type_names_key() {
    let d = one(
        &with("[component.orders.limits]\ntimeout = 5\n"),
        ErrorKind::InvalidValue,
        "component.orders.limits.timeout",
        9,
    );
    assert!(d.message.contains("invalid type"), "{d}");
}

#[test]
fn bad_enum_value_names_key() {
    one(
        &with("[[trigger.http]]\nroute = \"/a\"\ncomponent = \"orders\"\nexecutor = \"wagi\"\n"),
        ErrorKind::InvalidValue,
        "trigger.http[0].executor",
        11,
    );
    one(
        &with("[component.orders.outputs]\na = { uri = \"http://x/\", mode = \"batch\" }\n"),
        ErrorKind::InvalidValue,
        "component.orders.outputs.a.mode",
        9,
    );
}

#[test]
fn missing_required_key() {
    let d = one(
        &with("[component.other]\ndescription = \"no source\"\n"),
        ErrorKind::MissingKey,
        "component.other",
        8,
    );
    assert!(d.message.contains("`source`"), "{d}");
    let d = one(
        &with("[[trigger.http]]\nroute = \"/a\"\nexecutor = \"wasi-http\"\n"),
        ErrorKind::MissingKey,
        "trigger.http[0].component",
        9,
    );
    assert!(d.message.contains("`component`"), "{d}");
}

#[test]
fn a_cloudevents_route_without_component_feeds_subscriptions_only() {
    let m = Manifest::from_str(&with("[[trigger.http]]\nroute = \"/events\"\n"), "/app").unwrap();
    let route = m
        .triggers
        .http
        .iter()
        .find(|t| t.route.to_string() == "/events")
        .unwrap();
    assert_eq!(route.component, None);
}

#[test]
fn webhook_origin_is_for_http_outputs_only() {
    let d = one(
        &with(
            "[component.orders.outputs]\naudit = { uri = \"nats://127.0.0.1:4222/audit\", webhook_origin = \"spindle.example.com\" }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.audit.webhook_origin",
        9,
    );
    assert!(d.message.contains("handshake"), "{d}");
    let m = Manifest::from_str(
        &with("[component.orders.outputs]\nhook = { uri = \"http://127.0.0.1:9/h\", webhook_origin = \"spindle.example.com\" }\n"),
        "/app",
    )
    .unwrap();
    let output = &m.components["orders"].outputs["hook"];
    assert_eq!(
        output.webhook_origin.as_deref(),
        Some("spindle.example.com")
    );
}

// ------------------------------------------------------- version, application

#[test]
fn version_is_required() {
    let text = BASE.replace("spindle_manifest_version = 1\n", "");
    let d = one(&text, ErrorKind::Version, "spindle_manifest_version", 1);
    assert!(d.message.contains("spindle_manifest_version = 1"), "{d}");
}

#[test]
fn version_must_be_supported() {
    let text = BASE.replace("= 1", "= 2");
    let d = one(&text, ErrorKind::Version, "spindle_manifest_version", 1);
    assert!(d.message.contains("unsupported manifest version 2"), "{d}");
}

#[test]
fn application_is_required() {
    one(
        "spindle_manifest_version = 1\n",
        ErrorKind::MissingKey,
        "application",
        1,
    );
}

#[test]
fn application_name_not_empty() {
    one(
        &BASE.replace("name = \"app\"", "name = \" \""),
        ErrorKind::InvalidValue,
        "application.name",
        4,
    );
}

// ------------------------------------------------------------- components

#[test]
fn component_names_are_kebab_case() {
    let d = one(
        &with("[component.Bad_Name]\nsource = \"x.wasm\"\n"),
        ErrorKind::InvalidName,
        "component.Bad_Name",
        8,
    );
    assert!(d.message.contains("kebab-case"), "{d}");
    one(
        &with("[component.\"my.comp\"]\nsource = \"x.wasm\"\n"),
        ErrorKind::InvalidName,
        "component.\"my.comp\"",
        8,
    );
    ok(&with("[component.order-api-2]\nsource = \"x.wasm\"\n"));
}

#[test]
fn source_must_not_be_empty() {
    one(
        &BASE.replace("\"orders.wasm\"", "\"\""),
        ErrorKind::InvalidValue,
        "component.orders.source",
        7,
    );
}

#[test]
fn build_command_must_not_be_empty() {
    one(
        &with("[component.orders.build]\ncommand = []\n"),
        ErrorKind::InvalidValue,
        "component.orders.build.command",
        9,
    );
    one(
        &with("[component.orders.build]\ncommand = [\"make\", \" \"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.build.command",
        9,
    );
    let m = ok(&with(
        "[component.orders.build]\ncommand = [\"a\", \"b\"]\n",
    ));
    assert_eq!(
        m.components["orders"].build.as_ref().unwrap().commands,
        ["a", "b"]
    );
}

#[test]
fn variable_names() {
    one(
        &with("[component.orders.variables]\nApiKey = \"x\"\n"),
        ErrorKind::InvalidName,
        "component.orders.variables.ApiKey",
        9,
    );
}

#[test]
fn variables_come_inline_from_the_environment_or_from_a_file() {
    let m = ok(&with(
        "[component.orders.variables]\na = \"\"\nb = { env = \"API_KEY\" }\nc = { file = \"secrets/c\" }\n",
    ));
    let v = &m.components["orders"].variables;
    assert_eq!(v["a"], manifest::Secret::Literal(String::new()));
    assert_eq!(v["b"], manifest::Secret::Env("API_KEY".into()));
    assert_eq!(v["c"], manifest::Secret::File("/app/secrets/c".into()));
    // The value of an inline variable never shows in a debug print of the manifest.
    let m = ok(&with("[component.orders.variables]\nkey = \"hunter2\"\n"));
    assert!(!format!("{m:?}").contains("hunter2"));
    for bad in [
        "k = { env = \"A\", file = \"b\" }",
        "k = {}",
        "k = { env = \"1BAD\" }",
        "k = { file = \"\" }",
        "k = { path = \"x\" }",
    ] {
        assert!(
            !errors(&with(&format!("[component.orders.variables]\n{bad}\n"))).is_empty(),
            "{bad}"
        );
    }
}

#[test]
fn key_value_stores_are_defined_before_they_are_granted() {
    let m = ok(&with(
        "key_value_stores = [\"default\", \"cache\"]\n[key_value_store.cache]\ntype = \"redis\"\nurl = { env = \"REDIS_URL\" }\n",
    ));
    assert_eq!(
        m.components["orders"].key_value_stores,
        ["default", "cache"]
    );
    let d = one(
        &with("key_value_stores = [\"nope\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.key_value_stores[0]",
        8,
    );
    assert!(d.message.contains("[key_value_store.nope]"), "{d}");
    for bad in [
        "[key_value_store.c]\ntype = \"memcached\"\n",
        "[key_value_store.c]\ntype = \"redis\"\n",
        "[key_value_store.c]\ntype = \"redis\"\nurl = \"http://x\"\n",
        "[key_value_store.c]\ntype = \"embedded\"\nurl = \"redis://x\"\n",
        "[key_value_store.Bad]\ntype = \"embedded\"\n",
    ] {
        assert!(!errors(&with(bad)).is_empty(), "{bad}");
    }
}

#[test]
fn max_hops_is_bounded() {
    let text = |v: &str| BASE.replace("name = \"app\"", &format!("name = \"app\"\nmax_hops = {v}"));
    assert_eq!(ok(&text("5")).application.max_hops, 5);
    assert_eq!(ok(BASE).application.max_hops, manifest::DEFAULT_MAX_HOPS);
    for bad in ["0", "-1", "10001"] {
        one(
            &text(bad),
            ErrorKind::InvalidValue,
            "application.max_hops",
            5,
        );
    }
}

#[test]
fn max_deliveries_is_per_broker_trigger_and_bounded() {
    let trigger = |extra: &str| {
        with(&format!(
            "[[trigger.kafka]]\ntopic = \"t\"\ncomponent = \"orders\"\n{extra}"
        ))
    };
    assert_eq!(
        ok(&trigger("")).triggers.kafka[0].max_deliveries,
        manifest::DEFAULT_MAX_DELIVERIES
    );
    assert_eq!(
        ok(&trigger("max_deliveries = 3\n")).triggers.kafka[0].max_deliveries,
        3
    );
    for bad in ["0", "1001", "-2"] {
        one(
            &trigger(&format!("max_deliveries = {bad}\n")),
            ErrorKind::InvalidValue,
            "trigger.kafka[0].max_deliveries",
            11,
        );
    }
}

#[test]
fn environment_names() {
    one(
        &with("environment = { \"1BAD\" = \"x\" }\n"),
        ErrorKind::InvalidName,
        "component.orders.environment.1BAD",
        8,
    );
}

#[test]
fn outbound_hosts() {
    let d = one(
        &with("allowed_outbound_hosts = [\"https://ok.example.com\", \"api.example.com\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.allowed_outbound_hosts[1]",
        8,
    );
    assert!(d.message.contains("missing scheme"), "{d}");
}

#[test]
fn files() {
    one(
        &with("files = [\"../secrets\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.files[0]",
        8,
    );
    one(
        &with("files = [\"/etc\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.files[0]",
        8,
    );
    one(
        &with("files = [{ source = \"a\", destination = \"static\" }]\n"),
        ErrorKind::InvalidValue,
        "component.orders.files[0].destination",
        8,
    );
}

// ---------------------------------------------------------------- outputs

#[test]
fn bad_sink_uri_message_is_exact() {
    let text = with("\n[component.orders.outputs]\nok = \"http://x/\"\nshipping = \"htp:/x\"\n");
    let d = one(
        &text,
        ErrorKind::InvalidUri,
        "component.orders.outputs.shipping",
        11,
    );
    assert_eq!(
        d.to_string(),
        "spindle.toml:11: component.orders.outputs.shipping: invalid sink URI \"htp:/x\": unsupported scheme \"htp\" (expected http, https, nats, nats+tls, tls, mqtt, mqtts, amqp, amqps, kafka, kafka+tls)"
    );
}

#[test]
fn bad_sink_uri_in_table_form() {
    let d = one(
        &with("[component.orders.outputs.audit]\nmode = \"structured\"\nuri = \"nats://h/a.*\"\n"),
        ErrorKind::InvalidUri,
        "component.orders.outputs.audit.uri",
        10,
    );
    assert!(d.message.contains("wildcards"), "{d}");
}

#[test]
fn output_names() {
    one(
        &with("[component.orders.outputs]\nShip = \"http://x/\"\n"),
        ErrorKind::InvalidName,
        "component.orders.outputs.Ship",
        9,
    );
}

#[test]
fn mqtt_311_output_must_be_structured() {
    let d = one(
        &with("[component.orders.outputs]\nt = \"mqtt://b/t?version=3.1.1\"\n"),
        ErrorKind::InvalidValue,
        "component.orders.outputs.t",
        9,
    );
    assert!(d.message.contains("structured"), "{d}");
    ok(&with(
        "[component.orders.outputs]\nt = { uri = \"mqtt://b/t?version=3.1.1\", mode = \"structured\" }\n",
    ));
}

#[test]
fn headers_only_on_http_sinks() {
    one(
        &with(
            "[component.orders.outputs]\nk = { uri = \"kafka://k/t\", headers = { X = \"1\" } }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.k.headers.X",
        9,
    );
    one(
        &with(
            "[component.orders.outputs]\nh = { uri = \"http://h/\", headers = { \"Bad Header\" = \"1\" } }\n",
        ),
        ErrorKind::InvalidName,
        "component.orders.outputs.h.headers.\"Bad Header\"",
        9,
    );
}

// ----------------------------------------------------------------- limits

#[test]
fn bad_duration() {
    let d = one(
        &with("[component.orders.limits]\ntimeout = \"5 sec\"\n"),
        ErrorKind::InvalidDuration,
        "component.orders.limits.timeout",
        9,
    );
    assert!(d.message.contains("unknown unit \"sec\""), "{d}");
    one(
        &with("[component.orders.limits]\ntimeout = \"0s\"\n"),
        ErrorKind::InvalidDuration,
        "component.orders.limits.timeout",
        9,
    );
}

#[test]
fn bad_size() {
    let d = one(
        &with("[component.orders.limits]\nmemory = \"64\"\n"),
        ErrorKind::InvalidSize,
        "component.orders.limits.memory",
        9,
    );
    assert!(d.message.contains("missing unit"), "{d}");
    one(
        &with("[component.orders.limits]\nmemory = \"1KiB\"\n"),
        ErrorKind::InvalidSize,
        "component.orders.limits.memory",
        9,
    );
    one(
        &with("[component.orders.limits]\nmemory = \"5GiB\"\n"),
        ErrorKind::InvalidSize,
        "component.orders.limits.memory",
        9,
    );
    one(
        &with("[component.orders.limits]\nmemory = -1\n"),
        ErrorKind::InvalidSize,
        "component.orders.limits.memory",
        9,
    );
    let m = ok(&with("[component.orders.limits]\nmemory = 1048576\n"));
    assert_eq!(m.components["orders"].limits.memory.bytes(), 1 << 20);
}

#[test]
fn max_concurrency_positive() {
    one(
        &with("[component.orders.limits]\nmax_concurrency = 0\n"),
        ErrorKind::InvalidValue,
        "component.orders.limits.max_concurrency",
        9,
    );
}

// --------------------------------------------------------------- triggers

#[test]
fn duplicate_routes_name_both() {
    let text = with(
        "[[trigger.http]]\nroute = \"/orders\"\ncomponent = \"orders\"\n\n[[trigger.http]]\nroute = \"/orders/\"\ncomponent = \"orders\"\n",
    );
    let d = one(
        &text,
        ErrorKind::DuplicateRoute,
        "trigger.http[1].route",
        13,
    );
    assert!(
        d.message
            .contains("duplicate route \"/orders\": also used by trigger.http[0] (line 9)"),
        "{d}"
    );
    // An exact route and a wildcard on the same path are different routes.
    ok(&with(
        "[[trigger.http]]\nroute = \"/orders\"\ncomponent = \"orders\"\n[[trigger.http]]\nroute = \"/orders/...\"\ncomponent = \"orders\"\n",
    ));
}

#[test]
fn route_syntax() {
    let d = one(
        &with("[[trigger.http]]\nroute = \"orders\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidRoute,
        "trigger.http[0].route",
        9,
    );
    assert!(d.message.contains("must start with '/'"), "{d}");
    one(
        &with("[[trigger.http]]\nroute = \"/a/.../b\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidRoute,
        "trigger.http[0].route",
        9,
    );
}

#[test]
fn trigger_component_must_exist() {
    for kind in [
        "http]]\nroute = \"/x\"",
        "nats]]\nsubject = \"x\"",
        "mqtt]]\ntopic = \"x\"",
        "amqp]]\nsource = \"x\"",
        "kafka]]\ntopic = \"x\"",
    ] {
        let text = with(&format!("[[trigger.{kind}\ncomponent = \"ordrs\"\n"));
        let trigger = kind.split(']').next().unwrap();
        let d = one(
            &text,
            ErrorKind::UnknownComponent,
            &format!("trigger.{trigger}[0].component"),
            10,
        );
        assert!(
            d.message
                .contains("no component named \"ordrs\" (defined components: orders); did you mean \"orders\"?"),
            "{d}"
        );
    }
    let d = one(
        &with("[[trigger.http]]\nroute = \"/x\"\ncomponent = \"billing\"\n"),
        ErrorKind::UnknownComponent,
        "trigger.http[0].component",
        10,
    );
    assert!(
        d.message.ends_with("add a [component.billing] table"),
        "{d}"
    );
}

#[test]
fn broker_addresses() {
    let d = one(
        &with(
            "[[trigger.nats]]\naddress = \"mqtt://h:1\"\nsubject = \"x\"\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidUri,
        "trigger.nats[0].address",
        9,
    );
    assert!(d.message.contains("expected a nats:// address"), "{d}");
    one(
        &with(
            "[[trigger.mqtt]]\naddress = \"mqtt://h:1/topic\"\ntopic = \"x\"\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidUri,
        "trigger.mqtt[0].address",
        9,
    );
    one(
        &with("[[trigger.amqp]]\naddress = \"amqp://\"\nsource = \"x\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidUri,
        "trigger.amqp[0].address",
        9,
    );
    one(
        &with(
            "[[trigger.kafka]]\nbrokers = [\"k:1\", \"kafka://k:2\"]\ntopic = \"x\"\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidUri,
        "trigger.kafka[0].brokers[1]",
        9,
    );
    one(
        &with("[[trigger.kafka]]\nbrokers = []\ntopic = \"x\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.kafka[0].brokers",
        9,
    );
}

#[test]
fn subjects_and_topics() {
    one(
        &with("[[trigger.nats]]\nsubject = \"a.>.b\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.nats[0].subject",
        9,
    );
    one(
        &with("[[trigger.mqtt]]\ntopic = \"a/#/b\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.mqtt[0].topic",
        9,
    );
    one(
        &with("[[trigger.kafka]]\ntopic = \"a b\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.kafka[0].topic",
        9,
    );
    one(
        &with("[[trigger.amqp]]\nsource = \"\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.amqp[0].source",
        9,
    );
    one(
        &with("[[trigger.nats]]\nsubject = \"a\"\nqueue_group = \"a b\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.nats[0].queue_group",
        10,
    );
}

#[test]
fn mqtt_settings() {
    one(
        &with("[[trigger.mqtt]]\ntopic = \"t\"\nqos = 3\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.mqtt[0].qos",
        10,
    );
    one(
        &with("[[trigger.mqtt]]\ntopic = \"t\"\nprotocol = \"4\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.mqtt[0].protocol",
        10,
    );
    let d = one(
        &with(
            "[[trigger.mqtt]]\ntopic = \"t\"\npersistent_session = true\ncomponent = \"orders\"\n",
        ),
        ErrorKind::MissingKey,
        "trigger.mqtt[0].persistent_session",
        10,
    );
    assert!(d.message.contains("client_id"), "{d}");
}

#[test]
fn kafka_group_defaults_per_component() {
    let m = ok(&with(
        "[[trigger.kafka]]\ntopic = \"t\"\ncomponent = \"orders\"\n",
    ));
    assert_eq!(m.triggers.kafka[0].group, "app-orders");
    assert_eq!(m.triggers.kafka[0].brokers[0].to_string(), "127.0.0.1:9092");
}

// ------------------------------------------------------ application.http/admin

#[test]
fn max_body_size_minimum() {
    let d = one(
        &format!("{BASE}[application.http]\nmax_body_size = \"32KiB\"\n"),
        ErrorKind::InvalidSize,
        "application.http.max_body_size",
        9,
    );
    assert!(d.message.contains("64KiB"), "{d}");
    one(
        &format!("{BASE}[application.http]\nmax_body_size = \"lots\"\n"),
        ErrorKind::InvalidSize,
        "application.http.max_body_size",
        9,
    );
}

#[test]
fn webhook_origins_and_rate() {
    one(
        &format!("{BASE}[application.http]\nallowed_origins = [\"https://x.com\"]\n"),
        ErrorKind::InvalidValue,
        "application.http.allowed_origins[0]",
        9,
    );
    one(
        &format!("{BASE}[application.http]\nallowed_rate = 0\n"),
        ErrorKind::InvalidValue,
        "application.http.allowed_rate",
        9,
    );
}

#[test]
fn secrets() {
    one(
        &format!("{BASE}[application.http]\nauth_token = \"\"\n"),
        ErrorKind::InvalidValue,
        "application.http.auth_token",
        9,
    );
    one(
        &format!("{BASE}[application.admin]\ntoken = {{ env = \"NOT-VALID\" }}\n"),
        ErrorKind::InvalidValue,
        "application.admin.token.env",
        9,
    );
    one(
        &format!("{BASE}[application.admin]\ntoken = {{ path = \"x\" }}\n"),
        ErrorKind::UnknownKey,
        "application.admin.token.path",
        9,
    );
    let m = ok(&format!(
        "{BASE}[application.admin]\ntoken = {{ file = \"secrets/admin\" }}\n"
    ));
    assert_eq!(
        m.application.admin.token,
        Some(manifest::Secret::File("/app/secrets/admin".into()))
    );
}

#[test]
fn admin_listen() {
    let d = one(
        &format!("{BASE}[application.admin]\nlisten = \"0.0.0.0:3001\"\n"),
        ErrorKind::InvalidValue,
        "application.admin.listen",
        9,
    );
    assert!(d.message.contains("token"), "{d}");
    one(
        &format!("{BASE}[application.admin]\nlisten = \"localhost\"\n"),
        ErrorKind::InvalidValue,
        "application.admin.listen",
        9,
    );
    let m = ok(&format!(
        "{BASE}[application.admin]\nlisten = \"0.0.0.0:4000\"\ntoken = \"t\"\n"
    ));
    assert_eq!(m.application.admin.listen.port(), 4000);
}

// ---------------------------------------------------------- error reporting

#[test]
fn all_errors_are_reported_in_line_order() {
    let text = with(
        "[component.orders.limits]\ntimeout = \"x\"\nmemory = \"y\"\n\n[[trigger.http]]\nroute = \"nope\"\ncomponent = \"missing\"\n",
    );
    let d = errors(&text);
    let lines: Vec<_> = d.iter().map(|d| d.line.unwrap()).collect();
    assert_eq!(lines, [9, 10, 13, 14], "{d:#?}");
    let err = ManifestError::Invalid(d);
    assert_eq!(err.to_string().lines().count(), 4);
}

#[test]
fn file_name_appears_in_messages() {
    let e = Manifest::from_str_named("x = = 1", "/", "apps/spindle.toml").unwrap_err();
    assert!(e.to_string().starts_with("apps/spindle.toml:1: "), "{e}");
}

#[test]
fn header_values_without_control_characters() {
    one(
        &with(
            "[component.orders.outputs]\nh = { uri = \"http://h/\", headers = { X = \"a\\nb\" } }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.h.headers.X",
        9,
    );
}

#[test]
fn jetstream_and_group_names() {
    one(
        &with(
            "[[trigger.nats]]\nsubject = \"a\"\njetstream = { stream = \"\" }\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidValue,
        "trigger.nats[0].jetstream.stream",
        10,
    );
    one(
        &with(
            "[[trigger.nats]]\nsubject = \"a\"\njetstream = { stream = \"S\", durable = \"a b\" }\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidValue,
        "trigger.nats[0].jetstream.durable",
        10,
    );
    one(
        &with("[[trigger.kafka]]\ntopic = \"t\"\ngroup = \"\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.kafka[0].group",
        10,
    );
}

#[test]
fn mqtt_client_id_length() {
    one(
        &with("[[trigger.mqtt]]\ntopic = \"t\"\nclient_id = \"\"\ncomponent = \"orders\"\n"),
        ErrorKind::InvalidValue,
        "trigger.mqtt[0].client_id",
        10,
    );
}

#[test]
fn build_workdir_not_empty() {
    one(
        &with("[component.orders.build]\ncommand = \"make\"\nworkdir = \"\"\n"),
        ErrorKind::InvalidValue,
        "component.orders.build.workdir",
        10,
    );
}

#[test]
fn file_mount_source_not_empty() {
    one(
        &with("files = [{ source = \"\", destination = \"/x\" }]\n"),
        ErrorKind::InvalidValue,
        "component.orders.files[0].source",
        8,
    );
}

#[test]
fn no_credentials_in_addresses() {
    let d = one(
        &with(
            "[[trigger.amqp]]\naddress = \"amqp://user:pw@h\"\nsource = \"q\"\ncomponent = \"orders\"\n",
        ),
        ErrorKind::InvalidUri,
        "trigger.amqp[0].address",
        9,
    );
    assert!(d.message.contains("credentials"), "{d}");
    let d = one(
        &with("[component.orders.outputs]\nx = \"https://u:p@h/\"\n"),
        ErrorKind::InvalidUri,
        "component.orders.outputs.x",
        9,
    );
    assert!(d.message.contains("credentials"), "{d}");
}

#[test]
fn listener_limits_parse_into_the_server_stack_type() {
    let m = ok(&format!(
        "{BASE}[application.http]\nheader_timeout = \"2s\"\nbody_timeout = \"1m\"\nidle_timeout = \"90s\"\nmax_connections = 3\n[application.admin]\nidle_timeout = \"5s\"\n"
    ));
    let http = m.application.http.limits;
    assert_eq!(http.header_timeout, std::time::Duration::from_secs(2));
    assert_eq!(http.body_timeout, std::time::Duration::from_secs(60));
    assert_eq!(http.idle_timeout, std::time::Duration::from_secs(90));
    assert_eq!(http.max_connections, 3);
    let admin = m.application.admin.limits;
    assert_eq!(admin.idle_timeout, std::time::Duration::from_secs(5));
    assert_eq!(
        admin.max_connections,
        manifest::DEFAULT_ADMIN_MAX_CONNECTIONS
    );
    assert_eq!(
        ok(BASE).application.http.limits,
        manifest::ListenerLimits::default()
    );
}

#[test]
fn listener_limits_out_of_range_are_refused() {
    one(
        &format!("{BASE}[application.http]\nheader_timeout = \"0s\"\n"),
        ErrorKind::InvalidDuration,
        "application.http.header_timeout",
        9,
    );
    one(
        &format!("{BASE}[application.admin]\nbody_timeout = \"soon\"\n"),
        ErrorKind::InvalidDuration,
        "application.admin.body_timeout",
        9,
    );
    one(
        &format!("{BASE}[application.http]\nmax_connections = 0\n"),
        ErrorKind::InvalidValue,
        "application.http.max_connections",
        9,
    );
}

/// `watch` was documented for a `spindle watch` command that does not exist: the key is
/// gone, and a manifest that still has it is told so instead of silently ignored.
#[test]
fn build_watch_is_not_a_key() {
    one(
        &with("[component.orders.build]\ncommand = \"make\"\nwatch = [\"src/**\"]\n"),
        ErrorKind::UnknownKey,
        "component.orders.build.watch",
        10,
    );
}

#[test]
fn outbound_hosts_in_spin_format_become_engine_grants() {
    let m = ok(&with(
        "allowed_outbound_hosts = [\"https://api.example.com\", \"tcp://127.0.0.1:5432\"]\n",
    ));
    let grants = &m.component("orders").unwrap().allowed_outbound_hosts;
    assert!(grants[0].allows("https", "api.example.com", 443));
    assert!(!grants[0].allows("http", "api.example.com", 80));
    assert!(grants[1].allows("tcp", "127.0.0.1", 5432));
    one(
        &with("allowed_outbound_hosts = [\"tcp://db.internal\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.allowed_outbound_hosts[0]",
        8,
    );
}

// ------------------------------------------------------------ broker TLS

#[test]
fn broker_tls_settings_travel_with_the_address() {
    let m = ok(&with(
        r#"
[[trigger.amqp]]
address = "amqps://rabbit.example.com"
source = "/queue/in"
component = "orders"
tls = { ca = "ca.pem", cert = "client.pem", key = "client-key.pem" }

[[trigger.kafka]]
brokers = ["k1:9093", "k2:9093"]
topic = "in"
component = "orders"
tls = true

[component.orders.outputs]
out = { uri = "mqtts://mqtt.example.com/out", tls = { ca = "ca.pem" } }
"#,
    ));
    let amqp = &m.triggers.amqp[0].address;
    assert_eq!(amqp.port, 5671);
    let tls = amqp.tls.as_ref().expect("amqps is TLS");
    assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("/app/ca.pem")));
    assert_eq!(
        tls.identity.as_ref().unwrap().key,
        std::path::Path::new("/app/client-key.pem")
    );
    for broker in &m.triggers.kafka[0].brokers {
        assert_eq!(broker.tls, Some(manifest::ClientTls::default()));
    }
    let output = &m.components.values().next().unwrap().outputs["out"];
    assert_eq!(
        output.tls, None,
        "a broker output's TLS goes with its address"
    );
    match &output.sink {
        manifest::Sink::Mqtt { broker, .. } => assert_eq!(
            broker.tls.as_ref().unwrap().ca.as_deref(),
            Some(std::path::Path::new("/app/ca.pem"))
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn broker_tls_settings_need_a_tls_address() {
    let d = one(
        &with(
            r#"
[[trigger.nats]]
address = "nats://127.0.0.1:4222"
subject = "in"
component = "orders"
tls = { ca = "ca.pem" }
"#,
        ),
        ErrorKind::InvalidValue,
        "trigger.nats[0].tls",
        13,
    );
    assert!(d.message.contains("nats+tls://"), "{d}");
    let d = one(
        &with(
            r#"
[component.orders.outputs]
out = { uri = "kafka://k:9092/out", tls = { ca = "ca.pem" } }
"#,
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.out.tls",
        10,
    );
    assert!(d.message.contains("kafka+tls"), "{d}");
    one(
        &with(
            r#"
[[trigger.kafka]]
topic = "in"
component = "orders"
tls = { cert = "client.pem" }
"#,
        ),
        ErrorKind::InvalidValue,
        "trigger.kafka[0].tls",
        12,
    );
}

#[test]
fn store_and_output_queue_bounds_are_positive() {
    let store = |body: &str| with(&format!("\n[application.store]\n{body}\n"));
    let m = ok(&store(
        "max_queued_events = 10\nmax_queued_bytes = \"1MiB\"\nmax_dead_letters = 3",
    ));
    assert_eq!(
        m.application.store,
        manifest::StoreLimits {
            max_queued_events: Some(10),
            max_queued_bytes: Some(1024 * 1024),
            max_dead_letters: Some(3),
        }
    );
    assert_eq!(ok(BASE).application.store, manifest::StoreLimits::default());
    one(
        &store("max_queued_events = 0"),
        ErrorKind::InvalidValue,
        "application.store.max_queued_events",
        10,
    );
    one(
        &store("max_queued_bytes = \"0B\""),
        ErrorKind::InvalidSize,
        "application.store.max_queued_bytes",
        10,
    );
    one(
        &store("max_dead_letters = -5"),
        ErrorKind::InvalidValue,
        "application.store.max_dead_letters",
        10,
    );

    let output = |extra: &str| {
        with(&format!(
            "[component.orders.outputs]\nnext = {{ uri = \"http://127.0.0.1:9/x\", {extra} }}\n"
        ))
    };
    let m = ok(&output(
        "max_dead_letters = 7, dead_letter_retention = \"2h\"",
    ));
    let limits = m.components["orders"].outputs["next"].limits;
    assert_eq!(limits.max_dead_letters, Some(7));
    assert_eq!(
        limits.dead_letter_retention,
        Some(std::time::Duration::from_secs(7200))
    );
    one(
        &output("dead_letter_retention = \"0s\""),
        ErrorKind::InvalidValue,
        "component.orders.outputs.next.dead_letter_retention",
        9,
    );
    one(
        &output("max_queued_events = 0"),
        ErrorKind::InvalidValue,
        "component.orders.outputs.next.max_queued_events",
        9,
    );
}

// ------------------------------------------------------------ consumes / produces

#[test]
fn declared_messages_parse_into_types_with_resolved_schemas() {
    let m = ok(&with(
        r#"consumes = ["com.example.greet", { type = "com.example.order", dataschema = "schemas/order.json", description = "An order" }]
produces = [{ type = "com.example.greeting", dataschema = "https://registry.example.com/s/greeting", datacontenttype = "application/cloudevents-data+json" }]
"#,
    ));
    let c = &m.components["orders"];
    assert_eq!(c.consumes[0].ty, "com.example.greet");
    assert_eq!(c.consumes[0].dataschema, None);
    assert_eq!(
        c.consumes[1].dataschema,
        Some(manifest::SchemaRef::File("/app/schemas/order.json".into()))
    );
    assert_eq!(c.consumes[1].description.as_deref(), Some("An order"));
    assert!(matches!(
        &c.produces[0].dataschema,
        Some(manifest::SchemaRef::Url(u)) if u.as_str() == "https://registry.example.com/s/greeting"
    ));
}

#[test]
fn a_type_declared_twice_is_refused() {
    one(
        &with("consumes = [\"a.b\", { type = \"a.b\" }]\n"),
        ErrorKind::InvalidValue,
        "component.orders.consumes[1].type",
        8,
    );
}

#[test]
fn an_empty_type_is_refused() {
    one(
        &with("produces = [\"\"]\n"),
        ErrorKind::InvalidValue,
        "component.orders.produces[0].type",
        8,
    );
}

#[test]
fn a_schema_must_be_a_file_or_an_http_url() {
    one(
        &with("consumes = [{ type = \"a\", dataschema = \"ftp://x/s.json\" }]\n"),
        ErrorKind::InvalidUri,
        "component.orders.consumes[0].dataschema",
        8,
    );
}

#[test]
fn a_json_schema_with_non_json_data_is_refused() {
    let d = one(
        &with(
            "consumes = [{ type = \"a\", dataschema = \"s.json\", datacontenttype = \"application/xml\" }]\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.consumes[0].datacontenttype",
        8,
    );
    assert!(d.message.contains("not JSON"), "{d}");
    one(
        &with("consumes = [{ type = \"a\", datacontenttype = \"json\" }]\n"),
        ErrorKind::InvalidValue,
        "component.orders.consumes[0].datacontenttype",
        8,
    );
}

#[test]
fn public_url_must_be_an_http_url() {
    let text =
        "spindle_manifest_version = 1\n[application]\nname = \"app\"\npublic_url = \"ftp://x\"\n";
    one(text, ErrorKind::InvalidUri, "application.public_url", 4);
    let m = ok(
        "spindle_manifest_version = 1\n[application]\nname = \"app\"\npublic_url = \"https://events.example.com/base\"\n",
    );
    assert_eq!(
        m.application.public_url.unwrap().as_str(),
        "https://events.example.com/base"
    );
}

#[test]
fn cluster_needs_a_nats_address_and_replicas_jetstream_allows() {
    let base =
        "spindle_manifest_version = 1\n[application]\nname = \"app\"\n[application.cluster]\n";
    one(
        &format!("{base}nats = \"http://127.0.0.1:4222\"\n"),
        ErrorKind::InvalidUri,
        "application.cluster.nats",
        5,
    );
    one(
        &format!("{base}nats = \"nats://127.0.0.1:4222\"\nreplicas = 7\n"),
        ErrorKind::InvalidValue,
        "application.cluster.replicas",
        6,
    );
    let m = ok(&format!(
        "{base}nats = \"tls://nats.example.com:4222\"\nreplicas = 3\n"
    ));
    let cluster = m.application.cluster.unwrap();
    assert_eq!(cluster.nats, "tls://nats.example.com:4222");
    assert_eq!(cluster.replicas, 3);
    assert_eq!(
        ok(&format!("{base}nats = \"nats://127.0.0.1\"\n"))
            .application
            .cluster
            .unwrap()
            .replicas,
        manifest::DEFAULT_CLUSTER_REPLICAS
    );
    // The same rule for `spindle up --cluster`.
    assert!(manifest::Cluster::new("mqtt://127.0.0.1", 1).is_err());
    assert!(manifest::Cluster::new("nats://127.0.0.1:4222", 0).is_err());
}

// ------------------------------------------------------------ [[subscribe]]

const SUBSCRIBER: &str = r#"spindle_manifest_version = 1

[application]
name = "b"

[[trigger.http]]
route = "/from-a"

"#;

#[test]
fn subscribe_parses_into_a_remote_subscription() {
    let m = ok(&format!(
        "{SUBSCRIBER}[[subscribe]]\nregistry = \"http://a:3001/registry\"\nroute = \"/from-a\"\ntypes = [\"x.y\"]\nfilter = \"subject = 'k'\"\ntoken = {{ env = \"A_TOKEN\" }}\nrefresh = \"5s\"\n"
    ));
    let s = &m.subscribe[0];
    assert_eq!(
        s.at,
        manifest::SubscriptionsApi::Registry("http://a:3001/registry".parse().unwrap())
    );
    assert_eq!(s.route, "/from-a");
    assert_eq!(s.types, vec!["x.y"]);
    assert_eq!(s.filter.as_deref(), Some("subject = 'k'"));
    assert_eq!(s.token, Some(manifest::Secret::Env("A_TOKEN".into())));
    assert_eq!(s.refresh, std::time::Duration::from_secs(5));
}

#[test]
fn subscribe_needs_exactly_one_of_registry_and_api() {
    one(
        &format!("{SUBSCRIBER}[[subscribe]]\nroute = \"/from-a\"\n"),
        ErrorKind::InvalidValue,
        "subscribe[0]",
        9,
    );
    one(
        &format!(
            "{SUBSCRIBER}[[subscribe]]\napi = \"http://a/subscriptions\"\nregistry = \"http://a/registry\"\nroute = \"/from-a\"\n"
        ),
        ErrorKind::InvalidValue,
        "subscribe[0]",
        9,
    );
}

#[test]
fn subscribe_route_must_be_served_by_an_http_trigger() {
    one(
        &format!(
            "{SUBSCRIBER}[[subscribe]]\napi = \"http://a/subscriptions\"\nroute = \"/elsewhere\"\n"
        ),
        ErrorKind::InvalidValue,
        "subscribe[0].route",
        11,
    );
}

#[test]
fn subscribe_refresh_is_bounded() {
    one(
        &format!(
            "{SUBSCRIBER}[[subscribe]]\napi = \"http://a/subscriptions\"\nroute = \"/from-a\"\nrefresh = \"10ms\"\n"
        ),
        ErrorKind::InvalidDuration,
        "subscribe[0].refresh",
        12,
    );
}

// ------------------------------------------------------------ output format

#[test]
fn an_output_format_implies_structured_mode() {
    let m = ok(&with(
        "[component.orders.outputs]\nledger = { uri = \"nats://127.0.0.1:4222/ledger\", format = \"protobuf\" }\n",
    ));
    let out = &m.components["orders"].outputs["ledger"];
    assert_eq!(out.format, cloudevent::Format::Protobuf);
    assert_eq!(out.mode, manifest::ContentMode::Structured);
}

#[test]
fn an_output_format_with_binary_mode_is_refused() {
    one(
        &with(
            "[component.orders.outputs]\nledger = { uri = \"nats://127.0.0.1:4222/ledger\", mode = \"binary\", format = \"avro\" }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.ledger.format",
        9,
    );
    one(
        &with(
            "[component.orders.outputs]\nledger = { uri = \"nats://127.0.0.1:4222/ledger\", format = \"xml\" }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.ledger.format",
        9,
    );
}

#[test]
fn mqtt_3_outputs_speak_only_json() {
    one(
        &with(
            "[component.orders.outputs]\nt = { uri = \"mqtt://127.0.0.1:1883/t?version=3.1.1\", format = \"protobuf\" }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.t.format",
        9,
    );
}

#[test]
fn a_sequence_gap_needs_an_ordered_output() {
    let m = ok(&with(
        "[component.orders.outputs]\nledger = { uri = \"nats://127.0.0.1:4222/ledger\", ordered = true, sequence_gap = \"2s\" }\n",
    ));
    assert_eq!(
        m.components["orders"].outputs["ledger"].sequence_gap,
        Some(std::time::Duration::from_secs(2))
    );
    one(
        &with(
            "[component.orders.outputs]\nledger = { uri = \"nats://127.0.0.1:4222/ledger\", sequence_gap = \"2s\" }\n",
        ),
        ErrorKind::InvalidValue,
        "component.orders.outputs.ledger.sequence_gap",
        9,
    );
}

#[test]
fn an_http_dedup_window_needs_a_cloudevents_route_with_a_component() {
    let m = ok(&with(
        "[[trigger.http]]\nroute = \"/o\"\ncomponent = \"orders\"\ndedup_window = \"10m\"\n",
    ));
    assert_eq!(
        m.triggers.http[0].dedup_window,
        Some(std::time::Duration::from_secs(600))
    );
    one(
        &with("[[trigger.http]]\nroute = \"/o\"\ndedup_window = \"10m\"\n"),
        ErrorKind::InvalidValue,
        "trigger.http[0].dedup_window",
        10,
    );
}
