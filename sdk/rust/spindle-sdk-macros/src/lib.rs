//! The `#[cloudevents_component]` attribute of `spindle-sdk`.
//!
//! It turns an ordinary function into the export of a `spindle:cloudevents/handler` component,
//! so a handler author never touches WIT bindings.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input};

/// Exports the annotated function as the component's `handle`.
///
/// The function takes one `spindle_sdk::Event` and returns `Result<T, E>` where `T`
/// implements `spindle_sdk::IntoEvents` (`()`, `Event`, `Option<Event>`, `Vec<Event>`) and
/// `E` converts into `spindle_sdk::Error`. Use it once per component.
#[proc_macro_attribute]
pub fn cloudevents_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[cloudevents_component] takes no arguments")
            .to_compile_error()
            .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    if let Err(e) = check(&func) {
        return e.to_compile_error().into();
    }
    let name = &func.sig.ident;
    quote! {
        #func

        #[doc(hidden)]
        struct __SpindleComponent;

        impl ::spindle_sdk::__bindings::Guest for __SpindleComponent {
            fn handle(
                event: ::spindle_sdk::__bindings::spindle::cloudevents::types::Event,
            ) -> ::core::result::Result<
                ::std::vec::Vec<::spindle_sdk::__bindings::spindle::cloudevents::types::Event>,
                ::spindle_sdk::__bindings::spindle::cloudevents::types::HandlerError,
            > {
                ::spindle_sdk::__private::run(event, #name)
            }
        }

        ::spindle_sdk::__bindings::__export_handler!(__SpindleComponent);
    }
    .into()
}

/// Rejects signatures the glue cannot call, with a message at the right span.
fn check(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(
            sig.asyncness,
            "a handler must be a plain (non-async) function",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a handler cannot be generic",
        ));
    }
    if sig.inputs.len() != 1 {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            "a handler takes exactly one argument: the `Event`",
        ));
    }
    if matches!(sig.output, syn::ReturnType::Default) {
        return Err(syn::Error::new_spanned(
            sig,
            "a handler returns `spindle_sdk::Result<T>` (T: (), Event, Option<Event>, Vec<Event>)",
        ));
    }
    Ok(())
}
