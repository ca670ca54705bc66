//! The app described as an xRegistry document (the CloudEvents registry model: endpoints,
//! message groups, schema groups), and lookups into it for the read-only registry API.
//!
//! - **endpoints**: each trigger (HTTP route or broker subject/topic/address) as a `producer`
//!   endpoint, where clients send the events the app takes in; each output binding as a
//!   `consumer` endpoint, where the app's events can be read; and the Subscriptions API as the
//!   `subscriber` endpoint, the subscription manager.
//! - **messagegroups**: `<component>.consumes` and `<component>.produces`, one message
//!   definition per declared type, with its CloudEvents `type` constraint and its schema.
//! - **schemagroups**: one group named after the app, one schema per event type, one version
//!   per distinct schema declared for it.

use manifest::{HttpExecutor, Manifest, MessageDecl, Sink};
use serde_json::{Map, Value, json};
use transports::Transport;

use crate::catalog::Catalog;

/// The envelope every message definition declares.
pub const ENVELOPE: &str = "CloudEvents/1.0";

/// Where the app can be reached, as others should see it.
#[derive(Debug, Clone)]
pub struct Addresses {
    /// The HTTP trigger's base URL (`[application] public_url`, else the listener's).
    pub http: url::Url,
    /// The admin listener's base URL: the Subscriptions API and the registry live there.
    pub admin: url::Url,
}

impl Addresses {
    /// The addresses of listeners bound at `http` and `admin`: `public_url` for the HTTP
    /// trigger when the manifest sets one. A listener on an unspecified address (`0.0.0.0`)
    /// is advertised as loopback; set `[application] public_url` for what others should use.
    pub fn of_listeners(
        public_url: Option<&url::Url>,
        http: (std::net::SocketAddr, bool),
        admin: (std::net::SocketAddr, bool),
    ) -> Addresses {
        let base = |(mut addr, tls): (std::net::SocketAddr, bool)| {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let scheme = if tls { "https" } else { "http" };
            url::Url::parse(&format!("{scheme}://{addr}"))
                .expect("a socket address is a valid authority")
        };
        Addresses {
            http: public_url.cloned().unwrap_or_else(|| base(http)),
            admin: base(admin),
        }
    }

    /// Where the registry is served: `<admin>/registry`.
    pub fn registry_base(&self) -> String {
        format!("{}/registry", self.admin.as_str().trim_end_matches('/'))
    }
}

/// An xRegistry id for a name: the characters ids allow, anything else as `_`.
pub fn encode_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '~' | '@' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the document for `manifest`, whose schemas `catalog` loaded.
pub fn build(manifest: &Manifest, catalog: &Catalog, addresses: &Addresses) -> Value {
    let groups = message_groups(manifest, catalog);
    let all_groups: Vec<Value> = groups
        .keys()
        .map(|g| Value::String(format!("/messagegroups/{g}")))
        .collect();
    let group_of = |component: &str, side: &str| -> Vec<Value> {
        let id = encode_id(&format!("{component}.{side}"));
        if groups.contains_key(&id) {
            vec![Value::String(format!("/messagegroups/{id}"))]
        } else {
            Vec::new()
        }
    };

    let mut endpoints = Map::new();
    let mut add = |id: String, mut endpoint: Value| {
        let mut id = encode_id(&id);
        if endpoints.contains_key(&id) {
            let mut n = 2;
            while endpoints.contains_key(&format!("{id}-{n}")) {
                n += 1;
            }
            id = format!("{id}-{n}");
        }
        endpoint["endpointid"] = Value::String(id.clone());
        endpoints.insert(id, endpoint);
    };

    let app = &manifest.application.name;
    let http_base = addresses.http.as_str().trim_end_matches('/');
    for trigger in &manifest.triggers.http {
        if trigger.executor == HttpExecutor::WasiHttp {
            continue;
        }
        let component = trigger.component.as_ref().map(|c| c.as_str());
        let uri = format!(
            "{http_base}{}",
            trigger.route.to_string().trim_end_matches("/...")
        );
        add(
            format!("http.{}", component.unwrap_or("ingress")),
            json!({
                "description": match component {
                    Some(c) => format!("Send CloudEvents here for component {c} (HTTP binding: binary, structured or batched; the webhook handshake is answered)"),
                    None => "Send CloudEvents here for the app's subscriptions (HTTP binding: binary, structured or batched)".to_owned(),
                },
                "usage": ["producer"],
                "protocol": "HTTP",
                "protocoloptions": { "endpoints": [{ "uri": uri }], "method": "POST" },
                "envelope": ENVELOPE,
                "labels": { "contentmodes": "binary,structured,batch" },
                "messagegroups": match component {
                    Some(c) => group_of(c, "consumes"),
                    None => Vec::new(),
                },
            }),
        );
    }
    // Each broker trigger: where to publish for its component.
    let triggers = &manifest.triggers;
    let nats = triggers.nats.iter().map(|t| {
        let mut options =
            json!({ "endpoints": [{ "uri": transports::nats::Nats.endpoint_uri(&t.address) }], "subject": t.subject });
        if let Some(group) = &t.queue_group {
            options["queuegroup"] = Value::String(group.clone());
        }
        ("nats", "NATS", options, &t.component)
    });
    let mqtt = triggers.mqtt.iter().map(|t| {
        let options = json!({
            "endpoints": [{ "uri": transports::mqtt::Mqtt.endpoint_uri(&t.address) }],
            "topicfilter": t.topic,
            "qos": t.qos as u8,
        });
        (
            "mqtt",
            transports::mqtt::registry_protocol(t.protocol),
            options,
            &t.component,
        )
    });
    let amqp = triggers.amqp.iter().map(|t| {
        let options =
            json!({ "endpoints": [{ "uri": transports::amqp::Amqp.endpoint_uri(&t.address) }], "node": t.source });
        ("amqp", "AMQP/1.0", options, &t.component)
    });
    let kafka = triggers.kafka.iter().map(|t| {
        let uris: Vec<Value> = t
            .brokers
            .iter()
            .map(|b| json!({ "uri": transports::kafka::Kafka.endpoint_uri(b) }))
            .collect();
        let options = json!({ "endpoints": uris, "topic": t.topic, "consumergroup": t.group });
        ("kafka", "KAFKA", options, &t.component)
    });
    for (kind, protocol, options, component) in nats.chain(mqtt).chain(amqp).chain(kafka) {
        add(
            format!("{kind}.{component}"),
            broker_endpoint(
                protocol,
                options,
                group_of(component.as_str(), "consumes"),
                component,
            ),
        );
    }
    for (id, component) in &manifest.components {
        for (name, output) in &component.outputs {
            let (protocol, options) = sink_options(&output.sink);
            add(
                format!("output.{id}.{name}"),
                json!({
                    "description": format!("Where component {id} delivers its events (output `{name}`)"),
                    "usage": ["consumer"],
                    "protocol": protocol,
                    "protocoloptions": options,
                    "envelope": ENVELOPE,
                    "envelopeoptions": { "mode": match output.mode {
                        manifest::ContentMode::Binary => "binary",
                        manifest::ContentMode::Structured => "structured",
                    } },
                    "messagegroups": group_of(id.as_str(), "produces"),
                }),
            );
        }
    }
    let admin = addresses.admin.as_str().trim_end_matches('/');
    add(
        "subscriptions".to_owned(),
        json!({
            "description": format!("The CloudEvents Subscriptions API of {app}: subscribe to the events it takes in and produces"),
            "usage": ["subscriber"],
            "protocol": "HTTP",
            "protocoloptions": { "endpoints": [{ "uri": format!("{admin}/subscriptions") }] },
            "envelope": ENVELOPE,
            "messagegroups": all_groups,
        }),
    );

    json!({
        "endpoints": endpoints,
        "messagegroups": groups,
        "schemagroups": schema_groups(catalog),
    })
}

fn broker_endpoint(
    protocol: &str,
    options: Value,
    groups: Vec<Value>,
    component: &manifest::ComponentId,
) -> Value {
    json!({
        "description": format!("Publish CloudEvents here for component {component} (binary or structured mode)"),
        "usage": ["producer"],
        "protocol": protocol,
        "protocoloptions": options,
        "envelope": ENVELOPE,
        "labels": { "contentmodes": "binary,structured" },
        "messagegroups": groups,
    })
}

/// An output's protocol and options.
fn sink_options(sink: &Sink) -> (&'static str, Value) {
    if let Some(transport) = sink.transport() {
        return transport.registry_endpoint(sink);
    }
    let Sink::Http { url } = sink else {
        return ("HTTP", Value::Null);
    };
    // The query may carry an access token: never advertise it.
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    (
        "HTTP",
        json!({ "endpoints": [{ "uri": url.as_str() }], "method": "POST" }),
    )
}

fn message_groups(manifest: &Manifest, catalog: &Catalog) -> Map<String, Value> {
    let mut groups = Map::new();
    for (id, component) in &manifest.components {
        for (side, decls) in [
            ("consumes", &component.consumes),
            ("produces", &component.produces),
        ] {
            if decls.is_empty() {
                continue;
            }
            let group_id = encode_id(&format!("{id}.{side}"));
            let messages: Map<String, Value> = decls
                .iter()
                .map(|decl| {
                    let message_id = encode_id(&decl.ty);
                    (message_id.clone(), message(&message_id, decl, catalog))
                })
                .collect();
            groups.insert(
                group_id.clone(),
                json!({
                    "messagegroupid": group_id,
                    "description": format!("The events component {id} {}", if side == "consumes" { "handles" } else { "emits" }),
                    "envelope": ENVELOPE,
                    "messages": messages,
                }),
            );
        }
    }
    groups
}

fn message(message_id: &str, decl: &MessageDecl, catalog: &Catalog) -> Value {
    let mut metadata = json!({
        "specversion": { "value": "1.0", "required": true },
        "id": { "required": true },
        "source": { "required": true },
        "type": { "value": decl.ty, "required": true },
    });
    let mut message = json!({
        "messageid": message_id,
        "envelope": ENVELOPE,
    });
    if let Some(description) = &decl.description {
        message["description"] = Value::String(description.clone());
    }
    let version = decl
        .dataschema
        .as_ref()
        .and_then(|r| catalog.version_of(&decl.ty, r));
    if let Some(media) = decl.media_type() {
        message["datacontenttype"] = Value::String(media.to_owned());
        metadata["datacontenttype"] = json!({ "value": media });
    }
    if let Some(version) = version {
        message["dataschemaformat"] = Value::String(version.schema.format().to_owned());
        message["dataschemauri"] = Value::String(format!(
            "/schemagroups/{}/schemas/{}/versions/{}",
            encode_id(catalog.group()),
            encode_id(&version.schema_id),
            version.version
        ));
        metadata["dataschema"] = json!({ "value": version.uri });
    }
    message["envelopemetadata"] = metadata;
    message
}

fn schema_groups(catalog: &Catalog) -> Value {
    if catalog.versions().is_empty() {
        return json!({});
    }
    let group = encode_id(catalog.group());
    let mut schemas = Map::new();
    for v in catalog.versions() {
        let schema_id = encode_id(&v.schema_id);
        let entry = schemas.entry(schema_id.clone()).or_insert_with(
            || json!({ "schemaid": schema_id, "format": v.schema.format(), "versions": {} }),
        );
        let mut version = json!({
            "versionid": v.version.to_string(),
            "schemaid": schema_id,
            "format": v.schema.format(),
        });
        match &v.reference {
            manifest::SchemaRef::Url(url) => version["schemaurl"] = Value::String(url.to_string()),
            manifest::SchemaRef::File(_) => version["schema"] = v.schema.document().clone(),
        }
        entry["versions"][v.version.to_string()] = version;
    }
    json!({ group.clone(): { "schemagroupid": group, "schemas": schemas } })
}
