//! `[application]`, `[application.http]` and `[application.admin]`.

use std::net::SocketAddr;
use std::path::Path;

use toml::Spanned;

use super::{Ctx, size};
use crate::error::ErrorKind;
use crate::model::*;
use crate::names;
use crate::raw::*;
use crate::units::parse_duration;

pub(super) fn placeholder_application() -> Application {
    Application {
        name: String::new(),
        version: None,
        description: None,
        authors: Vec::new(),
        http: default_http(),
        admin: default_admin(),
        egress: http_server::EgressPolicy::default(),
        max_hops: DEFAULT_MAX_HOPS,
        store: StoreLimits::default(),
        otlp: None,
        public_url: None,
        cluster: None,
    }
}

fn default_http() -> HttpIngress {
    HttpIngress {
        max_body_size: DEFAULT_MAX_BODY_SIZE,
        allowed_origins: Vec::new(),
        allowed_rate: None,
        auth_token: None,
        limits: ListenerLimits::default(),
        tls: None,
    }
}

fn default_admin() -> Admin {
    Admin {
        listen: DEFAULT_ADMIN_LISTEN
            .parse()
            .expect("default admin address parses"),
        token: None,
        limits: admin_limits(),
        tls: None,
    }
}

/// The admin listener serves a few operators and scripts, not the public: fewer connections
/// and a shorter shutdown than the event ingress.
fn admin_limits() -> ListenerLimits {
    ListenerLimits {
        max_connections: DEFAULT_ADMIN_MAX_CONNECTIONS,
        shutdown_grace: std::time::Duration::from_secs(10),
        ..ListenerLimits::default()
    }
}

/// The listener keys `[application.http]` and `[application.admin]` share, over `defaults`.
fn listener_limits(
    cx: &mut Ctx<'_>,
    table: &str,
    defaults: ListenerLimits,
    raw: [(&str, Option<Str>); 3],
    max_connections: Option<Spanned<i64>>,
) -> ListenerLimits {
    let mut limits = defaults;
    for (name, value) in raw {
        let Some(value) = value else { continue };
        let key = format!("{table}.{name}");
        let parsed = match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() || d > MAX_LISTENER_TIMEOUT => Err(format!(
                "must be between 1ms and {}s, got \"{}\"",
                MAX_LISTENER_TIMEOUT.as_secs(),
                value.get_ref()
            )),
            Ok(d) => Ok(d),
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok(d) => match name {
                "header_timeout" => limits.header_timeout = d,
                "body_timeout" => limits.body_timeout = d,
                _ => limits.idle_timeout = d,
            },
            Err(msg) => cx.err(value.span(), &key, ErrorKind::InvalidDuration, msg),
        }
    }
    if let Some(n) = max_connections {
        match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=MAX_CONNECTIONS_LIMIT).contains(&v) => limits.max_connections = v,
            _ => cx.err(
                n.span(),
                &format!("{table}.max_connections"),
                ErrorKind::InvalidValue,
                format!(
                    "must be between 1 and {MAX_CONNECTIONS_LIMIT}, got {}",
                    n.get_ref()
                ),
            ),
        }
    }
    limits
}

pub(super) fn application(cx: &mut Ctx<'_>, app: RawApplication, base_dir: &Path) -> Application {
    if app.name.get_ref().trim().is_empty() {
        cx.err(
            app.name.span(),
            "application.name",
            ErrorKind::InvalidValue,
            "must not be empty",
        );
    }
    let http = match app.http {
        Some(h) => http_ingress(cx, h, base_dir),
        None => default_http(),
    };
    let admin = match app.admin {
        Some(a) => admin(cx, a, base_dir),
        None => default_admin(),
    };
    let egress = egress(cx, app.egress.unwrap_or_default());
    let max_hops = match app.max_hops {
        None => DEFAULT_MAX_HOPS,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                cx.err(
                    v.span(),
                    "application.max_hops",
                    ErrorKind::InvalidValue,
                    "must be between 1 and 10000",
                );
                DEFAULT_MAX_HOPS
            }
        },
    };
    let otlp =
        app.telemetry
            .and_then(|t| t.otlp)
            .and_then(|v| match url::Url::parse(v.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                    Some(u)
                }
                _ => {
                    cx.err(
                    v.span(),
                    "application.telemetry.otlp",
                    ErrorKind::InvalidUri,
                    format!(
                        "invalid OTLP endpoint \"{}\" (expected e.g. \"http://127.0.0.1:4318\")",
                        v.get_ref()
                    ),
                );
                    None
                }
            });
    let store = match &app.store {
        Some(raw) => super::queue_limits(cx, "application.store", raw),
        None => StoreLimits::default(),
    };
    let public_url = app.public_url.and_then(|v| match url::Url::parse(v.get_ref()) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Some(u)
        }
        _ => {
            cx.err(
                v.span(),
                "application.public_url",
                ErrorKind::InvalidUri,
                format!(
                    "invalid public URL \"{}\" (expected an http(s) URL without query, e.g. \"https://events.example.com\")",
                    v.get_ref()
                ),
            );
            None
        }
    });
    let cluster = app.cluster.and_then(|c| cluster(cx, c));
    Application {
        name: app.name.into_inner(),
        version: app.version,
        description: app.description,
        authors: app.authors,
        http,
        admin,
        egress,
        max_hops,
        store,
        otlp,
        public_url,
        cluster,
    }
}

/// `[application.egress]`: `allow` and `deny` rules, each a CIDR, an address, a host name,
/// `*.domain` or `*`.
fn egress(cx: &mut Ctx<'_>, raw: RawEgress) -> http_server::EgressPolicy {
    let mut rules = |list: Vec<Str>, key: &str| {
        let mut parsed = Vec::new();
        for (i, rule) in list.into_iter().enumerate() {
            match rule.get_ref().parse::<http_server::EgressRule>() {
                Ok(r) => parsed.push(r),
                Err(msg) => cx.err(
                    rule.span(),
                    &format!("application.egress.{key}[{i}]"),
                    ErrorKind::InvalidValue,
                    msg,
                ),
            }
        }
        parsed
    };
    let allow = rules(raw.allow, "allow");
    let deny = rules(raw.deny, "deny");
    http_server::EgressPolicy { allow, deny }
}

fn http_ingress(cx: &mut Ctx<'_>, h: RawHttpIngress, base_dir: &Path) -> HttpIngress {
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
        .map(|t| secret(cx, "application.http.auth_token", t, base_dir, false));
    let limits = listener_limits(
        cx,
        "application.http",
        ListenerLimits::default(),
        [
            ("header_timeout", h.header_timeout),
            ("body_timeout", h.body_timeout),
            ("idle_timeout", h.idle_timeout),
        ],
        h.max_connections,
    );
    let tls = h
        .tls
        .and_then(|t| tls(cx, "application.http.tls", t, base_dir));
    HttpIngress {
        max_body_size,
        allowed_origins,
        allowed_rate,
        auth_token,
        limits,
        tls,
    }
}

fn admin(cx: &mut Ctx<'_>, a: RawAdmin, base_dir: &Path) -> Admin {
    let token = a
        .token
        .map(|t| secret(cx, "application.admin.token", t, base_dir, false));
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
    let limits = listener_limits(
        cx,
        "application.admin",
        admin_limits(),
        [
            ("header_timeout", a.header_timeout),
            ("body_timeout", a.body_timeout),
            ("idle_timeout", a.idle_timeout),
        ],
        a.max_connections,
    );
    let tls = a
        .tls
        .and_then(|t| tls(cx, "application.admin.tls", t, base_dir));
    Admin {
        listen,
        token,
        limits,
        tls,
    }
}

/// `tls = { cert, key }`: PEM files, relative to the manifest's directory. Whether they load is
/// checked when the listener starts (they may be written by a tool after validation).
fn tls(cx: &mut Ctx<'_>, key: &str, t: Spanned<RawTls>, base_dir: &Path) -> Option<TlsFiles> {
    let span = t.span();
    let t = t.into_inner();
    if t.cert.get_ref().is_empty() || t.key.get_ref().is_empty() {
        cx.err(
            span,
            key,
            ErrorKind::InvalidValue,
            "needs both `cert` and `key` (PEM file paths)",
        );
        return None;
    }
    Some(TlsFiles {
        cert: base_dir.join(t.cert.get_ref()),
        key: base_dir.join(t.key.get_ref()),
    })
}

/// A secret or variable: inline, `{ env = "NAME" }` or `{ file = "path" }` (relative to
/// the manifest). `empty_ok` allows an empty inline value (a variable may be empty, a token not).
pub(super) fn secret(
    cx: &mut Ctx<'_>,
    key: &str,
    s: Spanned<StrOr<RawSecretTable>>,
    base_dir: &Path,
    empty_ok: bool,
) -> Secret {
    let span = s.span();
    match s.into_inner() {
        StrOr::Str(v) => {
            if v.is_empty() && !empty_ok {
                cx.err(span, key, ErrorKind::InvalidValue, "must not be empty");
            }
            Secret::Literal(v)
        }
        StrOr::Table(RawSecretTable {
            env: Some(env),
            file: None,
        }) => {
            if let Err(msg) = names::check_env_name(env.get_ref()) {
                cx.err(
                    env.span(),
                    &format!("{key}.env"),
                    ErrorKind::InvalidValue,
                    msg,
                );
            }
            Secret::Env(env.into_inner())
        }
        StrOr::Table(RawSecretTable {
            env: None,
            file: Some(file),
        }) => {
            if file.get_ref().trim().is_empty() {
                cx.err(
                    file.span(),
                    &format!("{key}.file"),
                    ErrorKind::InvalidValue,
                    "must not be empty",
                );
            }
            Secret::File(base_dir.join(file.get_ref()))
        }
        StrOr::Table(_) => {
            cx.err(
                span,
                key,
                ErrorKind::InvalidValue,
                "write exactly one of `env = \"NAME\"` or `file = \"path\"`",
            );
            Secret::Literal(String::new())
        }
    }
}

/// `[application.cluster]`: a `nats://` (or `tls://`, `nats+tls://`) address of the NATS
/// cluster that keeps the delivery state, and how many replicas its streams get
/// ([`Cluster::new`] is the rule).
fn cluster(cx: &mut Ctx<'_>, raw: RawCluster) -> Option<Cluster> {
    let replicas = match raw.replicas {
        None => DEFAULT_CLUSTER_REPLICAS,
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(n) if CLUSTER_REPLICAS.contains(&n) => n,
            _ => {
                cx.err(
                    v.span(),
                    "application.cluster.replicas",
                    ErrorKind::InvalidValue,
                    "must be between 1 and 5 (JetStream's limit)",
                );
                DEFAULT_CLUSTER_REPLICAS
            }
        },
    };
    match Cluster::new(raw.nats.get_ref(), replicas) {
        Ok(cluster) => Some(cluster),
        Err(message) => {
            cx.err(
                raw.nats.span(),
                "application.cluster.nats",
                ErrorKind::InvalidUri,
                message,
            );
            None
        }
    }
}
