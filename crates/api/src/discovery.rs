//! `/registry`: the app's xRegistry document, read-only, in the shape of the xRegistry API
//! (`/registry/endpoints/<id>`, `/registry/schemagroups/<g>/schemas/<s>[/versions/<v>]`, a
//! schema's metadata with `$details`).

use http::{HeaderValue, StatusCode, header};
use registry::{Lookup, Registry};

use crate::error::ApiError;
use crate::problem::{HttpResponse, bytes_response, empty};

/// Answers `GET /registry/<path>` from `registry`.
pub fn get(registry: Option<&Registry>, path: &str) -> Result<HttpResponse, ApiError> {
    let Some(registry) = registry else {
        return Err(ApiError::NotFound(
            "this instance serves no registry document".to_owned(),
        ));
    };
    let path = crate::query::decode(path);
    match registry.lookup(&path) {
        Some(Lookup::Metadata(value)) => Ok(json(
            "application/json",
            serde_json::to_vec_pretty(value).unwrap_or_default(),
        )),
        Some(Lookup::Schema(value)) => Ok(json(
            "application/schema+json",
            serde_json::to_vec_pretty(value).unwrap_or_default(),
        )),
        Some(Lookup::Elsewhere(url)) => {
            let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
            if let Ok(location) = HeaderValue::from_str(url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        None => Err(ApiError::NotFound(format!(
            "nothing at /registry/{}",
            path.trim_start_matches('/')
        ))),
    }
}

fn json(content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    bytes_response(StatusCode::OK, content_type, body.into())
}
