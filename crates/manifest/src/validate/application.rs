//! `[application]`, `[application.http]` and `[application.admin]`.

use std::net::SocketAddr;

use toml::Spanned;

use super::{Ctx, size};
use crate::error::ErrorKind;
use crate::model::*;
use crate::names;
use crate::raw::*;

pub(super) fn placeholder_application() -> Application {
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

pub(super) fn application(cx: &mut Ctx<'_>, app: RawApplication) -> Application {
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
