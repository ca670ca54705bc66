//! Host bindings generated from `wit/` (the event conversions are in `event`).

use crate::error::ErrorKind;

wasmtime::component::bindgen!({
    world: "handler",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
    with: { "spindle:cloudevents/key-value.store": crate::kv::OpenStore },
});

pub(crate) use spindle::cloudevents::types as wit;

impl From<wit::ErrorKind> for ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        match k {
            wit::ErrorKind::Transient => ErrorKind::Transient,
            wit::ErrorKind::Permanent => ErrorKind::Permanent,
        }
    }
}

impl<T: Send + 'static> HandlerPre<T> {
    /// Instantiates the component and returns its `handle` export.
    ///
    /// The generated `instantiate_async` type-checks `handle` again for every instance
    /// (a few percent of an echo event); [`HandlerPre::new`] has already checked it against
    /// the component's type once at load time, so each instance only looks the export up.
    pub(crate) async fn instantiate_handle(
        &self,
        mut store: impl wasmtime::AsContextMut<Data = T>,
    ) -> wasmtime::Result<
        wasmtime::component::TypedFunc<
            (&wit::Event,),
            (Result<Vec<wit::Event>, wit::HandlerError>,),
        >,
    > {
        let instance = self.instance_pre.instantiate_async(&mut store).await?;
        let func = instance
            .get_func(&mut store, self.indices.handle)
            .ok_or_else(|| wasmtime::format_err!("the component has no `handle` export"))?;
        // SAFETY: `HandlerPre::new` type-checked the export at this index against exactly
        // this signature when the component was loaded, and every instance of one
        // `InstancePre` has the same types.
        Ok(unsafe { wasmtime::component::TypedFunc::new_unchecked(func) })
    }
}
