//! HTTP trigger routes, with Spin's syntax: `/orders` matches exactly that
//! path, `/orders/...` matches `/orders` and everything below it, and `/...`
//! matches everything.

use std::fmt;

/// Why a route was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Routes are absolute paths; a relative one would be ambiguous.
    #[error("invalid route \"{0}\": must start with '/'")]
    NotAbsolute(String),
    /// `...` is only meaningful as the whole last segment.
    #[error(
        "invalid route \"{0}\": '...' is only allowed as the last segment (e.g. \"/orders/...\")"
    )]
    MisplacedWildcard(String),
    /// `//` would never match a normalised request path.
    #[error("invalid route \"{0}\": empty path segment")]
    EmptySegment(String),
    /// Query strings, fragments, whitespace and the like do not belong in a route.
    #[error("invalid route \"{route}\": character {ch:?} is not allowed in a route")]
    BadChar {
        /// The route as written.
        route: String,
        /// The offending character.
        ch: char,
    },
}

/// A parsed HTTP trigger route.
///
/// Routes are normalised (a trailing `/` is dropped, except for the root) so
/// that `/orders` and `/orders/` are recognised as the same route when
/// checking for duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// Matches exactly this path, e.g. `/orders`.
    Exact(String),
    /// Matches this prefix and anything below it: `/orders/...` is stored as
    /// `Wildcard("/orders")`, `/...` as `Wildcard("/")`.
    Wildcard(String),
}

impl Route {
    /// Parses and normalises a route in Spin's syntax.
    pub fn parse(route: &str) -> Result<Self, RouteError> {
        if !route.starts_with('/') {
            return Err(RouteError::NotAbsolute(route.to_owned()));
        }
        if let Some(ch) = route
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '\\'))
        {
            return Err(RouteError::BadChar {
                route: route.to_owned(),
                ch,
            });
        }
        let body = route.trim_end_matches('/');
        let segments: Vec<&str> = body.split('/').skip(1).collect();
        let wildcard = segments.last() == Some(&"...");
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() {
                return Err(RouteError::EmptySegment(route.to_owned()));
            }
            if seg.contains("...") && !(i + 1 == segments.len() && *seg == "...") {
                return Err(RouteError::MisplacedWildcard(route.to_owned()));
            }
        }
        let prefix_segments = if wildcard {
            &segments[..segments.len() - 1]
        } else {
            &segments[..]
        };
        let path = format!("/{}", prefix_segments.join("/"));
        Ok(if wildcard {
            Route::Wildcard(path)
        } else {
            Route::Exact(path)
        })
    }

    /// The path this route is anchored at, without any `/...`.
    pub fn path(&self) -> &str {
        match self {
            Route::Exact(p) | Route::Wildcard(p) => p,
        }
    }

    /// Whether a request path is handled by this route. Useful for the HTTP
    /// trigger and for tests; longest-prefix selection is the router's job.
    pub fn matches(&self, request_path: &str) -> bool {
        let req = match request_path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        match self {
            Route::Exact(p) => req == p,
            Route::Wildcard(p) if p == "/" => true,
            Route::Wildcard(p) => {
                req == p || (req.starts_with(p.as_str()) && req[p.len()..].starts_with('/'))
            }
        }
    }
}

impl fmt::Display for Route {
    /// Prints the route back in manifest syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Exact(p) => f.write_str(p),
            Route::Wildcard(p) if p == "/" => f.write_str("/..."),
            Route::Wildcard(p) => write!(f, "{p}/..."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(Route::parse("/orders"), Ok(Route::Exact("/orders".into())));
        assert_eq!(Route::parse("/orders/"), Ok(Route::Exact("/orders".into())));
        assert_eq!(Route::parse("/"), Ok(Route::Exact("/".into())));
        assert_eq!(
            Route::parse("/orders/..."),
            Ok(Route::Wildcard("/orders".into()))
        );
        assert_eq!(Route::parse("/..."), Ok(Route::Wildcard("/".into())));
        assert_eq!(Route::parse("/a/b/c"), Ok(Route::Exact("/a/b/c".into())));
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(matches!(
            Route::parse("orders"),
            Err(RouteError::NotAbsolute(_))
        ));
        assert!(matches!(Route::parse(""), Err(RouteError::NotAbsolute(_))));
        assert!(matches!(
            Route::parse("/orders/.../x"),
            Err(RouteError::MisplacedWildcard(_))
        ));
        assert!(matches!(
            Route::parse("/orders..."),
            Err(RouteError::MisplacedWildcard(_))
        ));
        assert!(matches!(
            Route::parse("/a//b"),
            Err(RouteError::EmptySegment(_))
        ));
        assert!(matches!(
            Route::parse("/a?b=1"),
            Err(RouteError::BadChar { ch: '?', .. })
        ));
        assert!(matches!(
            Route::parse("/a b"),
            Err(RouteError::BadChar { .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for r in ["/orders", "/orders/...", "/...", "/"] {
            assert_eq!(Route::parse(r).unwrap().to_string(), r);
        }
    }

    #[test]
    fn matching() {
        let exact = Route::parse("/orders").unwrap();
        assert!(exact.matches("/orders"));
        assert!(exact.matches("/orders/"));
        assert!(!exact.matches("/orders/1"));
        let wild = Route::parse("/orders/...").unwrap();
        assert!(wild.matches("/orders"));
        assert!(wild.matches("/orders/1/2"));
        assert!(!wild.matches("/ordersx"));
        assert!(Route::parse("/...").unwrap().matches("/anything"));
        assert!(Route::parse("/").unwrap().matches("/"));
    }
}
