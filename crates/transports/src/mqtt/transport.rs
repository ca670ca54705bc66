//! The MQTT transport's rules: its schemes, its sink URIs (topic, QoS, version, retain),
//! its Subscriptions API settings (`MQTTSettings`) and how a sender is opened.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::{MqttSender, MqttSinkConfig};
use crate::endpoint::Endpoint;
use crate::registry::{ConnectFuture, Scheme, SettingsRequest, Transport};
use crate::sink::{self, PATH_ESCAPES, Sink, SinkError};
use crate::{Mode, SendOptions, Sender};

/// MQTT 5 and 3.1.1.
pub struct Mqtt;

/// `mqtt` and its TLS twin `mqtts`.
const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "mqtt",
        tls: false,
        default_port: 1883,
    },
    Scheme {
        name: "mqtts",
        tls: true,
        default_port: 8883,
    },
];

/// MQTT quality of service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Qos {
    /// QoS 0.
    AtMostOnce = 0,
    /// QoS 1, the default: handlers are expected to be idempotent.
    #[default]
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl Qos {
    /// The level as a number: `0`, `1` or `2`.
    pub fn from_level(level: i64) -> Option<Qos> {
        match level {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1: no user properties, so only structured content mode.
    V3_1_1,
    /// MQTT 5, the default.
    #[default]
    V5,
}

impl MqttVersion {
    /// The version as written in manifests and URIs: `"3.1.1"` or `"5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MqttVersion::V3_1_1 => "3.1.1",
            MqttVersion::V5 => "5",
        }
    }

    /// The Subscriptions API `protocol` value of this version.
    pub fn api_protocol(self) -> &'static str {
        match self {
            MqttVersion::V3_1_1 => "MQTT3",
            MqttVersion::V5 => "MQTT5",
        }
    }
}

/// The Subscriptions API's `MQTTSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MqttSettings {
    #[serde(alias = "topicName")]
    topicname: Option<String>,
    qos: Option<i64>,
    retain: Option<bool>,
    expiry: Option<Value>,
    #[serde(alias = "userProperties")]
    userproperties: Option<Map<String, Value>>,
}

impl Transport for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn schemes(&self) -> &'static [Scheme] {
        SCHEMES
    }

    fn api_protocols(&self) -> &'static [&'static str] {
        &["MQTT5", "MQTT3"]
    }

    fn example_sink(&self) -> &'static str {
        "mqtt://127.0.0.1:1883/orders/created"
    }

    fn parse_sink(&self, url: &Url, broker: Endpoint) -> Result<Sink, SinkError> {
        let topic = sink::path_rest(url, "topic")?;
        check_topic(&topic, false).map_err(SinkError::Invalid)?;
        let (mut qos, mut version, mut retain) = (Qos::AtLeastOnce, MqttVersion::V5, false);
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "qos" => {
                    qos = match value.as_ref() {
                        "0" => Qos::AtMostOnce,
                        "1" => Qos::AtLeastOnce,
                        "2" => Qos::ExactlyOnce,
                        v => return Err(sink::bad_param("qos", v, "0, 1 or 2")),
                    }
                }
                "version" => {
                    version = match value.as_ref() {
                        "5" => MqttVersion::V5,
                        "3.1.1" => MqttVersion::V3_1_1,
                        v => return Err(sink::bad_param("version", v, "\"3.1.1\" or \"5\"")),
                    }
                }
                "retain" => retain = sink::bool_param("retain", &value)?,
                other => {
                    return Err(SinkError::Invalid(format!(
                        "unknown query parameter \"{other}\" (expected qos, version, retain)"
                    )));
                }
            }
        }
        Ok(Sink::Mqtt {
            broker,
            topic,
            qos,
            version,
            retain,
        })
    }

    fn write_sink(&self, sink: &Sink, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Sink::Mqtt {
            broker,
            topic,
            qos,
            version,
            retain,
        } = sink
        else {
            return Err(fmt::Error);
        };
        let topic: String = percent_encoding::utf8_percent_encode(topic, PATH_ESCAPES).collect();
        let scheme = sink::scheme_for(SCHEMES, broker);
        write!(
            f,
            "{scheme}://{broker}/{topic}?qos={}&version={}&retain={retain}",
            *qos as u8,
            version.as_str()
        )
    }

    fn api_protocol(&self, sink: &Sink) -> &'static str {
        match sink {
            Sink::Mqtt { version, .. } => version.api_protocol(),
            _ => "MQTT5",
        }
    }

    fn destination<'s>(&self, sink: &'s Sink) -> &'s str {
        match sink {
            Sink::Mqtt { topic, .. } => topic,
            _ => "",
        }
    }

    fn destination_noun(&self) -> &'static str {
        "topic"
    }

    fn destination_setting(&self) -> &'static str {
        "topicname"
    }

    /// The destination, then QoS and retain from the settings (agreeing with the URI's
    /// query when it has them), the protocol version from the protocol, and the settings
    /// MQTT has but this sink cannot honour refused.
    fn subscription_sink(
        &self,
        request: SettingsRequest<'_>,
        options: &mut SendOptions,
    ) -> Result<Sink, String> {
        let settings: MqttSettings = sink::settings(&request)?;
        let url = request.url;
        // Subscriptions 3.2.2.2: `expiry` ("MQTT expiry interval, in seconds") and
        // `userproperties` ("copied into the MQTT PUBLISH packet's user property section")
        // SHOULD be supported; both "only [apply] to MQTT 5.0".
        let v5 = request.protocol != "MQTT3";
        match settings.expiry {
            None | Some(Value::Null) => {}
            Some(_) if !v5 => {
                return Err(
                    "protocolsettings.expiry applies to MQTT 5.0 only (protocol MQTT5)".into(),
                );
            }
            Some(value) => {
                let seconds = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        format!(
                            "protocolsettings.expiry {value} is not a number of seconds (0 to {})",
                            u32::MAX
                        )
                    })?;
                options.mqtt_expiry = Some(seconds);
            }
        }
        if let Some(properties) = settings.userproperties.filter(|p| !p.is_empty()) {
            if !v5 {
                return Err(
                    "protocolsettings.userproperties applies to MQTT 5.0 only (protocol MQTT5)"
                        .into(),
                );
            }
            for (name, value) in properties {
                let Value::String(value) = value else {
                    return Err(format!(
                        "protocolsettings.userproperties.{name} must be a string"
                    ));
                };
                // In MQTT 5 binary mode the context attributes are User Properties: a
                // subscription's own `userproperties` cannot use their names.
                if cloudevent::CORE_ATTRIBUTES.contains(&name.as_str()) {
                    return Err(format!(
                        "protocolsettings.userproperties.{name}: `{name}` is a CloudEvents \
                         attribute, which the event itself carries"
                    ));
                }
                options.mqtt_user_properties.push((name, value));
            }
        }
        let in_query = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let mut sink = sink::destination(self, url, settings.topicname)?;
        let Sink::Mqtt {
            qos,
            version,
            retain,
            ..
        } = &mut sink
        else {
            return Err("not an MQTT sink".into());
        };
        if let Some(wanted) = settings.qos {
            let wanted = Qos::from_level(wanted)
                .ok_or_else(|| format!("protocolsettings.qos {wanted} is not 0, 1 or 2"))?;
            if in_query("qos").is_some() && *qos != wanted {
                return Err(format!(
                    "protocolsettings.qos {} contradicts qos={} in the sink URI: give it in \
                     one place",
                    wanted as u8, *qos as u8
                ));
            }
            *qos = wanted;
        }
        if let Some(wanted) = settings.retain {
            if in_query("retain").is_some() && *retain != wanted {
                return Err(format!(
                    "protocolsettings.retain {wanted} contradicts retain={retain} in the sink \
                     URI: give it in one place"
                ));
            }
            *retain = wanted;
        }
        let (wanted, other) = if v5 {
            (MqttVersion::V5, "MQTT3")
        } else {
            (MqttVersion::V3_1_1, "MQTT5")
        };
        if let Some(v) = in_query("version")
            && *version != wanted
        {
            return Err(format!(
                "protocol {} contradicts version={v} in the sink URI (use protocol {other}, \
                 or leave the version out of the URI)",
                request.protocol
            ));
        }
        *version = wanted;
        if wanted == MqttVersion::V3_1_1 {
            // MQTT 3.1.1 has no properties to carry attributes in: the event travels whole.
            options.mode = Mode::Structured;
        }
        Ok(sink)
    }

    fn registry_endpoint(&self, sink: &Sink) -> (&'static str, Value) {
        let Sink::Mqtt {
            broker,
            topic,
            qos,
            version,
            retain,
        } = sink
        else {
            return ("MQTT/5.0", Value::Null);
        };
        (
            registry_protocol(*version),
            json!({
                "endpoints": [{ "uri": self.endpoint_uri(broker) }],
                "topic": topic, "qos": *qos as u8, "retain": retain,
            }),
        )
    }

    fn connect<'a>(&'a self, sink: &'a Sink, options: SendOptions) -> ConnectFuture<'a> {
        Box::pin(async move {
            let Sink::Mqtt {
                broker,
                topic,
                qos,
                version,
                retain,
            } = sink
            else {
                return Err(crate::ConnectError::Unsupported(sink.scheme().to_owned()));
            };
            let config = MqttSinkConfig {
                broker: broker.clone(),
                topic: topic.clone(),
                qos: *qos,
                version: *version,
                retain: *retain,
                client_id: options.mqtt_client_id,
                expiry: options.mqtt_expiry,
                user_properties: options.mqtt_user_properties,
            };
            Ok(Sender::Mqtt(
                MqttSender::connect(config, options.mode)
                    .await?
                    .in_format(options.format),
            ))
        })
    }
}

/// The xRegistry protocol name of an MQTT version.
pub fn registry_protocol(version: MqttVersion) -> &'static str {
    match version {
        MqttVersion::V5 => "MQTT/5.0",
        MqttVersion::V3_1_1 => "MQTT/3.1.1",
    }
}

/// An MQTT topic (publishing) or topic filter (subscribing). `+` must be a
/// whole level and `#` the whole last level; neither is allowed when
/// publishing (MQTT 3.1.1 §4.7).
pub fn check_topic(topic: &str, filter: bool) -> Result<(), String> {
    if topic.is_empty() {
        return Err("empty MQTT topic".into());
    }
    if topic.contains('\0') {
        return Err(format!(
            "invalid MQTT topic \"{topic}\": NUL is not allowed"
        ));
    }
    if topic.len() > 65535 {
        return Err("MQTT topic is longer than 65535 bytes".into());
    }
    let levels: Vec<&str> = topic.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let has_wild = level.contains('+') || level.contains('#');
        if has_wild && !filter {
            return Err(format!(
                "invalid MQTT topic \"{topic}\": wildcards '+' and '#' are not allowed when publishing"
            ));
        }
        if has_wild && *level != "+" && *level != "#" {
            return Err(format!(
                "invalid MQTT topic filter \"{topic}\": '+' and '#' must occupy a whole level"
            ));
        }
        if *level == "#" && i + 1 != levels.len() {
            return Err(format!(
                "invalid MQTT topic filter \"{topic}\": '#' must be the last level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_topics() {
        assert!(check_topic("sensors/+/temp", true).is_ok());
        assert!(check_topic("sensors/#", true).is_ok());
        assert!(check_topic("#", true).is_ok());
        assert!(check_topic("sensors/#/x", true).is_err());
        assert!(check_topic("sensors/a+", true).is_err());
        assert!(check_topic("sensors/+", false).is_err());
        assert!(check_topic("sensors/1/temp", false).is_ok());
        assert!(check_topic("", true).is_err());
    }
}
