//! Linking a protocol binder to a handler component, guest side.
//!
//! A binder (`spindle:cloudevents/binder-http` world, see `wit/binder.wit`) imports the
//! function `handle`; a handler component exports it. [`link`] plugs one into the other with
//! `wac-graph` and yields one component that exports what the binder exports and imports what
//! either still needs (WASI, `config`, `log`, `outbound`, `key-value`), which the engine runs
//! as a `wasi:http` component ([`crate::Engine::load_binder`]). [`standalone`] also plugs host
//! stubs in for Spindle's own imports, so the result runs on any `wasi:http` host.

use wac_graph::types::{ItemKind, Package};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId};

/// The function a binder imports and a handler component exports.
pub const HANDLE: &str = "handle";

/// Why two components could not be linked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// One of the inputs is not a component `wac-graph` can read.
    #[error("the {role} is not a readable component: {message}")]
    Read {
        /// `binder`, `component` or `host stubs`.
        role: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The binder imports no `handle` function, or the component exports none.
    #[error("{0}")]
    Shape(String),
    /// The two do not fit together (e.g. their `handle` signatures differ).
    #[error("cannot link the binder to the component: {0}")]
    Link(String),
}

/// The binder with its `handle` import satisfied by `component`'s `handle` export.
pub fn link(binder: &[u8], component: &[u8]) -> Result<Vec<u8>, ComposeError> {
    compose(binder, component, None)
}

/// [`link`], with `stubs` (the `host-stubs` world) satisfying every Spindle import of the
/// binder and the component, so the result imports nothing but WASI.
pub fn standalone(binder: &[u8], component: &[u8], stubs: &[u8]) -> Result<Vec<u8>, ComposeError> {
    compose(binder, component, Some(stubs))
}

fn compose(binder: &[u8], component: &[u8], stubs: Option<&[u8]>) -> Result<Vec<u8>, ComposeError> {
    let mut graph = CompositionGraph::new();
    let binder = register(&mut graph, "spindle:binder", "binder", binder)?;
    let component = register(&mut graph, "spindle:component", "component", component)?;
    let link = |e: &dyn std::fmt::Display| ComposeError::Link(e.to_string());

    if !imports(&graph, binder).iter().any(|name| name == HANDLE) {
        return Err(ComposeError::Shape(
            "the binder does not import a `handle` function (is it a component of the \
             spindle:cloudevents/binder-http world?)"
                .into(),
        ));
    }
    if !exports(&graph, component).iter().any(|name| name == HANDLE) {
        return Err(ComposeError::Shape(
            "the component does not export a `handle` function (is it a CloudEvents handler \
             of the spindle:cloudevents/handler world?)"
                .into(),
        ));
    }
    let component_instance = graph.instantiate(component);
    let binder_instance = graph.instantiate(binder);
    let handle = graph
        .alias_instance_export(component_instance, HANDLE)
        .map_err(|e| link(&e))?;
    graph
        .set_instantiation_argument(binder_instance, HANDLE, handle)
        .map_err(|e| link(&e))?;

    if let Some(stubs) = stubs {
        let stubs = register(&mut graph, "spindle:host-stubs", "host stubs", stubs)?;
        let stubs_instance = graph.instantiate(stubs);
        for name in exports(&graph, stubs) {
            for (package, instance) in [(component, component_instance), (binder, binder_instance)]
            {
                if imports(&graph, package).contains(&name) {
                    let item = graph
                        .alias_instance_export(stubs_instance, &name)
                        .map_err(|e| link(&e))?;
                    graph
                        .set_instantiation_argument(instance, &name, item)
                        .map_err(|e| link(&e))?;
                }
            }
        }
    }

    for name in exports(&graph, binder) {
        let item = graph
            .alias_instance_export(binder_instance, &name)
            .map_err(|e| link(&e))?;
        export(&mut graph, item, &name)?;
    }
    graph.encode(EncodeOptions::default()).map_err(|e| link(&e))
}

fn register(
    graph: &mut CompositionGraph,
    name: &str,
    role: &'static str,
    bytes: &[u8],
) -> Result<PackageId, ComposeError> {
    let read = |message: String| ComposeError::Read { role, message };
    let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut())
        .map_err(|e| read(format!("{e:#}")))?;
    graph
        .register_package(package)
        .map_err(|e| read(e.to_string()))
}

fn export(graph: &mut CompositionGraph, item: NodeId, name: &str) -> Result<(), ComposeError> {
    graph
        .export(item, name)
        .map_err(|e| ComposeError::Link(e.to_string()))
}

/// The names a package's world imports.
fn imports(graph: &CompositionGraph, package: PackageId) -> Vec<String> {
    let world = graph[package].ty();
    graph.types()[world].imports.keys().cloned().collect()
}

/// The names a package's world exports (instances and functions).
fn exports(graph: &CompositionGraph, package: PackageId) -> Vec<String> {
    let world = graph[package].ty();
    graph.types()[world]
        .exports
        .iter()
        .filter(|(_, kind)| matches!(kind, ItemKind::Instance(_) | ItemKind::Func(_)))
        .map(|(name, _)| name.clone())
        .collect()
}
