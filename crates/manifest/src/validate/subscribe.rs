//! `[[subscribe]]`: subscriptions this app keeps at other Subscriptions APIs.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::error::ErrorKind;
use crate::model::*;
use crate::raw::RawSubscribe;
use crate::units::parse_duration;

/// The shortest and longest `refresh`.
const REFRESH_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));

pub(super) fn subscriptions(
    cx: &mut Ctx<'_>,
    raw: Vec<Spanned<RawSubscribe>>,
    triggers: &Triggers,
    base_dir: &Path,
) -> Vec<RemoteSubscription> {
    let mut out = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let key = format!("subscribe[{i}]");
        let span = entry.span();
        let s = entry.into_inner();
        let at = match (s.registry, s.api) {
            (Some(registry), None) => {
                http_url(cx, &format!("{key}.registry"), &registry).map(SubscriptionsApi::Registry)
            }
            (None, Some(api)) => {
                http_url(cx, &format!("{key}.api"), &api).map(SubscriptionsApi::Api)
            }
            _ => {
                cx.err(
                    span.clone(),
                    &key,
                    ErrorKind::InvalidValue,
                    "set exactly one of `registry` (an xRegistry document that lists the \
                     Subscriptions API) or `api` (the API's subscriptions URL)",
                );
                None
            }
        };
        let route = s.route.get_ref().clone();
        let served = triggers
            .http
            .iter()
            .any(|t| t.executor == HttpExecutor::CloudEvents && t.route.matches(&route));
        if !route.starts_with('/') || !served {
            cx.err(
                s.route.span(),
                &format!("{key}.route"),
                ErrorKind::InvalidValue,
                format!(
                    "\"{route}\" is not served by any cloudevents [[trigger.http]] of this app \
                     (the subscription's events arrive there)"
                ),
            );
        }
        let mut types = Vec::new();
        for (j, ty) in s.types.into_iter().enumerate() {
            if ty.get_ref().trim().is_empty() {
                cx.err(
                    ty.span(),
                    &format!("{key}.types[{j}]"),
                    ErrorKind::InvalidValue,
                    "must not be empty",
                );
            } else {
                types.push(ty.into_inner());
            }
        }
        let refresh = match &s.refresh {
            None => DEFAULT_SUBSCRIBE_REFRESH,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) if (REFRESH_RANGE.0..=REFRESH_RANGE.1).contains(&d) => d,
                Ok(_) => {
                    cx.err(
                        v.span(),
                        &format!("{key}.refresh"),
                        ErrorKind::InvalidDuration,
                        format!("must be between 1s and 1h, got \"{}\"", v.get_ref()),
                    );
                    DEFAULT_SUBSCRIBE_REFRESH
                }
                Err(e) => {
                    cx.err(
                        v.span(),
                        &format!("{key}.refresh"),
                        ErrorKind::InvalidDuration,
                        e.to_string(),
                    );
                    DEFAULT_SUBSCRIBE_REFRESH
                }
            },
        };
        let token = s
            .token
            .map(|t| super::application::secret(cx, &format!("{key}.token"), t, base_dir, false));
        if let Some(at) = at {
            out.push(RemoteSubscription {
                at,
                route,
                types,
                source: s.source.map(Spanned::into_inner),
                filter: s.filter.map(Spanned::into_inner),
                token,
                refresh,
            });
        }
    }
    out
}

fn http_url(cx: &mut Ctx<'_>, key: &str, value: &Spanned<String>) -> Option<url::Url> {
    match url::Url::parse(value.get_ref()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        _ => {
            cx.err(
                value.span(),
                key,
                ErrorKind::InvalidUri,
                format!(
                    "\"{}\" is not an http(s) URL (e.g. \"http://127.0.0.1:3001/registry\")",
                    value.get_ref()
                ),
            );
            None
        }
    }
}
