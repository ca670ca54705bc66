//! CESQL over Spindle's own event type: context attributes map to CESQL types per the CESQL
//! spec (Boolean and Integer keep their type, everything else is its canonical string), with
//! strings borrowed so attribute comparisons do not allocate.

use std::borrow::Cow;

use cloudevent::{AttributeRef, AttributeValue, Event};

use crate::value::{EventAttributes, Value};

impl EventAttributes for Event {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        Some(match Event::attribute(self, name)? {
            AttributeRef::Str(s) => Value::String(Cow::Borrowed(s)),
            AttributeRef::Timestamp(t) => Value::String(Cow::Owned(t.to_string())),
            AttributeRef::Value(v) => match v {
                AttributeValue::Boolean(b) => Value::Boolean(*b),
                AttributeValue::Integer(i) => Value::Integer(*i),
                AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
                    Value::String(Cow::Borrowed(s))
                }
                other => Value::String(Cow::Owned(other.to_canonical_string())),
            },
        })
    }

    fn has_attribute(&self, name: &str) -> bool {
        Event::attribute(self, name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Expression, Filter};
    use cloudevent::Event;

    #[test]
    fn filters_read_core_and_extension_attributes_with_their_types() {
        let event = Event::builder()
            .id("1")
            .source("/shop/eu")
            .ty("com.example.order.created")
            .time("2020-01-01T00:00:00Z".parse().unwrap())
            .extension("priority", 5)
            .extension("express", true)
            .build()
            .unwrap();
        let expr = Expression::parse(
            "type = 'com.example.order.created' AND source LIKE '/shop/%' AND priority > 3 \
             AND express AND time = '2020-01-01T00:00:00Z' AND EXISTS specversion AND NOT EXISTS subject",
        )
        .unwrap();
        assert!(expr.matches(&event));
        let filter =
            Filter::from_json(&serde_json::json!({"suffix": {"type": ".created"}})).unwrap();
        assert!(filter.matches(&event));
        let filter = Filter::from_json(&serde_json::json!({"exact": {"priority": "5"}})).unwrap();
        assert!(filter.matches(&event));
    }
}
