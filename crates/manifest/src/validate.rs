//! Semantic validation: turns the raw serde layer into the typed model,
//! collecting every problem as a located [`Diagnostic`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Component as PathComponent, Path};
use std::time::Duration;

use toml::Spanned;
use url::Url;

use crate::error::{Diagnostic, ErrorKind, ManifestError};
use crate::locate::{key_path_at, line_of, quote_key};
use crate::model::*;
use crate::names;
use crate::raw::*;
use crate::route::Route;
use crate::sink::{Endpoint, Sink};
use crate::units::{ByteSize, parse_duration, parse_size};

/// Collects diagnostics while walking the raw manifest.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, kind: ErrorKind, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line: Some(line_of(self.text, span.start)),
            key: key.to_owned(),
            kind,
            message: message.into(),
        });
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }
}

/// Parses and validates manifest text. `file` is only used in messages.
pub(crate) fn parse(text: &str, base_dir: &Path, file: &str) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(ManifestError::Invalid(vec![serde_diagnostic(
                text, file, &e,
            )]));
        }
    };
    let mut cx = Ctx {
        text,
        file,
        diags: Vec::new(),
    };
    let manifest = build(&mut cx, raw, base_dir);
    if cx.diags.is_empty() {
        Ok(manifest)
    } else {
        let mut diags = cx.diags;
        diags.sort_by_key(|d| d.line);
        Err(ManifestError::Invalid(diags))
    }
}

/// Converts a TOML/serde error into a diagnostic naming the key and line.
fn serde_diagnostic(text: &str, file: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let syntax = toml::de::DeTable::parse(text).is_err();
    let key = if syntax {
        String::new()
    } else {
        key_path_at(text, &span)
    };
    let raw_message = e.message().trim().to_owned();
    let (kind, mut message) = if syntax {
        (ErrorKind::Syntax, format!("invalid TOML: {raw_message}"))
    } else if raw_message.starts_with("unknown field") {
        (
            ErrorKind::UnknownKey,
            raw_message.replacen("unknown field", "unknown key", 1),
        )
    } else if let Some(rest) = raw_message.strip_prefix("missing field") {
        (ErrorKind::MissingKey, format!("missing required key{rest}"))
    } else {
        (ErrorKind::InvalidValue, raw_message)
    };
    if key == "spin_manifest_version" {
        message.push_str(
            " (this looks like a Spin manifest: Spindle manifests start with `spindle_manifest_version = 1`)",
        );
    }
    Diagnostic {
        file: file.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        key,
        kind,
        message,
    }
}

fn build(cx: &mut Ctx<'_>, raw: RawManifest, base_dir: &Path) -> Manifest {
    match &raw.spindle_manifest_version {
        None => cx.err(
            0..0,
            "spindle_manifest_version",
            ErrorKind::Version,
            format!("missing; add `spindle_manifest_version = {MANIFEST_VERSION}` at the top of the file"),
        ),
        Some(v) if *v.get_ref() != MANIFEST_VERSION => cx.err(
            v.span(),
            "spindle_manifest_version",
            ErrorKind::Version,
            format!(
                "unsupported manifest version {} (this Spindle understands version {MANIFEST_VERSION})",
                v.get_ref()
            ),
        ),
        Some(_) => {}
    }

    let application = match raw.application {
        Some(app) => application(cx, app.into_inner()),
        None => {
            cx.err(
                0..0,
                "application",
                ErrorKind::MissingKey,
                "missing [application] table (with at least `name = \"...\"`)",
            );
            placeholder_application()
        }
    };

    let defined: BTreeSet<String> = raw.component.keys().map(|k| k.get_ref().clone()).collect();
    let triggers = triggers(cx, raw.trigger, &defined, &application.name);

    let mut components = BTreeMap::new();
    let mut source_lines = BTreeMap::new();
    for (name, comp) in raw.component {
        let key = format!("component.{}", quote_key(name.get_ref()));
        if let Err(msg) = names::check_component_id(name.get_ref()) {
            cx.err(name.span(), &key, ErrorKind::InvalidName, msg);
        }
        let id = ComponentId(name.into_inner());
        source_lines.insert(id.clone(), cx.line(&comp.get_ref().source.span()));
        let c = component(cx, &key, id.clone(), comp.into_inner(), base_dir);
        components.insert(id, c);
    }

    Manifest {
        manifest_version: raw
            .spindle_manifest_version
            .map(|v| v.into_inner())
            .unwrap_or(MANIFEST_VERSION),
        base_dir: base_dir.to_path_buf(),
        application,
        triggers,
        components,
        origin: Origin {
            file: cx.file.to_owned(),
            source_lines,
        },
    }
}

fn placeholder_application() -> Application {
    Application {
        name: String::new(),
        version: None,
        description: None,
        authors: Vec::new(),
        http: default_http(),
        admin: default_admin(),
    }
}

fn default_http() -> HttpIngress {
    HttpIngress {
        max_body_size: DEFAULT_MAX_BODY_SIZE,
        allowed_origins: Vec::new(),
        allowed_rate: None,
        auth_token: None,
    }
}

fn default_admin() -> Admin {
    Admin {
        listen: DEFAULT_ADMIN_LISTEN
            .parse()
            .expect("default admin address parses"),
        token: None,
    }
}

fn application(cx: &mut Ctx<'_>, app: RawApplication) -> Application {
    if app.name.get_ref().trim().is_empty() {
        cx.err(
            app.name.span(),
            "application.name",
            ErrorKind::InvalidValue,
            "must not be empty",
        );
    }
    let http = match app.http {
        Some(h) => http_ingress(cx, h),
        None => default_http(),
    };
    let admin = match app.admin {
        Some(a) => admin(cx, a),
        None => default_admin(),
    };
    Application {
        name: app.name.into_inner(),
        version: app.version,
        description: app.description,
        authors: app.authors,
        http,
        admin,
    }
}

fn http_ingress(cx: &mut Ctx<'_>, h: RawHttpIngress) -> HttpIngress {
    let key = "application.http.max_body_size";
    let max_body_size = match h.max_body_size {
        None => DEFAULT_MAX_BODY_SIZE,
        Some(v) => match size(cx, key, &v) {
            Some(s) if s < MIN_MAX_BODY_SIZE => {
                cx.err(
                    v.span(),
                    key,
                    ErrorKind::InvalidSize,
                    format!(
                        "{s} is below the minimum of {MIN_MAX_BODY_SIZE} (CloudEvents webhooks must accept events of at least 64 KiB)"
                    ),
                );
                DEFAULT_MAX_BODY_SIZE
            }
            Some(s) => s,
            None => DEFAULT_MAX_BODY_SIZE,
        },
    };
    let mut allowed_origins = Vec::new();
    for (i, o) in h.allowed_origins.into_iter().enumerate() {
        if let Err(msg) = names::check_origin(o.get_ref()) {
            cx.err(
                o.span(),
                &format!("application.http.allowed_origins[{i}]"),
                ErrorKind::InvalidValue,
                msg,
            );
        }
        allowed_origins.push(o.into_inner());
    }
    let allowed_rate = h.allowed_rate.and_then(|r| {
        match u32::try_from(*r.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                cx.err(
                    r.span(),
                    "application.http.allowed_rate",
                    ErrorKind::InvalidValue,
                    format!(
                        "must be a positive number of requests per minute, got {} (leave it out for no limit)",
                        r.get_ref()
                    ),
                );
                None
            }
        }
    });
    let auth_token = h
        .auth_token
        .map(|t| secret(cx, "application.http.auth_token", t));
    HttpIngress {
        max_body_size,
        allowed_origins,
        allowed_rate,
        auth_token,
    }
}

fn admin(cx: &mut Ctx<'_>, a: RawAdmin) -> Admin {
    let token = a.token.map(|t| secret(cx, "application.admin.token", t));
    let mut listen = default_admin().listen;
    if let Some(l) = &a.listen {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(addr) => {
                listen = addr;
                if !addr.ip().is_loopback() && token.is_none() {
                    cx.err(
                        l.span(),
                        "application.admin.listen",
                        ErrorKind::InvalidValue,
                        format!(
                            "{addr} is reachable from other machines; set `token` to protect the admin API, or listen on 127.0.0.1"
                        ),
                    );
                }
            }
            Err(_) => cx.err(
                l.span(),
                "application.admin.listen",
                ErrorKind::InvalidValue,
                format!(
                    "invalid listen address \"{}\" (expected IP:port, e.g. \"127.0.0.1:3001\")",
                    l.get_ref()
                ),
            ),
        }
    }
    Admin { listen, token }
}

fn secret(cx: &mut Ctx<'_>, key: &str, s: Spanned<StrOr<RawSecretTable>>) -> Secret {
    let span = s.span();
    match s.into_inner() {
        StrOr::Str(v) => {
            if v.is_empty() {
                cx.err(span, key, ErrorKind::InvalidValue, "must not be empty");
            }
            Secret::Literal(v)
        }
        StrOr::Table(t) => {
            if let Err(msg) = names::check_env_name(t.env.get_ref()) {
                cx.err(
                    t.env.span(),
                    &format!("{key}.env"),
                    ErrorKind::InvalidValue,
                    msg,
                );
            }
            Secret::Env(t.env.into_inner())
        }
    }
}

fn size(cx: &mut Ctx<'_>, key: &str, v: &Spanned<StrOrInt>) -> Option<ByteSize> {
    let result = match v.get_ref() {
        StrOrInt::Str(s) => parse_size(s).map_err(|e| e.to_string()),
        StrOrInt::Int(n) => u64::try_from(*n)
            .map(ByteSize)
            .map_err(|_| format!("invalid size {n}: must not be negative")),
    };
    match result {
        Ok(s) => Some(s),
        Err(msg) => {
            cx.err(v.span(), key, ErrorKind::InvalidSize, msg);
            None
        }
    }
}

// ---------------------------------------------------------------- triggers

fn check_component_ref(
    cx: &mut Ctx<'_>,
    key: &str,
    name: &Spanned<String>,
    defined: &BTreeSet<String>,
) -> ComponentId {
    if !defined.contains(name.get_ref()) {
        let known = if defined.is_empty() {
            "no components are defined".to_owned()
        } else {
            format!(
                "defined components: {}",
                defined
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        cx.err(
            name.span(),
            key,
            ErrorKind::UnknownComponent,
            format!(
                "no component named \"{}\" ({known}); add a [component.{}] table",
                name.get_ref(),
                quote_key(name.get_ref())
            ),
        );
    }
    ComponentId(name.get_ref().clone())
}

/// Parses a broker address like `nats://host:port` for a trigger.
fn broker_address(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    default: &str,
    scheme: &str,
    default_port: u16,
) -> Endpoint {
    let fallback = || {
        let u = Url::parse(default).expect("default broker address parses");
        Endpoint {
            host: u.host_str().unwrap_or_default().to_owned(),
            port: u.port().unwrap_or(default_port),
        }
    };
    let Some(value) = value else {
        return fallback();
    };
    let text = value.get_ref();
    let problem = match Url::parse(text) {
        Err(e) => Some(format!("not a valid URI ({e})")),
        Ok(u) if u.scheme() != scheme => Some(format!(
            "expected a {scheme}:// address, got scheme \"{}\"",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("missing host".to_owned()),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Some(
            "credentials in the address are not supported (keep secrets out of spindle.toml)"
                .into(),
        ),
        Ok(u) if !matches!(u.path(), "" | "/") || u.query().is_some() || u.fragment().is_some() => {
            Some(
                "a broker address takes no path or query (put subjects/topics in their own keys)"
                    .into(),
            )
        }
        Ok(u) => {
            return Endpoint {
                host: u.host_str().unwrap_or_default().to_owned(),
                port: u.port().unwrap_or(default_port),
            };
        }
    };
    if let Some(problem) = problem {
        cx.err(
            value.span(),
            key,
            ErrorKind::InvalidUri,
            format!("invalid address \"{text}\": {problem} (e.g. \"{default}\")"),
        );
    }
    fallback()
}

fn triggers(
    cx: &mut Ctx<'_>,
    raw: RawTriggers,
    defined: &BTreeSet<String>,
    app_name: &str,
) -> Triggers {
    let mut out = Triggers::default();

    let mut seen_routes: BTreeMap<Route, (usize, usize)> = BTreeMap::new();
    for (i, t) in raw.http.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.http[{i}]");
        let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
        let route = match Route::parse(t.route.get_ref()) {
            Ok(route) => {
                let line = cx.line(&t.route.span());
                if let Some((j, other_line)) = seen_routes.get(&route) {
                    cx.err(
                        t.route.span(),
                        &format!("{key}.route"),
                        ErrorKind::DuplicateRoute,
                        format!(
                            "duplicate route \"{route}\": also used by trigger.http[{j}] (line {other_line})"
                        ),
                    );
                } else {
                    seen_routes.insert(route.clone(), (i, line));
                }
                route
            }
            Err(e) => {
                cx.err(
                    t.route.span(),
                    &format!("{key}.route"),
                    ErrorKind::InvalidRoute,
                    e.to_string(),
                );
                Route::Exact("/".into())
            }
        };
        out.http.push(HttpTrigger {
            route,
            component,
            executor: t.executor,
        });
    }

    for (i, t) in raw.nats.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.nats[{i}]");
        let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
        let address = broker_address(
            cx,
            &format!("{key}.address"),
            t.address.as_ref(),
            DEFAULT_NATS_ADDRESS,
            "nats",
            4222,
        );
        if let Err(msg) = names::check_nats_subject(t.subject.get_ref(), true) {
            cx.err(
                t.subject.span(),
                &format!("{key}.subject"),
                ErrorKind::InvalidValue,
                msg,
            );
        }
        for (name, v) in [("queue_group", t.queue_group.as_ref())] {
            if let Some(v) = v {
                check_token(cx, &format!("{key}.{name}"), v);
            }
        }
        let jetstream = t.jetstream.map(|js| {
            check_token(cx, &format!("{key}.jetstream.stream"), &js.stream);
            if let Some(d) = &js.durable {
                check_token(cx, &format!("{key}.jetstream.durable"), d);
            }
            JetStream {
                stream: js.stream.into_inner(),
                durable: js.durable.map(Spanned::into_inner),
            }
        });
        out.nats.push(NatsTrigger {
            address,
            subject: t.subject.into_inner(),
            queue_group: t.queue_group.map(Spanned::into_inner),
            jetstream,
            component,
        });
    }

    for (i, t) in raw.mqtt.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.mqtt[{i}]");
        let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
        let address = broker_address(
            cx,
            &format!("{key}.address"),
            t.address.as_ref(),
            DEFAULT_MQTT_ADDRESS,
            "mqtt",
            1883,
        );
        if let Err(msg) = names::check_mqtt_topic(t.topic.get_ref(), true) {
            cx.err(
                t.topic.span(),
                &format!("{key}.topic"),
                ErrorKind::InvalidValue,
                msg,
            );
        }
        let qos = match t.qos.as_ref().map(|q| (q, *q.get_ref())) {
            None | Some((_, 1)) => Qos::AtLeastOnce,
            Some((_, 0)) => Qos::AtMostOnce,
            Some((_, 2)) => Qos::ExactlyOnce,
            Some((q, n)) => {
                cx.err(
                    q.span(),
                    &format!("{key}.qos"),
                    ErrorKind::InvalidValue,
                    format!("invalid qos {n} (expected 0, 1 or 2)"),
                );
                Qos::AtLeastOnce
            }
        };
        let protocol = match t.protocol.as_ref().map(|p| (p, p.get_ref().as_str())) {
            None | Some((_, "5")) => MqttVersion::V5,
            Some((_, "3.1.1")) => MqttVersion::V3_1_1,
            Some((p, other)) => {
                cx.err(
                    p.span(),
                    &format!("{key}.protocol"),
                    ErrorKind::InvalidValue,
                    format!("invalid MQTT protocol \"{other}\" (expected \"3.1.1\" or \"5\")"),
                );
                MqttVersion::V5
            }
        };
        let persistent_session = t.persistent_session.as_ref().is_some_and(|p| *p.get_ref());
        if let Some(id) = &t.client_id {
            let len = id.get_ref().len();
            if len == 0 || len > 65535 {
                cx.err(
                    id.span(),
                    &format!("{key}.client_id"),
                    ErrorKind::InvalidValue,
                    "must be 1-65535 bytes long",
                );
            }
        } else if persistent_session {
            let span = t
                .persistent_session
                .as_ref()
                .map(Spanned::span)
                .unwrap_or(0..0);
            cx.err(
                span,
                &format!("{key}.persistent_session"),
                ErrorKind::MissingKey,
                "a persistent session needs a stable `client_id`; set one",
            );
        }
        out.mqtt.push(MqttTrigger {
            address,
            topic: t.topic.into_inner(),
            qos,
            protocol,
            persistent_session,
            client_id: t.client_id.map(Spanned::into_inner),
            component,
        });
    }

    for (i, t) in raw.amqp.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.amqp[{i}]");
        let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
        let address = broker_address(
            cx,
            &format!("{key}.address"),
            t.address.as_ref(),
            DEFAULT_AMQP_ADDRESS,
            "amqp",
            5672,
        );
        check_token(cx, &format!("{key}.source"), &t.source);
        out.amqp.push(AmqpTrigger {
            address,
            source: t.source.into_inner(),
            component,
        });
    }

    for (i, t) in raw.kafka.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.kafka[{i}]");
        let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
        let brokers = match &t.brokers {
            None => vec![kafka_broker(DEFAULT_KAFKA_BROKER).expect("default broker parses")],
            Some(list) if list.get_ref().is_empty() => {
                cx.err(
                    list.span(),
                    &format!("{key}.brokers"),
                    ErrorKind::InvalidValue,
                    "must list at least one broker (leave it out for 127.0.0.1:9092)",
                );
                Vec::new()
            }
            Some(list) => list
                .get_ref()
                .iter()
                .enumerate()
                .filter_map(|(j, b)| match kafka_broker(b.get_ref()) {
                    Ok(ep) => Some(ep),
                    Err(msg) => {
                        cx.err(
                            b.span(),
                            &format!("{key}.brokers[{j}]"),
                            ErrorKind::InvalidUri,
                            msg,
                        );
                        None
                    }
                })
                .collect(),
        };
        if let Err(msg) = names::check_kafka_topic(t.topic.get_ref()) {
            cx.err(
                t.topic.span(),
                &format!("{key}.topic"),
                ErrorKind::InvalidValue,
                msg,
            );
        }
        let group = match &t.group {
            Some(g) => {
                check_token(cx, &format!("{key}.group"), g);
                g.get_ref().clone()
            }
            None => format!("{app_name}-{}", t.component.get_ref()),
        };
        out.kafka.push(KafkaTrigger {
            brokers,
            topic: t.topic.into_inner(),
            group,
            component,
        });
    }

    out
}

/// Names such as queue groups, streams and consumer groups: non-empty,
/// without whitespace or control characters.
fn check_token(cx: &mut Ctx<'_>, key: &str, v: &Spanned<String>) {
    let s = v.get_ref();
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        cx.err(
            v.span(),
            key,
            ErrorKind::InvalidValue,
            format!("invalid value \"{s}\": must be non-empty without whitespace"),
        );
    }
}

fn kafka_broker(s: &str) -> Result<Endpoint, String> {
    let bad =
        || format!("invalid Kafka broker \"{s}\" (expected host:port, e.g. \"127.0.0.1:9092\")");
    if s.contains("://") || s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
        Some(_) => return Err(bad()),
        None => (s, 9092),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

// -------------------------------------------------------------- components

fn component(
    cx: &mut Ctx<'_>,
    key: &str,
    id: ComponentId,
    c: RawComponent,
    base_dir: &Path,
) -> Component {
    if c.source.get_ref().trim().is_empty() {
        cx.err(
            c.source.span(),
            &format!("{key}.source"),
            ErrorKind::InvalidValue,
            "must not be empty (path to the component's .wasm file)",
        );
    }
    let source = base_dir.join(c.source.get_ref());

    let build = c.build.map(|b| {
        let bkey = format!("{key}.build.command");
        let commands = b.command.get_ref().0.clone();
        if commands.is_empty() || commands.iter().any(|c| c.trim().is_empty()) {
            cx.err(
                b.command.span(),
                &bkey,
                ErrorKind::InvalidValue,
                "build commands must not be empty",
            );
        }
        let workdir = match &b.workdir {
            Some(w) => {
                if w.get_ref().is_empty() {
                    cx.err(
                        w.span(),
                        &format!("{key}.build.workdir"),
                        ErrorKind::InvalidValue,
                        "must not be empty (leave it out to build in the manifest directory)",
                    );
                }
                base_dir.join(w.get_ref())
            }
            None => base_dir.to_path_buf(),
        };
        Build {
            commands,
            workdir,
            watch: b.watch,
        }
    });

    let mut outputs = BTreeMap::new();
    for (name, value) in c.outputs {
        let okey = format!("{key}.outputs.{}", quote_key(name.get_ref()));
        if let Err(msg) = names::check_variable_name(name.get_ref(), true) {
            cx.err(name.span(), &okey, ErrorKind::InvalidName, msg);
        }
        if let Some(out) = output(cx, &okey, value) {
            outputs.insert(name.into_inner(), out);
        }
    }

    let limits = limits(cx, key, c.limits);

    let mut variables = BTreeMap::new();
    for (name, value) in c.variables {
        if let Err(msg) = names::check_variable_name(name.get_ref(), false) {
            cx.err(
                name.span(),
                &format!("{key}.variables.{}", quote_key(name.get_ref())),
                ErrorKind::InvalidName,
                msg,
            );
        }
        variables.insert(name.into_inner(), value);
    }

    let mut environment = BTreeMap::new();
    for (name, value) in c.environment {
        if let Err(msg) = names::check_env_name(name.get_ref()) {
            cx.err(
                name.span(),
                &format!("{key}.environment.{}", quote_key(name.get_ref())),
                ErrorKind::InvalidName,
                msg,
            );
        }
        environment.insert(name.into_inner(), value);
    }

    let mut allowed_outbound_hosts = Vec::new();
    for (i, h) in c.allowed_outbound_hosts.into_iter().enumerate() {
        if let Err(msg) = names::check_outbound_host(h.get_ref()) {
            cx.err(
                h.span(),
                &format!("{key}.allowed_outbound_hosts[{i}]"),
                ErrorKind::InvalidValue,
                msg,
            );
        }
        allowed_outbound_hosts.push(h.into_inner());
    }

    let mut files = Vec::new();
    for (i, f) in c.files.into_iter().enumerate() {
        let fkey = format!("{key}.files[{i}]");
        let span = f.span();
        match f.into_inner() {
            StrOr::Str(path) => {
                let p = Path::new(&path);
                let relative_inside = !path.is_empty()
                    && p.components()
                        .all(|c| matches!(c, PathComponent::Normal(_) | PathComponent::CurDir));
                if !relative_inside {
                    cx.err(
                        span,
                        &fkey,
                        ErrorKind::InvalidValue,
                        format!(
                            "invalid file path \"{path}\": a plain path must be relative and stay inside the application directory; use {{ source = \"...\", destination = \"/...\" }} otherwise"
                        ),
                    );
                    continue;
                }
                let rel: Vec<String> = p
                    .components()
                    .filter_map(|c| match c {
                        PathComponent::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        _ => None,
                    })
                    .collect();
                files.push(FileMount {
                    source: base_dir.join(&path),
                    destination: format!("/{}", rel.join("/")),
                });
            }
            StrOr::Table(t) => {
                if t.source.get_ref().is_empty() {
                    cx.err(
                        t.source.span(),
                        &format!("{fkey}.source"),
                        ErrorKind::InvalidValue,
                        "must not be empty",
                    );
                }
                if !t.destination.get_ref().starts_with('/') {
                    cx.err(
                        t.destination.span(),
                        &format!("{fkey}.destination"),
                        ErrorKind::InvalidValue,
                        format!("invalid destination \"{}\": must be an absolute guest path like \"/data\"", t.destination.get_ref()),
                    );
                }
                files.push(FileMount {
                    source: base_dir.join(t.source.get_ref()),
                    destination: t.destination.into_inner(),
                });
            }
        }
    }

    Component {
        id,
        source,
        description: c.description,
        build,
        outputs,
        limits,
        variables,
        files,
        allowed_outbound_hosts,
        environment,
    }
}

fn output(cx: &mut Ctx<'_>, key: &str, value: Spanned<StrOr<RawOutputTable>>) -> Option<Output> {
    let span = value.span();
    let (uri, mode, raw_headers) = match value.into_inner() {
        StrOr::Str(s) => (
            Spanned::new(span.clone(), s),
            ContentMode::Binary,
            BTreeMap::new(),
        ),
        StrOr::Table(t) => (t.uri, t.mode, t.headers),
    };
    let ukey = if uri.span() == span {
        key.to_owned()
    } else {
        format!("{key}.uri")
    };
    let sink = match uri.get_ref().parse::<Sink>() {
        Ok(sink) => sink,
        Err(e) => {
            cx.err(
                uri.span(),
                &ukey,
                ErrorKind::InvalidUri,
                format!("invalid sink URI \"{}\": {e}", uri.get_ref()),
            );
            return None;
        }
    };
    if let Sink::Mqtt {
        version: MqttVersion::V3_1_1,
        ..
    } = &sink
        && mode == ContentMode::Binary
    {
        cx.err(
            uri.span(),
            &ukey,
            ErrorKind::InvalidValue,
            "MQTT 3.1.1 has no message properties, so binary content mode is impossible; set mode = \"structured\" or use version=5",
        );
    }
    let mut headers = BTreeMap::new();
    for (name, value) in raw_headers {
        let hkey = format!("{key}.headers.{}", quote_key(name.get_ref()));
        if !matches!(sink, Sink::Http { .. }) {
            cx.err(
                name.span(),
                &hkey,
                ErrorKind::InvalidValue,
                format!(
                    "headers are only supported for http and https sinks, not {}",
                    sink.scheme()
                ),
            );
        } else if !is_header_name(name.get_ref()) {
            cx.err(
                name.span(),
                &hkey,
                ErrorKind::InvalidName,
                format!("invalid HTTP header name \"{}\"", name.get_ref()),
            );
        } else if value.chars().any(|c| c.is_control() && c != '\t') {
            cx.err(
                name.span(),
                &hkey,
                ErrorKind::InvalidValue,
                "header values must not contain control characters",
            );
        }
        headers.insert(name.into_inner(), value);
    }
    Some(Output {
        sink,
        mode,
        headers,
    })
}

/// An RFC 9110 `token`: the characters allowed in a header field name.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

fn limits(cx: &mut Ctx<'_>, key: &str, raw: Option<RawLimits>) -> Limits {
    let mut limits = Limits::default();
    let Some(raw) = raw else {
        return limits;
    };
    if let Some(t) = &raw.timeout {
        let tkey = format!("{key}.limits.timeout");
        match parse_duration(t.get_ref()) {
            Ok(d) if d == Duration::ZERO => cx.err(
                t.span(),
                &tkey,
                ErrorKind::InvalidDuration,
                "must be greater than zero",
            ),
            Ok(d) => limits.timeout = d,
            Err(e) => cx.err(t.span(), &tkey, ErrorKind::InvalidDuration, e.to_string()),
        }
    }
    if let Some(m) = &raw.memory {
        let mkey = format!("{key}.limits.memory");
        if let Some(s) = size(cx, &mkey, m) {
            if s.0 < 64 * ByteSize::KIB {
                cx.err(
                    m.span(),
                    &mkey,
                    ErrorKind::InvalidSize,
                    format!("{s} is less than one 64KiB WebAssembly page"),
                );
            } else if s.0 > 4 * ByteSize::GIB {
                cx.err(
                    m.span(),
                    &mkey,
                    ErrorKind::InvalidSize,
                    format!("{s} is more than the 4GiB a 32-bit WebAssembly memory can address"),
                );
            } else {
                limits.memory = s;
            }
        }
    }
    if let Some(c) = &raw.max_concurrency {
        match u32::try_from(*c.get_ref()) {
            Ok(n) if n > 0 => limits.max_concurrency = n,
            _ => cx.err(
                c.span(),
                &format!("{key}.limits.max_concurrency"),
                ErrorKind::InvalidValue,
                format!("must be a positive number, got {}", c.get_ref()),
            ),
        }
    }
    limits
}
