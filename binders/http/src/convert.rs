//! The one conversion of this component's boundary: the codec's event to and from the WIT
//! record the linked handler takes (the same code as the host's, from `cloudevent`), checked
//! on the way back by every rule a wire event is.

use crate::spindle::cloudevents::types as wit;

cloudevent::wit_conversions!(wit);
