//! The one conversion of the component boundary: the core event (`cloudevent::Event`, what
//! every transport decodes into) to and from the WIT `event` record a component sees.
//!
//! An event coming back from a guest (a result or a publish) is checked on the way in by every
//! rule an event from the wire is, so nothing a component hands over skips validation.

use crate::bindings::wit;

cloudevent::wit_conversions!(wit);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cloudevent::Event;

    /// A WIT event with the required attributes and `extensions`.
    pub(crate) fn guest_event(extensions: Vec<(String, wit::AttributeValue)>) -> wit::Event {
        wit::Event {
            id: "1".into(),
            source: "/guest".into(),
            specversion: "1.0".into(),
            type_: "t".into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions,
            data: None,
        }
    }

    /// CloudEvents core, context attributes: "Each context attribute MUST only appear at most
    /// once in a CloudEvent." A guest's event naming an extension twice is refused with the
    /// attribute named, not collapsed to one of its values.
    #[test]
    fn a_guest_event_with_a_repeated_extension_is_refused() {
        let ok = from_wit(guest_event(vec![
            ("a".into(), wit::AttributeValue::Integer(1)),
            ("b".into(), wit::AttributeValue::Integer(2)),
        ]))
        .unwrap();
        assert_eq!(ok.extensions().len(), 2);
        let err = from_wit(guest_event(vec![
            ("a".into(), wit::AttributeValue::Integer(1)),
            ("b".into(), wit::AttributeValue::Boolean(true)),
            ("a".into(), wit::AttributeValue::Integer(2)),
        ]))
        .unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{err}");
        assert_eq!(problems[0].attribute.as_deref(), Some("a"));
        assert!(problems[0].message.contains("more than once"), "{err}");
    }

    #[test]
    fn typed_extensions_round_trip() {
        let event = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("n", 7)
            .extension("flag", true)
            .build()
            .unwrap();
        assert_eq!(from_wit(to_wit(&event)).unwrap(), event);
    }
}
