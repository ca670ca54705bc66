//! The NATS transport's rules: its schemes, its sink URIs, its Subscriptions API settings
//! (`NATSSettings`) and how a sender is opened.

use std::fmt;

use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::NatsSender;
use crate::endpoint::Endpoint;
use crate::registry::{ConnectFuture, Scheme, SettingsRequest, Transport};
use crate::sink::{self, Sink, SinkError};
use crate::{SendOptions, Sender};

/// NATS, core and JetStream.
pub struct Nats;

/// `nats`, and the TLS twins `nats+tls` and NATS's own `tls`.
const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "nats",
        tls: false,
        default_port: 4222,
    },
    Scheme {
        name: "nats+tls",
        tls: true,
        default_port: 4222,
    },
    Scheme {
        name: "tls",
        tls: true,
        default_port: 4222,
    },
];

/// The Subscriptions API's `NATSSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NatsSettings {
    subject: Option<String>,
}

impl Transport for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn schemes(&self) -> &'static [Scheme] {
        SCHEMES
    }

    fn api_protocols(&self) -> &'static [&'static str] {
        &["NATS"]
    }

    fn example_sink(&self) -> &'static str {
        "nats://127.0.0.1:4222/orders.created"
    }

    fn parse_sink(&self, url: &Url, server: Endpoint) -> Result<Sink, SinkError> {
        let mut jetstream = false;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "jetstream" => jetstream = sink::bool_param("jetstream", &value)?,
                other => {
                    return Err(SinkError::Invalid(format!(
                        "unknown query parameter \"{other}\" (expected jetstream)"
                    )));
                }
            }
        }
        let subject = sink::path_rest(url, "subject")?;
        if subject.contains('/') {
            return Err(SinkError::Invalid(format!(
                "NATS subjects use '.' not '/': did you mean \"{}\"?",
                subject.replace('/', ".")
            )));
        }
        check_subject(&subject, false).map_err(SinkError::Invalid)?;
        Ok(Sink::Nats {
            server,
            subject,
            jetstream,
        })
    }

    fn write_sink(&self, sink: &Sink, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Sink::Nats {
            server,
            subject,
            jetstream,
        } = sink
        else {
            return Err(fmt::Error);
        };
        let scheme = sink::scheme_for(SCHEMES, server);
        write!(f, "{scheme}://{server}/{subject}")?;
        if *jetstream {
            f.write_str("?jetstream=true")?;
        }
        Ok(())
    }

    fn api_protocol(&self, _: &Sink) -> &'static str {
        "NATS"
    }

    fn destination<'s>(&self, sink: &'s Sink) -> &'s str {
        match sink {
            Sink::Nats { subject, .. } => subject,
            _ => "",
        }
    }

    fn destination_noun(&self) -> &'static str {
        "subject"
    }

    fn destination_setting(&self) -> &'static str {
        "subject"
    }

    fn subscription_sink(
        &self,
        request: SettingsRequest<'_>,
        _: &mut SendOptions,
    ) -> Result<Sink, String> {
        let settings: NatsSettings = sink::settings(&request)?;
        sink::destination(self, request.url, settings.subject)
    }

    fn endpoint_uri(&self, endpoint: &Endpoint) -> String {
        // NATS clients write a TLS server as `tls://`, not Spindle's `nats+tls://`.
        let scheme = if endpoint.is_tls() { "tls" } else { "nats" };
        format!("{scheme}://{}:{}", endpoint.host, endpoint.port)
    }

    fn registry_endpoint(&self, sink: &Sink) -> (&'static str, Value) {
        let Sink::Nats {
            server, subject, ..
        } = sink
        else {
            return ("NATS", Value::Null);
        };
        (
            "NATS",
            json!({ "endpoints": [{ "uri": self.endpoint_uri(server) }], "subject": subject }),
        )
    }

    fn connect<'a>(&'a self, sink: &'a Sink, options: SendOptions) -> ConnectFuture<'a> {
        Box::pin(async move {
            let Sink::Nats {
                server,
                subject,
                jetstream,
            } = sink
            else {
                return Err(crate::ConnectError::Unsupported(sink.scheme().to_owned()));
            };
            let sender = NatsSender::connect(server, subject, options.mode)
                .await?
                .in_format(options.format);
            Ok(Sender::Nats(if *jetstream {
                sender.through_jetstream()
            } else {
                sender
            }))
        })
    }
}

/// A NATS subject: dot-separated non-empty tokens without whitespace.
/// Subscriptions may use `*` (one token) and `>` (last token, the rest);
/// publishing may not, because a message must go to one concrete subject.
pub fn check_subject(subject: &str, allow_wildcards: bool) -> Result<(), String> {
    if subject.is_empty() {
        return Err("empty NATS subject".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(format!("invalid NATS subject \"{subject}\": empty token"));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "invalid NATS subject \"{subject}\": whitespace is not allowed"
            ));
        }
        let wildcard = *token == "*" || *token == ">";
        if wildcard && !allow_wildcards {
            return Err(format!(
                "invalid NATS subject \"{subject}\": wildcards are not allowed when publishing"
            ));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err(format!(
                "invalid NATS subject \"{subject}\": '>' must be the last token"
            ));
        }
        if !wildcard && (token.contains('*') || token.contains('>')) {
            return Err(format!(
                "invalid NATS subject \"{subject}\": '*' and '>' must be whole tokens"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_subjects() {
        assert!(check_subject("orders.created", false).is_ok());
        assert!(check_subject("orders.*", true).is_ok());
        assert!(check_subject("orders.>", true).is_ok());
        assert!(check_subject("orders.*", false).is_err());
        assert!(check_subject("orders.>.x", true).is_err());
        assert!(check_subject("orders..x", true).is_err());
        assert!(check_subject("orders.a*", true).is_err());
        assert!(check_subject("ord ers", true).is_err());
        assert!(check_subject("", true).is_err());
    }
}
