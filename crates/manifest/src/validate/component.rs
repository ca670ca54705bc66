//! `[component.<id>]`: source, build, outputs, limits and grants.

use std::collections::BTreeMap;
use std::path::{Component as PathComponent, Path};
use std::time::Duration;

use toml::Spanned;

use super::{Ctx, client_tls, size};
use crate::error::ErrorKind;
use crate::locate::quote_key;
use crate::model::*;
use crate::names;
use crate::raw::*;
use crate::sink::Sink;
use crate::units::{ByteSize, parse_duration};

pub(super) fn component(
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

    let build = c.build.map(|b| build(cx, key, b, base_dir));

    let mut outputs = BTreeMap::new();
    for (name, value) in c.outputs {
        let okey = format!("{key}.outputs.{}", quote_key(name.get_ref()));
        if let Err(msg) = names::check_variable_name(name.get_ref(), true) {
            cx.err(name.span(), &okey, ErrorKind::InvalidName, msg);
        }
        if let Some(out) = output(cx, &okey, value, base_dir) {
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
        let vkey = format!("{key}.variables.{}", quote_key(name.get_ref()));
        let value = super::application::secret(cx, &vkey, value, base_dir, true);
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
        match h.get_ref().parse::<engine::OutboundHost>() {
            Ok(host) => allowed_outbound_hosts.push(host),
            Err(msg) => cx.err(
                h.span(),
                &format!("{key}.allowed_outbound_hosts[{i}]"),
                ErrorKind::InvalidValue,
                msg,
            ),
        }
    }

    let files = c
        .files
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| file_mount(cx, &format!("{key}.files[{i}]"), f, base_dir))
        .collect();

    let consumes =
        super::messages::declarations(cx, &format!("{key}.consumes"), c.consumes, base_dir);
    let produces =
        super::messages::declarations(cx, &format!("{key}.produces"), c.produces, base_dir);

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
        key_value_stores: Vec::new(),
        consumes,
        produces,
    }
}

/// `[component.<id>.build]`: commands must be non-empty; `workdir` is
/// resolved against the manifest directory (default: that directory).
fn build(cx: &mut Ctx<'_>, key: &str, b: RawBuild, base_dir: &Path) -> Build {
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
    Build { commands, workdir }
}

/// One `files` entry. A plain path must be relative and stay inside the
/// application directory (it is mounted at the same path under `/`); the
/// table form maps any `source` to an absolute guest `destination`.
fn file_mount(
    cx: &mut Ctx<'_>,
    fkey: &str,
    f: Spanned<StrOr<RawFileMount>>,
    base_dir: &Path,
) -> Option<FileMount> {
    let span = f.span();
    match f.into_inner() {
        StrOr::Str(path) => {
            let p = Path::new(&path);
            let relative_inside = !path.is_empty()
                && p.components()
                    .all(|c| matches!(c, PathComponent::Normal(_) | PathComponent::CurDir));
            if !relative_inside {
                let msg = format!(
                    "invalid file path \"{path}\": a plain path must be relative and stay inside the application directory; use {{ source = \"...\", destination = \"/...\" }} otherwise"
                );
                cx.err(span, fkey, ErrorKind::InvalidValue, msg);
                return None;
            }
            let rel: Vec<String> = p
                .components()
                .filter_map(|c| match c {
                    PathComponent::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            Some(FileMount {
                source: base_dir.join(&path),
                destination: format!("/{}", rel.join("/")),
            })
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
                    format!(
                        "invalid destination \"{}\": must be an absolute guest path like \"/data\"",
                        t.destination.get_ref()
                    ),
                );
            }
            Some(FileMount {
                source: base_dir.join(t.source.get_ref()),
                destination: t.destination.into_inner(),
            })
        }
    }
}

fn output(
    cx: &mut Ctx<'_>,
    key: &str,
    value: Spanned<StrOr<RawOutputTable>>,
    base_dir: &Path,
) -> Option<Output> {
    let span = value.span();
    let (uri, mode, raw_format, raw_headers, webhook_origin, raw_tls, ordered, gap, limits) =
        match value.into_inner() {
            StrOr::Str(s) => (
                Spanned::new(span.clone(), s),
                None,
                None,
                BTreeMap::new(),
                None,
                None,
                false,
                None,
                QueueLimits::default(),
            ),
            StrOr::Table(t) => {
                let raw = RawQueueLimits {
                    max_queued_events: t.max_queued_events,
                    max_queued_bytes: t.max_queued_bytes,
                    max_dead_letters: t.max_dead_letters,
                };
                let limits = output_limits(cx, key, &raw, t.dead_letter_retention.as_ref());
                (
                    t.uri,
                    t.mode,
                    t.format,
                    t.headers,
                    t.webhook_origin,
                    t.tls,
                    t.ordered,
                    t.sequence_gap,
                    limits,
                )
            }
        };
    let ukey = if uri.span() == span {
        key.to_owned()
    } else {
        format!("{key}.uri")
    };
    let mut sink = match uri.get_ref().parse::<Sink>() {
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
    // A format other than JSON is structured mode's business: it implies structured mode,
    // and contradicts an explicit binary mode.
    let format = match &raw_format {
        None => cloudevent::Format::Json,
        Some(f) => match f.get_ref().parse::<cloudevent::Format>() {
            Ok(format) => format,
            Err(e) => {
                cx.err(
                    f.span(),
                    &format!("{key}.format"),
                    ErrorKind::InvalidValue,
                    e,
                );
                cloudevent::Format::Json
            }
        },
    };
    let mode = match (mode, format) {
        (Some(ContentMode::Binary), cloudevent::Format::Protobuf | cloudevent::Format::Avro) => {
            let f = raw_format.as_ref().expect("a format was given");
            cx.err(
                f.span(),
                &format!("{key}.format"),
                ErrorKind::InvalidValue,
                format!(
                    "format = \"{format}\" is an event format for structured mode, but mode = \"binary\"; leave mode out or set it to \"structured\""
                ),
            );
            ContentMode::Binary
        }
        (Some(mode), _) => mode,
        (None, cloudevent::Format::Json) => ContentMode::Binary,
        (None, _) => ContentMode::Structured,
    };
    if let (
        Sink::Mqtt {
            version: MqttVersion::V3_1_1,
            ..
        },
        Some(f),
    ) = (&sink, &raw_format)
        && format != cloudevent::Format::Json
    {
        cx.err(
            f.span(),
            &format!("{key}.format"),
            ErrorKind::InvalidValue,
            "MQTT 3.1.1 has no content type to name another event format with: only json; use version=5",
        );
    }
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
    if let Some(origin) = &webhook_origin {
        let okey = format!("{key}.webhook_origin");
        if !matches!(sink, Sink::Http { .. }) {
            cx.err(
                origin.span(),
                &okey,
                ErrorKind::InvalidValue,
                format!(
                    "the webhook handshake is only for http and https sinks, not {}",
                    sink.scheme()
                ),
            );
        } else if origin.get_ref().is_empty()
            || origin
                .get_ref()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            cx.err(
                origin.span(),
                &okey,
                ErrorKind::InvalidValue,
                "expected a host name such as \"events.example.com\"",
            );
        }
    }
    let tls = raw_tls.and_then(|t| output_tls(cx, &format!("{key}.tls"), t, &mut sink, base_dir));
    let sequence_gap = gap.and_then(|v| {
        let gkey = format!("{key}.sequence_gap");
        if !ordered {
            cx.err(
                v.span(),
                &gkey,
                ErrorKind::InvalidValue,
                "a sequence gap only applies to an ordered output; add ordered = true",
            );
            return None;
        }
        match crate::units::parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() && d <= Duration::from_secs(3600) => Some(d),
            Ok(_) => {
                cx.err(
                    v.span(),
                    &gkey,
                    ErrorKind::InvalidDuration,
                    "must be between 1ms and 1h",
                );
                None
            }
            Err(e) => {
                cx.err(v.span(), &gkey, ErrorKind::InvalidDuration, e.to_string());
                None
            }
        }
    });
    Some(Output {
        sink,
        mode,
        format,
        headers,
        webhook_origin: webhook_origin.map(Spanned::into_inner),
        tls,
        ordered,
        sequence_gap,
        limits,
    })
}

/// An output's queue bounds and dead-letter retention (a duration from 1 ms to ten years).
fn output_limits(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: &RawQueueLimits,
    retention: Option<&Spanned<String>>,
) -> QueueLimits {
    let bounds = super::queue_limits(cx, key, raw);
    let dead_letter_retention = retention.and_then(|v| {
        let rkey = format!("{key}.dead_letter_retention");
        match crate::units::parse_duration(v.get_ref()) {
            Ok(d) if !d.is_zero() && d <= Duration::from_secs(10 * 365 * 24 * 3600) => Some(d),
            Ok(_) => {
                cx.err(
                    v.span(),
                    &rkey,
                    ErrorKind::InvalidValue,
                    "must be between 1ms and 3650d",
                );
                None
            }
            Err(e) => {
                cx.err(v.span(), &rkey, ErrorKind::InvalidValue, e.to_string());
                None
            }
        }
    });
    QueueLimits {
        max_queued_events: bounds.max_queued_events,
        max_queued_bytes: bounds.max_queued_bytes,
        max_dead_letters: bounds.max_dead_letters,
        dead_letter_retention,
    }
}

/// `tls = { ca, cert, key }` of an output: on an HTTPS sink the output keeps it; on a
/// broker sink it goes with the broker's address, which must be a TLS one.
fn output_tls(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Spanned<RawClientTls>,
    sink: &mut Sink,
    base_dir: &Path,
) -> Option<ClientTls> {
    let span = raw.span();
    let settings = client_tls(cx, key, raw, base_dir, false)?;
    let https = matches!(sink, Sink::Http { url } if url.scheme() == "https");
    let scheme = sink.scheme().to_owned();
    match sink.endpoint_mut() {
        None if https => Some(settings),
        Some(endpoint) if endpoint.is_tls() => {
            endpoint.tls = Some(settings);
            None
        }
        _ => {
            cx.err(
                span,
                key,
                ErrorKind::InvalidValue,
                format!(
                    "TLS settings need a TLS sink (https, nats+tls, mqtts, amqps, kafka+tls), not {scheme}"
                ),
            );
            None
        }
    }
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
