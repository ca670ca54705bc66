//! The Subscriptions API filter dialects from JSON (`cesql::Filter::from_json`, and
//! `from_json_list` for a subscription's `filters` array) on arbitrary JSON. What compiles must
//! echo back exactly as received (`to_json` / `to_json_list`), compile again to an equal filter,
//! and decide the same with and without error collection on a fixed event.
//!
//! Input: a JSON document: an array is a `filters` list, anything else one filter.
#![no_main]

use std::sync::LazyLock;

use cesql::Filter;
use cloudevent::Event;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static EVENT: LazyLock<Event> = LazyLock::new(spindle_fuzz::sample_event);

fn check_decisions(filter: &Filter) {
    let (pass, _errors) = filter.matches_with_errors(&*EVENT);
    assert_eq!(
        filter.matches(&*EVENT),
        pass,
        "matches and matches_with_errors disagree"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    spindle_fuzz::trace(|| match &json {
        Value::Array(list) => format!("{:?}", Filter::from_json_list(list)),
        single => format!("{:?}", Filter::from_json(single)),
    });
    match &json {
        Value::Array(list) => {
            if let Ok(filter) = Filter::from_json_list(list) {
                let echoed = filter.to_json_list();
                assert_eq!(&echoed, list, "to_json_list does not echo the filters back");
                assert_eq!(Filter::from_json_list(&echoed).as_ref(), Ok(&filter));
                check_decisions(&filter);
            }
        }
        single => {
            if let Ok(filter) = Filter::from_json(single) {
                let echoed = filter.to_json();
                assert_eq!(&echoed, single, "to_json does not echo the filter back");
                assert_eq!(Filter::from_json(&echoed).as_ref(), Ok(&filter));
                check_decisions(&filter);
            }
        }
    }
});
