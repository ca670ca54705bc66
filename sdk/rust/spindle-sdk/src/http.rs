//! Outbound HTTP from a handler, over `wasi:http/outgoing-handler` (the `wasi` crate's
//! bindings: the host does the HTTP, TLS and connection handling).
//!
//! The runtime lets a request out only to the hosts granted in `spindle.toml`
//! (`allowed_outbound_hosts = ["https://api.example.com"]`); any other is refused with
//! [`HttpError::Denied`]. A request counts against the event's deadline, and the response
//! body is read whole, bounded by the runtime (32 MiB) and by the component's memory.
//!
//! ```no_run
//! use spindle_sdk::{cloudevents_component, http, Event, Result};
//!
//! #[cloudevents_component]
//! fn handle(event: Event) -> Result<Event> {
//!     let rate = http::get("https://rates.example.com/eur")
//!         .map_err(http::HttpError::into_error)?   // network trouble retries the event
//!         .error_for_status()
//!         .map_err(http::HttpError::into_error)?
//!         .text()?;
//!     Ok(event.with_extension("eurrate", rate))
//! }
//! ```

use crate::error::{Error, ErrorKind};
use std::io::{Read as _, Write as _};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL, or a header is invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The runtime refused the request: its host is not in `allowed_outbound_hosts`.
    #[error("request to {0} denied: the host is not in allowed_outbound_hosts")]
    Denied(String),
    /// The request was sent but failed (connection, TLS, timeout, protocol), as the host
    /// reported it.
    #[error("request to {url} failed: {reason}")]
    Failed {
        /// The URL requested.
        url: String,
        /// The host's error code, e.g. `ConnectionRefused` or `TlsCertificateError`.
        reason: String,
    },
    /// The server answered with an error status ([`Response::error_for_status`]).
    #[error("{url} answered {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code, 400 to 599.
        status: u16,
    },
}

impl HttpError {
    /// Whether retrying the event later could help: failures of the network and `5xx`/`429`
    /// answers are transient; invalid or denied requests and other `4xx` are not.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Failed { .. } => ErrorKind::Transient,
            HttpError::Status { status, .. } if *status >= 500 || *status == 429 => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Permanent,
        }
    }

    /// The handler error of this failure, keeping [`HttpError::kind`] (plain `?` would make
    /// every error permanent).
    pub fn into_error(self) -> Error {
        match self.kind() {
            ErrorKind::Transient => Error::transient(self.to_string()),
            ErrorKind::Permanent => Error::permanent(self.to_string()),
        }
    }
}

/// An outgoing request; build it with [`Request::get`] or [`Request::new`], then [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with `method` (e.g. `"POST"`) to `url`.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Invalid(e.to_string()))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = self.url;
        let invalid = |why: String| HttpError::Invalid(format!("{url}: {why}"));
        let uri: ::http::Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            _ => return Err(invalid("not an http:// or https:// URL".into())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("no host".into()))?
            .as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let method = match self.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        let headers =
            Fields::from_list(&self.headers).map_err(|e| invalid(format!("header: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| invalid(format!("bad {what}")));
        set(request.set_method(&method), "method")?;
        set(request.set_scheme(Some(&scheme)), "scheme")?;
        set(request.set_authority(Some(authority)), "authority")?;
        set(request.set_path_with_query(Some(path)), "path")?;
        let outgoing = request.body().map_err(|()| invalid("body taken".into()))?;

        let failed = |code: ErrorCode| match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied(authority.to_owned()),
            other => HttpError::Failed {
                url: url.clone(),
                reason: format!("{other:?}"),
            },
        };
        let pending = outgoing_handler::handle(request, None).map_err(failed)?;
        {
            let mut stream = outgoing
                .write()
                .map_err(|()| invalid("body stream".into()))?;
            for chunk in self.body.chunks(4096) {
                stream.write_all(chunk).map_err(|e| HttpError::Failed {
                    url: url.clone(),
                    reason: format!("writing the body: {e}"),
                })?;
            }
            stream.flush().ok();
        }
        OutgoingBody::finish(outgoing, None).map_err(failed)?;

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(failed(code)),
            Some(Err(())) | None => {
                return Err(HttpError::Failed {
                    url: url.clone(),
                    reason: "the host gave no response".into(),
                });
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| invalid("response body taken".into()))?;
        let mut body = Vec::new();
        {
            let mut stream = incoming
                .stream()
                .map_err(|()| invalid("response body stream".into()))?;
            stream
                .read_to_end(&mut body)
                .map_err(|e| HttpError::Failed {
                    url: url.clone(),
                    reason: format!("reading the body: {e}"),
                })?;
        }
        IncomingBody::finish(incoming);
        Ok(Response {
            url,
            status,
            headers,
            body,
        })
    }
}

/// `GET url` and the whole response.
pub fn get(url: impl Into<String>) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    url: String,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(self) -> Result<String, std::string::FromUtf8Error> {
        String::from_utf8(self.body)
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// This response, or [`HttpError::Status`] when its status is 400 or above.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.status >= 400 {
            Err(HttpError::Status {
                url: self.url,
                status: self.status,
            })
        } else {
            Ok(self)
        }
    }
}
