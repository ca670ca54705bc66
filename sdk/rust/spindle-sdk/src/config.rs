//! Read-only configuration variables from `spindle.toml`.

use crate::__bindings::spindle::cloudevents::config as wit;

/// The variable `name`, or `None` when the component has no such variable.
pub fn get(name: &str) -> Option<String> {
    wit::get(name)
}
