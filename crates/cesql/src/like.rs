//! LIKE patterns (spec §3.4.3), compiled once into the cheapest matcher.
//!
//! `%` matches any run of characters, `_` exactly one character; `\%`, `\_`
//! and `\\` match `%`, `_` and `\` literally; any other backslash is an
//! ordinary character (so the pattern `ab\c` matches the text `ab\c`).
//! Matching is case-sensitive and character (not byte) based.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Char(char),
    One,
    Many,
}

/// How a compiled pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// No wildcard.
    Exact(String),
    /// `abc%`
    Prefix(String),
    /// `%abc`
    Suffix(String),
    /// `%abc%`
    Contains(String),
    /// Only `%` wildcards: anchored head, floating middle parts, anchored
    /// tail. Leftmost-first search of each part is exact for such patterns.
    Segments {
        head: String,
        middle: Vec<String>,
        tail: String,
    },
    /// Patterns with `_`: a backtracking matcher over characters, bounded by
    /// text length × pattern length.
    General(Vec<Elem>),
}

/// A compiled LIKE pattern.
///
/// Public so that other components can match with exactly CESQL's LIKE
/// semantics without building an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    matcher: Matcher,
}

impl LikePattern {
    /// Compiles `pattern` (the value of the string literal).
    pub fn new(pattern: &str) -> Self {
        let mut elems = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    if elems.last() != Some(&Elem::Many) {
                        elems.push(Elem::Many);
                    }
                }
                '_' => elems.push(Elem::One),
                '\\' => match chars.peek() {
                    Some(&n @ ('%' | '_' | '\\')) => {
                        chars.next();
                        elems.push(Elem::Char(n));
                    }
                    _ => elems.push(Elem::Char('\\')),
                },
                c => elems.push(Elem::Char(c)),
            }
        }
        LikePattern {
            matcher: Self::plan(elems),
        }
    }

    fn plan(elems: Vec<Elem>) -> Matcher {
        if elems.contains(&Elem::One) {
            return Matcher::General(elems);
        }
        // Split into literal parts around `%`.
        let mut parts: Vec<String> = vec![String::new()];
        for e in &elems {
            match e {
                Elem::Char(c) => parts.last_mut().map_or((), |p| p.push(*c)),
                Elem::Many => parts.push(String::new()),
                Elem::One => {}
            }
        }
        let n = parts.len();
        match n {
            1 => Matcher::Exact(parts.remove(0)),
            2 if parts[1].is_empty() => Matcher::Prefix(parts.remove(0)),
            2 if parts[0].is_empty() => Matcher::Suffix(parts.remove(1)),
            3 if parts[0].is_empty() && parts[2].is_empty() => Matcher::Contains(parts.remove(1)),
            _ => {
                let tail = parts.pop().unwrap_or_default();
                let head = if parts.is_empty() {
                    String::new()
                } else {
                    parts.remove(0)
                };
                parts.retain(|p| !p.is_empty());
                Matcher::Segments {
                    head,
                    middle: parts,
                    tail,
                }
            }
        }
    }

    /// Whether `text` matches the pattern.
    pub fn matches(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(s) => text == s,
            Matcher::Prefix(p) => text.starts_with(p.as_str()),
            Matcher::Suffix(s) => text.ends_with(s.as_str()),
            Matcher::Contains(s) => text.contains(s.as_str()),
            Matcher::Segments { head, middle, tail } => {
                if text.len() < head.len() + tail.len()
                    || !text.starts_with(head.as_str())
                    || !text.ends_with(tail.as_str())
                {
                    return false;
                }
                let mut rest = &text[head.len()..text.len() - tail.len()];
                for part in middle {
                    match rest.find(part.as_str()) {
                        Some(i) => rest = &rest[i + part.len()..],
                        None => return false,
                    }
                }
                true
            }
            Matcher::General(elems) => general_match(elems, text),
        }
    }
}

/// Wildcard matching with one backtrack point (the last `%`): linear in the
/// common case, at most text × pattern steps.
fn general_match(elems: &[Elem], text: &str) -> bool {
    let next_char = |i: usize| text[i..].chars().next();
    let (mut ti, mut pi) = (0usize, 0usize);
    // (pattern index after the `%`, text index it currently resumes at)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < elems.len() {
            match &elems[pi] {
                Elem::Many => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                Elem::One => {
                    if let Some(c) = next_char(ti) {
                        ti += c.len_utf8();
                        pi += 1;
                        continue;
                    }
                }
                Elem::Char(p) => {
                    if let Some(c) = next_char(ti).filter(|c| c == p) {
                        ti += c.len_utf8();
                        pi += 1;
                        continue;
                    }
                }
            }
        } else if ti == text.len() {
            return true;
        }
        // Mismatch: let the last `%` swallow one more character.
        match star {
            Some((sp, st)) => match next_char(st) {
                Some(c) => {
                    let st = st + c.len_utf8();
                    star = Some((sp, st));
                    pi = sp;
                    ti = st;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        LikePattern::new(pattern).matches(text)
    }

    #[test]
    fn plans() {
        assert_eq!(
            LikePattern::new("abc").matcher,
            Matcher::Exact("abc".into())
        );
        assert_eq!(
            LikePattern::new("/shop/%").matcher,
            Matcher::Prefix("/shop/".into())
        );
        assert_eq!(
            LikePattern::new("%.x").matcher,
            Matcher::Suffix(".x".into())
        );
        assert_eq!(
            LikePattern::new("%%a%").matcher,
            Matcher::Contains("a".into())
        );
        assert!(matches!(
            LikePattern::new("a%b%c").matcher,
            Matcher::Segments { .. }
        ));
        assert!(matches!(
            LikePattern::new("a_").matcher,
            Matcher::General(_)
        ));
        assert_eq!(
            LikePattern::new(r"a\%").matcher,
            Matcher::Exact("a%".into())
        );
    }

    #[test]
    fn percent() {
        assert!(like("abc", "a%b%c"));
        assert!(like("azzzbzzzc", "a%b%c"));
        assert!(like("a%b%c", "a%b%c"));
        assert!(!like("ac", "abc"));
        assert!(!like("", "abc"));
        assert!(like(".ab.cde.", ".%.%."));
        assert!(!like("ab.cde", ".%.%."));
        assert!(like("", "%"));
        assert!(like("anything", "%"));
        assert!(like("aXbXb", "a%b"));
        assert!(!like("ab", "a%b%b"));
        assert!(like("abab", "%ab%ab%"));
        assert!(!like("aba", "%ab%ab%"));
        // Overlap between head and tail must not match.
        assert!(!like("aba", "ab%ba"));
        assert!(like("abba", "ab%ba"));
    }

    #[test]
    fn underscore() {
        assert!(!like("abc", "a_b_c"));
        assert!(like("a_b_c", "a_b_c"));
        assert!(!like("abzc", "a_b_c"));
        assert!(like("azbzc", "a_b_c"));
        assert!(like(".a.b.", "._._."));
        assert!(!like("abcd.", "._._."));
        assert!(like("é", "_"), "one character, not one byte");
        assert!(!like("", "_"));
        assert!(like("xaéb", "%a_b"));
        assert!(like("234", "23_"));
        assert!(!like("2344", "23_"));
        assert!(like("abcXdYe", "a%c_d%e"));
    }

    #[test]
    fn escapes() {
        assert!(like("a_b_c", r"a\_b\_c"));
        assert!(!like("azbzc", r"a\_b\_c"));
        assert!(like("a%b%c", r"a\%b\%c"));
        assert!(!like("abc", r"a\%b\%c"));
        assert!(like("abc123123%456_dzf", r"abc%123\%456\_d_f"));
        assert!(like(r"ab\c", r"ab\c"));
        assert!(like(r"a\", r"a\"));
        assert!(like(r"a\b", r"a\\b"));
        assert!(like(r"a\xyz", r"a\\%"));
    }

    #[test]
    fn case_sensitive() {
        assert!(!like("aBc", "_b%"));
        assert!(like("abc", "_b%"));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "%_".repeat(200));
        assert!(!like(&text, &pattern));
    }
}
