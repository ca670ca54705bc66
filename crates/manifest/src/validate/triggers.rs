//! `[[trigger.<kind>]]` entries: component references, routes, broker
//! addresses, subjects and topics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use url::Url;

use super::Ctx;
use super::client_tls;
use crate::error::ErrorKind;
use crate::locate::quote_key;
use crate::model::*;
use crate::names;
use crate::raw::*;
use crate::route::Route;
use crate::sink::Endpoint;
use transports::Transport;

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
        let hint = match names::closest(name.get_ref(), defined.iter().map(String::as_str)) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!("add a [component.{}] table", quote_key(name.get_ref())),
        };
        cx.err(
            name.span(),
            key,
            ErrorKind::UnknownComponent,
            format!(
                "no component named \"{}\" ({known}); {hint}",
                name.get_ref(),
            ),
        );
    }
    ComponentId(name.get_ref().clone())
}

/// Parses a broker address like `nats://host:port` (or a TLS one like `nats+tls://host:port`)
/// for a trigger: the schemes, which of them mean TLS, and their default ports are the
/// transport's ([`Transport::schemes`]).
fn broker_address(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Option<&Spanned<String>>,
    default: &str,
    transport: &dyn Transport,
) -> Endpoint {
    let schemes = transport.schemes();
    let scheme = |name: &str| schemes.iter().find(|s| s.name == name);
    let fallback = || {
        let u = Url::parse(default).expect("default broker address parses");
        let port = scheme(u.scheme()).map_or(0, |s| s.default_port);
        Endpoint::plain(u.host_str().unwrap_or_default(), u.port().unwrap_or(port))
    };
    let Some(value) = value else {
        return fallback();
    };
    let text = value.get_ref();
    let problem = match Url::parse(text) {
        Err(e) => Some(format!("not a valid URI ({e})")),
        Ok(u) if scheme(u.scheme()).is_none() => {
            let plain = schemes.iter().find(|s| !s.tls).map_or("", |s| s.name);
            Some(format!(
                "expected a {plain}:// address (or {} for TLS), got scheme \"{}\"",
                tls_schemes(transport),
                u.scheme()
            ))
        }
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
        Ok(u) => match scheme(u.scheme()) {
            Some(scheme) => {
                return Endpoint {
                    host: u.host_str().unwrap_or_default().to_owned(),
                    port: u.port().unwrap_or(scheme.default_port),
                    tls: scheme.tls.then(ClientTls::default),
                };
            }
            None => Some(format!("unknown scheme \"{}\"", u.scheme())),
        },
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

/// The TLS schemes of a transport as a trigger address writes them: `mqtts://`.
fn tls_schemes(transport: &dyn Transport) -> String {
    let tls: Vec<String> = transport
        .schemes()
        .iter()
        .filter(|s| s.tls)
        .map(|s| format!("{}://", s.name))
        .collect();
    tls.join(" or ")
}

/// A broker trigger's `tls = { ca, cert, key }`, attached to its address, which must be a
/// TLS one (one of the transport's TLS schemes).
fn address_tls(
    cx: &mut Ctx<'_>,
    key: &str,
    address: &mut Endpoint,
    raw: Option<Spanned<RawClientTls>>,
    base_dir: &Path,
    transport: &dyn Transport,
) {
    let Some(raw) = raw else { return };
    let key = format!("{key}.tls");
    let span = raw.span();
    let Some(settings) = client_tls(cx, &key, raw, base_dir, false) else {
        return;
    };
    if address.is_tls() {
        address.tls = Some(settings);
    } else {
        cx.err(
            span,
            &key,
            ErrorKind::InvalidValue,
            format!(
                "TLS settings need a TLS address ({})",
                tls_schemes(transport)
            ),
        );
    }
}

pub(super) fn triggers(
    cx: &mut Ctx<'_>,
    raw: RawTriggers,
    defined: &BTreeSet<String>,
    app_name: &str,
    base_dir: &Path,
) -> Triggers {
    Triggers {
        http: http_triggers(cx, raw.http, defined, base_dir),
        nats: each(raw.nats, "nats", |key, t| {
            nats_trigger(cx, key, t, defined, base_dir)
        }),
        mqtt: each(raw.mqtt, "mqtt", |key, t| {
            mqtt_trigger(cx, key, t, defined, base_dir)
        }),
        amqp: each(raw.amqp, "amqp", |key, t| {
            amqp_trigger(cx, key, t, defined, base_dir)
        }),
        kafka: each(raw.kafka, "kafka", |key, t| {
            kafka_trigger(cx, key, t, defined, app_name, base_dir)
        }),
    }
}

/// Converts each `[[trigger.<kind>]]` entry, passing its key path
/// (`trigger.<kind>[i]`).
fn each<R, T>(raw: Vec<Spanned<R>>, kind: &str, mut convert: impl FnMut(&str, R) -> T) -> Vec<T> {
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| convert(&format!("trigger.{kind}[{i}]"), t.into_inner()))
        .collect()
}

/// HTTP triggers are converted together so duplicate routes can be found.
fn http_triggers(
    cx: &mut Ctx<'_>,
    raw: Vec<Spanned<RawHttpTrigger>>,
    defined: &BTreeSet<String>,
    base_dir: &Path,
) -> Vec<HttpTrigger> {
    let mut out = Vec::new();

    let mut seen_routes: BTreeMap<Route, (usize, usize)> = BTreeMap::new();
    for (i, t) in raw.into_iter().enumerate() {
        let t = t.into_inner();
        let key = format!("trigger.http[{i}]");
        let component = match &t.component {
            Some(c) => Some(check_component_ref(
                cx,
                &format!("{key}.component"),
                c,
                defined,
            )),
            None if t.executor.is_raw_http() => {
                cx.err(
                    t.route.span(),
                    &format!("{key}.component"),
                    ErrorKind::MissingKey,
                    "a wasi-http or binder route needs a `component` to pass requests to",
                );
                None
            }
            None => None,
        };
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
        let dedup = dedup_window(cx, &key, t.dedup_window.as_ref());
        if let (Some(_), Some(v)) = (&dedup, &t.dedup_window)
            && (component.is_none() || t.executor.is_raw_http())
        {
            cx.err(
                v.span(),
                &format!("{key}.dedup_window"),
                ErrorKind::InvalidValue,
                "a dedup window is for a cloudevents route with a component (a route without \
                 one feeds subscriptions, which have their own dedupWindowMs)",
            );
        }
        let binder = binder(cx, &key, t.executor, t.binder.as_ref(), base_dir);
        out.push(HttpTrigger {
            route,
            component,
            executor: t.executor,
            binder,
            dedup_window: dedup,
        });
    }

    out
}

/// `binder = ...` of an HTTP route: a stock binder's name or a component path; only for
/// `executor = "binder"`, where it defaults to the stock `http` binder.
fn binder(
    cx: &mut Ctx<'_>,
    key: &str,
    executor: HttpExecutor,
    raw: Option<&Str>,
    base_dir: &Path,
) -> Option<Binder> {
    if executor != HttpExecutor::Binder {
        if let Some(raw) = raw {
            cx.err(
                raw.span(),
                &format!("{key}.binder"),
                ErrorKind::InvalidValue,
                "`binder` is for routes with executor = \"binder\"",
            );
        }
        return None;
    }
    let Some(raw) = raw else {
        return Some(Binder::Stock(StockBinder::Http));
    };
    let value = raw.get_ref().trim();
    if let Some(stock) = StockBinder::from_name(value) {
        return Some(Binder::Stock(stock));
    }
    if value.ends_with(".wasm") || value.contains('/') {
        return Some(Binder::Path(base_dir.join(value)));
    }
    let names: Vec<&str> = StockBinder::ALL.iter().map(|b| b.name()).collect();
    cx.err(
        raw.span(),
        &format!("{key}.binder"),
        ErrorKind::InvalidValue,
        format!(
            "no stock binder is named \"{value}\" (stock binders: {}); a binder component is \
             given by its path, ending in .wasm",
            names.join(", ")
        ),
    );
    None
}

fn nats_trigger(
    cx: &mut Ctx<'_>,
    key: &str,
    t: RawNatsTrigger,
    defined: &BTreeSet<String>,
    base_dir: &Path,
) -> NatsTrigger {
    let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
    let mut address = broker_address(
        cx,
        &format!("{key}.address"),
        t.address.as_ref(),
        DEFAULT_NATS_ADDRESS,
        &transports::nats::Nats,
    );
    address_tls(
        cx,
        key,
        &mut address,
        t.tls,
        base_dir,
        &transports::nats::Nats,
    );
    if let Err(msg) = transports::nats::check_subject(t.subject.get_ref(), true) {
        cx.err(
            t.subject.span(),
            &format!("{key}.subject"),
            ErrorKind::InvalidValue,
            msg,
        );
    }
    if let Some(group) = &t.queue_group {
        check_token(cx, &format!("{key}.queue_group"), group);
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
    NatsTrigger {
        address,
        subject: t.subject.into_inner(),
        queue_group: t.queue_group.map(Spanned::into_inner),
        jetstream,
        component,
        max_deliveries: max_deliveries(cx, key, t.max_deliveries.as_ref()),
        dedup_window: dedup_window(cx, key, t.dedup_window.as_ref()),
    }
}

fn mqtt_trigger(
    cx: &mut Ctx<'_>,
    key: &str,
    t: RawMqttTrigger,
    defined: &BTreeSet<String>,
    base_dir: &Path,
) -> MqttTrigger {
    let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
    let mut address = broker_address(
        cx,
        &format!("{key}.address"),
        t.address.as_ref(),
        DEFAULT_MQTT_ADDRESS,
        &transports::mqtt::Mqtt,
    );
    address_tls(
        cx,
        key,
        &mut address,
        t.tls,
        base_dir,
        &transports::mqtt::Mqtt,
    );
    if let Err(msg) = transports::mqtt::check_topic(t.topic.get_ref(), true) {
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
    MqttTrigger {
        address,
        topic: t.topic.into_inner(),
        qos,
        protocol,
        persistent_session,
        client_id: t.client_id.map(Spanned::into_inner),
        component,
        max_deliveries: max_deliveries(cx, key, t.max_deliveries.as_ref()),
        dedup_window: dedup_window(cx, key, t.dedup_window.as_ref()),
    }
}

fn amqp_trigger(
    cx: &mut Ctx<'_>,
    key: &str,
    t: RawAmqpTrigger,
    defined: &BTreeSet<String>,
    base_dir: &Path,
) -> AmqpTrigger {
    let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
    let mut address = broker_address(
        cx,
        &format!("{key}.address"),
        t.address.as_ref(),
        DEFAULT_AMQP_ADDRESS,
        &transports::amqp::Amqp,
    );
    address_tls(
        cx,
        key,
        &mut address,
        t.tls,
        base_dir,
        &transports::amqp::Amqp,
    );
    check_token(cx, &format!("{key}.source"), &t.source);
    AmqpTrigger {
        address,
        source: t.source.into_inner(),
        component,
        max_deliveries: max_deliveries(cx, key, t.max_deliveries.as_ref()),
        dedup_window: dedup_window(cx, key, t.dedup_window.as_ref()),
    }
}

fn kafka_trigger(
    cx: &mut Ctx<'_>,
    key: &str,
    t: RawKafkaTrigger,
    defined: &BTreeSet<String>,
    app_name: &str,
    base_dir: &Path,
) -> KafkaTrigger {
    let component = check_component_ref(cx, &format!("{key}.component"), &t.component, defined);
    // Kafka's `SSL` security protocol: brokers are `host:port`, so `tls` switches it on.
    let tls = match t.tls {
        None => None,
        Some(raw) => {
            let span = raw.span();
            match raw.into_inner() {
                RawKafkaTls::On(on) => on.then(ClientTls::default),
                RawKafkaTls::Settings(settings) => client_tls(
                    cx,
                    &format!("{key}.tls"),
                    Spanned::new(span, settings),
                    base_dir,
                    true,
                ),
            }
        }
    };
    let mut brokers = match &t.brokers {
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
    for broker in &mut brokers {
        broker.tls = tls.clone();
    }
    if let Err(msg) = transports::kafka::check_topic(t.topic.get_ref()) {
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
    KafkaTrigger {
        brokers,
        topic: t.topic.into_inner(),
        group,
        component,
        max_deliveries: max_deliveries(cx, key, t.max_deliveries.as_ref()),
        dedup_window: dedup_window(cx, key, t.dedup_window.as_ref()),
    }
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
    Ok(Endpoint::plain(host, port))
}

/// `dedup_window`: a duration from 1 ms to a year, or none.
fn dedup_window(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<String>>) -> Option<Duration> {
    let v = v?;
    match crate::units::parse_duration(v.get_ref()) {
        Ok(d) if !d.is_zero() && d <= Duration::from_secs(365 * 24 * 3600) => Some(d),
        Ok(_) => {
            cx.err(
                v.span(),
                &format!("{key}.dedup_window"),
                ErrorKind::InvalidValue,
                "must be between 1ms and 365d",
            );
            None
        }
        Err(e) => {
            cx.err(
                v.span(),
                &format!("{key}.dedup_window"),
                ErrorKind::InvalidValue,
                e.to_string(),
            );
            None
        }
    }
}

/// `max_deliveries`: 1 to 1000, default [`DEFAULT_MAX_DELIVERIES`].
fn max_deliveries(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<i64>>) -> u32 {
    let Some(v) = v else {
        return DEFAULT_MAX_DELIVERIES;
    };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (1..=1000).contains(&n) => n,
        _ => {
            cx.err(
                v.span(),
                &format!("{key}.max_deliveries"),
                ErrorKind::InvalidValue,
                "must be between 1 and 1000",
            );
            DEFAULT_MAX_DELIVERIES
        }
    }
}
