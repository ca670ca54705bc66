//! The content mode: how an event travels in a message. One type for every binding, every
//! output and every subscription; HTTP adds its batched mode on top ([`crate::http::Mode`]).

/// Binary or structured content mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContentMode {
    /// Attributes in protocol metadata (headers, properties), `data` as the body. The default:
    /// receivers that know nothing of CloudEvents still get their plain payload.
    #[default]
    Binary,
    /// The whole event in the body, in an event format ([`crate::Format`]). The only mode of
    /// MQTT 3.1.1, which has no message properties.
    Structured,
}

impl ContentMode {
    /// The word manifests and the Subscriptions API use: `binary` or `structured`.
    pub fn name(self) -> &'static str {
        match self {
            ContentMode::Binary => "binary",
            ContentMode::Structured => "structured",
        }
    }
}

impl std::str::FromStr for ContentMode {
    type Err = String;

    /// Parses `binary` or `structured`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(ContentMode::Binary),
            "structured" => Ok(ContentMode::Structured),
            other => Err(format!(
                "unknown content mode `{other}` (expected binary or structured)"
            )),
        }
    }
}

impl std::fmt::Display for ContentMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<ContentMode> for crate::http::Mode {
    fn from(mode: ContentMode) -> Self {
        match mode {
            ContentMode::Binary => crate::http::Mode::Binary,
            ContentMode::Structured => crate::http::Mode::Structured,
        }
    }
}

impl serde::Serialize for ContentMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ContentMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
