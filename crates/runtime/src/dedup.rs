//! A trigger's dedup window (`dedup_window` on a broker trigger or an HTTP route), kept as
//! the policy of the trigger's queue in the delivery engine: the one check and the one record
//! every trigger uses.

use cloudevent::Event;
use delivery::{Delivery, SubscriptionId};

/// Whether `trigger` handled `event` within its dedup window already (logged). A store that
/// cannot answer lets the event through: at least once, never lost.
pub(crate) async fn is_duplicate(
    delivery: &Delivery,
    queue: &SubscriptionId,
    trigger: &str,
    event: &Event,
) -> bool {
    match delivery.is_duplicate(queue, event).await {
        Ok(true) => {
            tracing::info!(
                trigger,
                event_id = event.id(),
                source = event.source(),
                "duplicate within the dedup window: acknowledged, not handled again"
            );
            true
        }
        Ok(false) => false,
        Err(error) => {
            tracing::warn!(trigger, event_id = event.id(), %error, "cannot check the dedup window");
            false
        }
    }
}

/// Records that `trigger` handled `event`, before it is acknowledged.
pub(crate) async fn remember(
    delivery: &Delivery,
    queue: &SubscriptionId,
    trigger: &str,
    event: &Event,
) {
    if let Err(error) = delivery.remember(queue, event).await {
        tracing::warn!(trigger, event_id = event.id(), %error,
            "cannot record the event in the dedup window");
    }
}
