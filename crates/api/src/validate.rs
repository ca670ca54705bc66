//! Turning request bodies into subscriptions, refusing bad input with the field named:
//! serde alone would say "invalid type at line 1 column 80", which helps nobody.

use delivery::{DeliveryPolicy, Protocol, SubscriptionRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses and checks a subscription body (`POST` and `PUT`): JSON object, member types,
/// protocol, sink URI (and that its scheme fits the protocol), filters (compiled with CESQL).
/// Unknown members are ignored, as the Subscriptions API allows extensions.
pub fn subscription_request(
    body: &[u8],
) -> Result<(SubscriptionRequest, Map<String, Value>), ApiError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("/", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(object) = json else {
        return Err(ApiError::invalid("/", "the body must be a JSON object"));
    };
    for required in ["sink", "protocol"] {
        if object.get(required).is_none_or(Value::is_null) {
            return Err(ApiError::invalid(
                format!("/{required}"),
                format!("`{required}` is required"),
            ));
        }
    }
    member::<String>(&object, "source", "a string")?;
    member::<Vec<String>>(&object, "types", "an array of strings")?;
    member::<std::collections::BTreeMap<String, String>>(
        &object,
        "config",
        "an object of string values",
    )?;
    member::<Vec<Value>>(&object, "filters", "an array of filter objects")?;
    member::<String>(&object, "sink", "a string (an absolute URI)")?;
    member::<Map<String, Value>>(&object, "sinkcredential", "an object")?;
    member::<Map<String, Value>>(&object, "protocolsettings", "an object")?;
    if let Some(p) = object.get("protocol")
        && serde_json::from_value::<Protocol>(p.clone()).is_err()
    {
        return Err(ApiError::invalid(
            "/protocol",
            format!("unknown protocol {p}; one of HTTP, MQTT3, MQTT5, AMQP, NATS, KAFKA"),
        ));
    }
    if let Some(d) = object.get("delivery")
        && let Err(e) = serde_json::from_value::<DeliveryPolicy>(d.clone())
    {
        return Err(ApiError::invalid("/delivery", e.to_string()));
    }
    check_non_empty(&object)?;
    if let Some(Value::Object(credential)) = object.get("sinkcredential") {
        check_credential(credential)?;
    }
    let mut fields = object.clone();
    fields.remove("id");
    let request: SubscriptionRequest = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::invalid("/", e.to_string()))?;
    check_sink(&request)?;
    if let Some(filters) = &request.filters {
        check_filters(filters)?;
    }
    Ok((request, object))
}

/// The spec's constraints serde cannot state: `source` is a non-empty URI-reference, `types`
/// lists one or more non-empty strings, `config` keys are non-empty strings.
fn check_non_empty(object: &Map<String, Value>) -> Result<(), ApiError> {
    match object.get("source").and_then(Value::as_str) {
        Some("") => return Err(ApiError::invalid("/source", "must not be empty")),
        // Subscriptions 3.2.1: `source` is a "URI-reference - a CloudEvents `source` value".
        Some(source) => {
            if let Err(e) = cloudevent::attribute::check_uri_ref(source) {
                return Err(ApiError::invalid("/source", e.reason));
            }
        }
        None => {}
    }
    if let Some(Value::Array(types)) = object.get("types") {
        // Subscriptions 3.2.1 writes `"types": "[ "[ce-type values]" + ]", ?`, where "`+`
        // means one or more": present, it names at least one type. An empty list would match
        // no event ("MUST have a CloudEvents `type` property that matches one of these
        // values"), which nobody subscribes to on purpose, so it is refused rather than read
        // either way.
        if types.is_empty() {
            return Err(ApiError::invalid(
                "/types",
                "must list at least one type (leave `types` out to accept every type)",
            ));
        }
        if let Some(i) = types.iter().position(|t| t.as_str() == Some("")) {
            return Err(ApiError::invalid(
                format!("/types/{i}"),
                "must not be empty",
            ));
        }
    }
    if let Some(Value::Object(config)) = object.get("config")
        && config.contains_key("")
    {
        return Err(ApiError::invalid("/config", "keys must not be empty"));
    }
    Ok(())
}

/// The members of each predefined `credentialtype` (Subscriptions 3.2.3 and the OpenAPI
/// `SinkCredential` schemas): the required ones, then the optional ones.
const CREDENTIAL_MEMBERS: [(&str, &[&str], &[&str]); 3] = [
    ("PLAIN", &["identifier", "secret"], &[]),
    (
        "ACCESSTOKEN",
        &["accesstoken", "accesstokenexpiresutc"],
        &["accesstokentype"],
    ),
    (
        "REFRESHTOKEN",
        &[
            "accesstoken",
            "accesstokenexpiresutc",
            "refreshtoken",
            "refreshtokenendpoint",
        ],
        &["accesstokentype"],
    ),
];

/// Subscriptions 3.2.3: the members a credential type requires are present, non-empty
/// strings; `accesstokenexpiresutc` is a timestamp and `refreshtokenendpoint` an absolute
/// URI; members of no credential type are refused (the OpenAPI's `SinkCredential` has
/// `additionalProperties: false`), so a misspelt one is not silently ignored.
fn check_credential(credential: &Map<String, Value>) -> Result<(), ApiError> {
    let ty = match credential.get("credentialtype") {
        Some(Value::String(ty)) => ty.as_str(),
        Some(_) => {
            return Err(ApiError::invalid(
                "/sinkcredential/credentialtype",
                "must be a string: PLAIN, ACCESSTOKEN or REFRESHTOKEN",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "/sinkcredential/credentialtype",
                "is required: PLAIN, ACCESSTOKEN or REFRESHTOKEN",
            ));
        }
    };
    let Some((_, required, optional)) = CREDENTIAL_MEMBERS.iter().find(|(t, ..)| *t == ty) else {
        return Err(ApiError::invalid(
            "/sinkcredential/credentialtype",
            format!("unknown credential type `{ty}`: PLAIN, ACCESSTOKEN or REFRESHTOKEN"),
        ));
    };
    for name in *required {
        match credential.get(*name) {
            Some(Value::String(v)) if !v.is_empty() => {}
            Some(Value::String(_)) => {
                return Err(ApiError::invalid(
                    format!("/sinkcredential/{name}"),
                    "must not be empty",
                ));
            }
            Some(Value::Null) | None => {
                return Err(ApiError::invalid(
                    format!("/sinkcredential/{name}"),
                    format!("is required for credentialtype {ty}"),
                ));
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    format!("/sinkcredential/{name}"),
                    "must be a string",
                ));
            }
        }
    }
    for (name, value) in credential {
        if name == "credentialtype" || required.contains(&name.as_str()) {
            continue;
        }
        if !optional.contains(&name.as_str()) {
            return Err(ApiError::invalid(
                format!("/sinkcredential/{name}"),
                format!("is not a member of a {ty} credential"),
            ));
        }
        if !value.is_string() && !value.is_null() {
            return Err(ApiError::invalid(
                format!("/sinkcredential/{name}"),
                "must be a string",
            ));
        }
    }
    if let Some(Value::String(expires)) = credential.get("accesstokenexpiresutc")
        && expires.parse::<cloudevent::attribute::Timestamp>().is_err()
    {
        return Err(ApiError::invalid(
            "/sinkcredential/accesstokenexpiresutc",
            format!("`{expires}` is not an RFC 3339 timestamp (e.g. 2030-01-01T00:00:00Z)"),
        ));
    }
    if let Some(Value::String(endpoint)) = credential.get("refreshtokenendpoint")
        && cloudevent::attribute::check_uri(endpoint).is_err()
    {
        return Err(ApiError::invalid(
            "/sinkcredential/refreshtokenendpoint",
            format!("`{endpoint}` is not an absolute URI"),
        ));
    }
    Ok(())
}

/// Checks the member has the expected JSON shape (absent and `null` are fine: optional).
fn member<T: DeserializeOwned>(
    object: &Map<String, Value>,
    name: &str,
    expected: &str,
) -> Result<(), ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => serde_json::from_value::<T>(v.clone())
            .map(drop)
            .map_err(|_| ApiError::invalid(format!("/{name}"), format!("must be {expected}"))),
    }
}

/// The scheme of in-process sinks: `component:<name>` delivers to a component of the app
/// that serves the API, whatever the subscription's protocol.
pub const COMPONENT_SCHEME: &str = "component";

/// The sink must be an absolute URI without spaces whose scheme fits the protocol. Whether
/// a sink can actually be built (the protocol's transport is compiled in, the URI is
/// complete) is checked by the delivery engine when storing.
fn check_sink(request: &SubscriptionRequest) -> Result<(), ApiError> {
    let sink = request.sink.as_str();
    let scheme = sink.split_once(':').map(|(s, _)| s).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let Some(scheme) = scheme else {
        return Err(ApiError::invalid(
            "/sink",
            format!("`{sink}` is not an absolute URI (e.g. http://host:port/path)"),
        ));
    };
    if sink.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid("/sink", "the URI contains whitespace"));
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == COMPONENT_SCHEME {
        // An in-process subscriber: no wire, so any protocol will do.
        return Ok(());
    }
    let fitting = request.protocol.sink_schemes();
    if !fitting.contains(&scheme.as_str()) {
        return Err(ApiError::invalid(
            "/sink",
            format!(
                "a `{scheme}:` sink does not fit protocol {} (expected {})",
                protocol_name(request.protocol),
                fitting.join(" or ")
            ),
        ));
    }
    Ok(())
}

/// The protocol's name as in the API.
pub fn protocol_name(protocol: Protocol) -> &'static str {
    protocol.api_name()
}

/// Compiles the filters, so a subscription that could never match (or would fail at every
/// event) is refused up front; the error names the filter and, for CESQL, the position.
pub fn check_filters(filters: &[Value]) -> Result<(), ApiError> {
    cesql::Filter::from_json_list(filters)
        .map(drop)
        .map_err(|e| {
            use cesql::FilterError as F;
            let position = match &e {
                F::InvalidSql { error, .. } => Some((error.line(), error.column())),
                _ => None,
            };
            let path = match &e {
                F::NotAnObject { path, .. }
                | F::NoDialect { path }
                | F::SeveralDialects { path, .. }
                | F::UnknownDialect { path, .. }
                | F::WrongType { path, .. }
                | F::Empty { path, .. }
                | F::EmptyAttributeName { path, .. }
                | F::NonStringValue { path, .. }
                | F::EmptyValue { path, .. }
                | F::InvalidSql { path, .. }
                | F::UnusableSql { path, .. }
                | F::TooDeep { path } => path.clone(),
            };
            let message = e.to_string();
            let detail = message
                .strip_prefix(&format!("{path}: "))
                .unwrap_or(&message)
                .to_owned();
            let path = if path == "/" { String::new() } else { path };
            ApiError::Invalid {
                field: format!("/filters{path}"),
                detail,
                position,
            }
        })
}

/// The placeholder shown instead of credential secrets.
pub const REDACTED: &str = "********";

/// The credential members that are secrets.
const SECRETS: [&str; 3] = ["secret", "accesstoken", "refreshtoken"];

/// Replaces the secrets of a subscription's JSON with [`REDACTED`]: the API shows which
/// credential is configured, never the credential.
pub fn redact(json: &mut Value) {
    if let Some(Value::Object(cred)) = json.get_mut("sinkcredential") {
        for key in SECRETS {
            if let Some(v) = cred.get_mut(key)
                && v.is_string()
            {
                *v = Value::String(REDACTED.into());
            }
        }
    }
}

/// For a `PUT` that sends back what a `GET` showed: redacted secrets keep their stored value.
pub fn restore_secrets(new: &mut Option<Value>, old: Option<&Value>) {
    let (Some(Value::Object(new)), Some(Value::Object(old))) = (new.as_mut(), old) else {
        return;
    };
    for key in SECRETS {
        if new.get(key).and_then(Value::as_str) == Some(REDACTED)
            && let Some(stored) = old.get(key)
        {
            new.insert(key.to_owned(), stored.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: Value) -> Option<String> {
        match subscription_request(body.to_string().as_bytes()) {
            Ok(_) => None,
            Err(ApiError::Invalid { field, .. }) => Some(field),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn with(name: &str, value: Value) -> Value {
        let mut body = serde_json::json!({"sink": "http://127.0.0.1:9/", "protocol": "HTTP"});
        body[name] = value;
        body
    }

    /// Subscriptions 3.2.1: `"types": "[ "[ce-type values]" + ]", ?` ("`+` means one or
    /// more"), and "all events generated due to this subscription MUST have a CloudEvents
    /// `type` property that matches one of these values": an empty list is refused, not
    /// silently read as "any type".
    #[test]
    fn an_empty_types_list_is_refused() {
        assert_eq!(
            field_of(with("types", serde_json::json!([]))).as_deref(),
            Some("/types")
        );
        assert_eq!(field_of(with("types", serde_json::json!(["t"]))), None);
    }

    /// Subscriptions 3.2.3, Sink Credentials: `identifier` and `secret` are "REQUIRED for
    /// credentialType=\"PLAIN\""; `accessToken` and `accessTokenExpiresUtc` are "REQUIRED for
    /// credentialType=\"ACCESSTOKEN\" and credentialType=\"REFRESHTOKEN\""; `refreshToken` is
    /// "REQUIRED for credentialType=\"REFRESHTOKEN\"" (and the OpenAPI's
    /// `RefreshTokenCredential` also requires `refreshtokenendpoint`).
    #[test]
    fn credentials_need_the_members_of_their_type() {
        use serde_json::json;
        let cred = |c: Value| field_of(with("sinkcredential", c));
        let expires = "2030-01-01T00:00:00Z";
        // Complete credentials of each type are accepted.
        for good in [
            json!({"credentialtype": "PLAIN", "identifier": "u", "secret": "p"}),
            json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t",
                   "accesstokenexpiresutc": expires}),
            json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t",
                   "accesstokenexpiresutc": expires, "accesstokentype": "bearer"}),
            json!({"credentialtype": "REFRESHTOKEN", "accesstoken": "t",
                   "accesstokenexpiresutc": expires, "refreshtoken": "r",
                   "refreshtokenendpoint": "https://auth.example.com/token"}),
        ] {
            assert_eq!(cred(good.clone()), None, "{good}");
        }
        // Each missing, empty or malformed member is named.
        for (bad, field) in [
            (
                json!({"identifier": "u", "secret": "p"}),
                "/sinkcredential/credentialtype",
            ),
            (
                json!({"credentialtype": "KERBEROS"}),
                "/sinkcredential/credentialtype",
            ),
            (
                json!({"credentialtype": "PLAIN", "identifier": "u"}),
                "/sinkcredential/secret",
            ),
            (
                json!({"credentialtype": "PLAIN", "secret": "p"}),
                "/sinkcredential/identifier",
            ),
            (
                json!({"credentialtype": "PLAIN", "identifier": "", "secret": "p"}),
                "/sinkcredential/identifier",
            ),
            (
                json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t"}),
                "/sinkcredential/accesstokenexpiresutc",
            ),
            (
                json!({"credentialtype": "ACCESSTOKEN", "accesstokenexpiresutc": expires}),
                "/sinkcredential/accesstoken",
            ),
            (
                json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t",
                    "accesstokenexpiresutc": "tomorrow"}),
                "/sinkcredential/accesstokenexpiresutc",
            ),
            (
                json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t",
                    "accesstokenexpiresutc": expires, "secret": "p"}),
                "/sinkcredential/secret",
            ),
            (
                json!({"credentialtype": "REFRESHTOKEN", "accesstoken": "t",
                    "accesstokenexpiresutc": expires, "refreshtoken": "r"}),
                "/sinkcredential/refreshtokenendpoint",
            ),
            (
                json!({"credentialtype": "REFRESHTOKEN", "accesstoken": "t",
                    "accesstokenexpiresutc": expires, "refreshtokenendpoint": "https://a/t"}),
                "/sinkcredential/refreshtoken",
            ),
            (
                json!({"credentialtype": "REFRESHTOKEN", "accesstoken": "t",
                    "accesstokenexpiresutc": expires, "refreshtoken": "r",
                    "refreshtokenendpoint": "not a uri"}),
                "/sinkcredential/refreshtokenendpoint",
            ),
        ] {
            assert_eq!(cred(bad.clone()).as_deref(), Some(field), "{bad}");
        }
    }

    /// Subscriptions 3.2.1, `source`: "Type: `URI-reference` - a CloudEvents `source` value".
    #[test]
    fn source_must_be_a_uri_reference() {
        for bad in ["has space", "/a%zz", "a\\b"] {
            assert_eq!(
                field_of(with("source", Value::String(bad.into()))).as_deref(),
                Some("/source"),
                "{bad}"
            );
        }
        for good in [
            "/shop/orders",
            "https://example.com/x#y",
            "urn:uuid:1",
            "1-555-123-4567",
        ] {
            assert_eq!(
                field_of(with("source", Value::String(good.into()))),
                None,
                "{good}"
            );
        }
    }
}
