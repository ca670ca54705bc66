//! Reading the `wasi:http` request and writing the response.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Answer;
use crate::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::wasi::io::streams::StreamError;

/// Bytes asked for per read of the request body.
const READ_CHUNK: u64 = 64 * 1024;
/// Bytes written per call (`wasi:io` allows 4096 per blocking write).
const WRITE_CHUNK: usize = 4096;

/// The request's headers; a header whose name or value `http` refuses is left out.
pub(crate) fn headers(request: &IncomingRequest) -> HeaderMap {
    let fields = request.headers();
    let mut map = HeaderMap::new();
    for (name, value) in fields.entries() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    /// It is longer than allowed.
    TooLarge,
    /// The stream failed.
    Failed(String),
}

/// The whole body, up to `limit` bytes.
pub(crate) fn read_body(request: IncomingRequest, limit: usize) -> Result<Bytes, BodyError> {
    let incoming = request
        .consume()
        .map_err(|()| BodyError::Failed("the request body was already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| BodyError::Failed("the request body has no stream".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(BodyError::Failed(e.to_debug_string()));
                }
            }
        }
    }
    IncomingBody::finish(incoming);
    Ok(Bytes::from(body))
}

/// Writes `answer` as the response.
pub(crate) fn respond(out: ResponseOutparam, answer: Answer) {
    let entries: Vec<(String, Vec<u8>)> = answer
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(answer.status.as_u16());
    let Ok(body) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in answer.body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
