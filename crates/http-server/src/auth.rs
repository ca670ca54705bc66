//! Bearer-token checks, one implementation for every listener.
//!
//! Tokens are compared through their SHA-256 digests with a constant-time fold, so neither a
//! matching prefix nor the token's length shows in the response time.

use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::problem::Problem;

/// A configured bearer token.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// The token requests must present.
    pub fn new(token: &str) -> Self {
        BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        given
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Whether the request carries the token in `Authorization: Bearer <token>` or, when
    /// `query_param` is allowed, in the `access_token` query parameter (the CloudEvents
    /// webhook spec's alternative for senders that cannot set headers), percent-decoded.
    pub fn authorizes(&self, headers: &HeaderMap, uri: &Uri, query_param: bool) -> bool {
        let from_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if from_header.is_some_and(|t| self.matches(t)) {
            return true;
        }
        query_param
            && uri.query().is_some_and(|query| {
                query
                    .split('&')
                    .filter_map(|pair| pair.strip_prefix("access_token="))
                    .any(|raw| {
                        // `+` is a space in form encoding, which no token contains literally.
                        let raw = raw.replace('+', " ");
                        percent_decode_str(&raw)
                            .decode_utf8()
                            .is_ok_and(|t| self.matches(&t))
                    })
            })
    }

    /// The `401` answer, with `WWW-Authenticate: Bearer`; add a detail saying how to
    /// authenticate at this endpoint.
    pub fn challenge() -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized")
            .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(auth));
        h
    }

    #[test]
    fn bearer_header() {
        let t = BearerToken::new("s3cret");
        let uri = Uri::from_static("/");
        assert!(!t.authorizes(&HeaderMap::new(), &uri, true));
        assert!(!t.authorizes(&headers("Bearer s3cre"), &uri, false));
        assert!(!t.authorizes(&headers("Bearer s3crett"), &uri, false));
        assert!(t.authorizes(&headers("bearer s3cret"), &uri, false));
        assert!(t.authorizes(&headers("Bearer  s3cret "), &uri, false));
        assert!(!t.authorizes(&headers("Basic s3cret"), &uri, false));
    }

    #[test]
    fn access_token_is_percent_decoded_and_only_where_allowed() {
        let t = BearerToken::new("a/b+c d");
        let uri = Uri::from_static("/hook?x=1&access_token=a%2Fb%2Bc%20d");
        assert!(t.authorizes(&HeaderMap::new(), &uri, true));
        assert!(!t.authorizes(&HeaderMap::new(), &uri, false));
        let wrong = Uri::from_static("/hook?access_token=a%2Fb");
        assert!(!t.authorizes(&HeaderMap::new(), &wrong, true));
        let plus = Uri::from_static("/hook?access_token=a/b%2Bc+d");
        assert!(t.authorizes(&HeaderMap::new(), &plus, true));
    }
}
