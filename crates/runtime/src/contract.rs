//! A component's declared contract, enforced around its handler: events of a type it
//! `consumes` with a schema are checked before it runs, and what it emits of a type it
//! `produces` is checked (and stamped with the declared `dataschema`/`datacontenttype`) before
//! anything leaves. Every trigger gets this, since it wraps the [`Handler`] itself.

use std::sync::Arc;

use cloudevent::Event;
use registry::Contract;

use crate::handler::{BoxFuture, Handler, HandlerError, Publish, PublishError};

/// `inner` held to `contract`; `inner` itself when the contract checks nothing.
pub fn enforce(inner: Arc<dyn Handler>, contract: Arc<Contract>) -> Arc<dyn Handler> {
    if contract.is_empty() {
        inner
    } else {
        Arc::new(Checked { inner, contract })
    }
}

struct Checked {
    inner: Arc<dyn Handler>,
    contract: Arc<Contract>,
}

impl Handler for Checked {
    fn handle(
        &self,
        event: Event,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<Vec<Event>, HandlerError>> {
        Box::pin(async move {
            self.contract
                .check_input(&event)
                .map_err(HandlerError::InvalidEvent)?;
            let outputs = Arc::new(CheckedPublish {
                inner: outputs,
                contract: self.contract.clone(),
            });
            let mut results = self.inner.handle(event, outputs).await?;
            for result in &mut results {
                self.contract
                    .check_output(result)
                    .map_err(HandlerError::InvalidResult)?;
            }
            Ok(results)
        })
    }
}

/// Checks what the handler publishes before it is collected, so the guest's `publish` call
/// itself fails with the violation.
struct CheckedPublish {
    inner: Arc<dyn Publish>,
    contract: Arc<Contract>,
}

impl Publish for CheckedPublish {
    fn publish(&self, output: &str, mut event: Event) -> Result<(), PublishError> {
        self.contract
            .check_output(&mut event)
            .map_err(PublishError::InvalidData)?;
        self.inner.publish(output, event)
    }
}
