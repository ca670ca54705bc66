//! An app assembled from its manifest: components compiled and loaded into the engine, the
//! delivery engine opened on the state directory (subscriptions, output bindings, dead
//! letters), the HTTP routes laid out and the broker triggers connected. `spindle up` is
//! [`App::load`], then [`App::serve`].

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use delivery::{Delivery, SinkRegistry};
use engine::{ComponentConfig, ComponentSource, DirGrant, Engine, EngineConfig, Grants, Limits};
use manifest::{Component, ComponentId, HttpExecutor, Manifest};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::brokers::{self, BrokerTrigger};
use crate::dispatch::{ComponentEntry, Dispatcher};
use crate::http::{HttpConfig, HttpRoute, HttpTrigger, RouteTarget, WebhookConfig};
use crate::outputs;
use crate::routing::Router;
use crate::subscriber::{self, ComponentSinkFactory};
use crate::wasm::{WasmHandler, WasmHttp};

/// Where an app keeps its state.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The state directory (compiled-component cache, delivery store); `.spindle` by default.
    pub state_dir: PathBuf,
    /// Where the app's listeners are reached, as its registry document advertises them (and
    /// the URI of a declared schema that has no `$id` of its own). `None`: the defaults,
    /// `127.0.0.1:3000` and `[application.admin] listen`.
    pub addresses: Option<registry::Addresses>,
}

/// Why an app could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A component failed to load (compile, link or configuration).
    #[error(transparent)]
    Load(#[from] engine::LoadError),
    /// The delivery store could not be opened, or an output binding could not be set up.
    #[error(transparent)]
    Delivery(#[from] delivery::Error),
    /// A declared data schema could not be read, fetched or compiled.
    #[error("{0}")]
    Schema(#[from] registry::SchemaError),
    /// A setting could not be resolved (for example a secret's environment variable is unset,
    /// or a broker is unreachable).
    #[error("{0}")]
    Config(String),
}

/// One trigger as `spindle up` prints it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The HTTP route in Spin syntax, or the broker and subject/topic/address.
    pub route: String,
    /// The component serving it; `None` for a route that only feeds subscriptions.
    pub component: Option<String>,
    /// `cloudevents`, `wasi-http`, or the broker's name.
    pub executor: &'static str,
}

/// A loaded app, ready to serve.
pub struct App {
    name: String,
    routes: Vec<RouteInfo>,
    brokers: Vec<RouteInfo>,
    broker_triggers: Vec<BrokerTrigger>,
    http: Arc<HttpTrigger>,
    dispatcher: Dispatcher,
    delivery: Arc<Delivery>,
    registry: Arc<registry::Registry>,
    remote: crate::remote::RemoteSubscriptions,
}

impl App {
    /// Compiles (or loads from the cache) every component, opens the delivery engine, sets
    /// up the output bindings, and connects the broker triggers.
    pub async fn load(manifest: &Manifest, options: &AppOptions) -> Result<App, AppError> {
        let engine = Engine::new(engine_config(manifest, &options.state_dir))?;
        let egress = Arc::new(manifest.application.egress.clone());
        // The webhook handshake's callback client, under the egress policy.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(delivery::sink::egress::GuardedResolver::new(egress.clone()))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AppError::Config(format!("cannot build the HTTP client: {e}")))?;

        let raw_http: BTreeSet<&str> = manifest
            .triggers
            .http
            .iter()
            .filter(|t| t.executor == HttpExecutor::WasiHttp)
            .filter_map(|t| t.component.as_ref().map(ComponentId::as_str))
            .collect();
        // Components behind a binder route: linked to their binder for that route (and loaded
        // as handlers too, so subscriptions and other triggers can reach them).
        let bound: BTreeSet<&str> = manifest
            .triggers
            .http
            .iter()
            .filter(|t| t.executor == HttpExecutor::Binder)
            .filter_map(|t| t.component.as_ref().map(ComponentId::as_str))
            .collect();
        // Components some CloudEvents trigger (a route or a broker) hands events to.
        let triggers = &manifest.triggers;
        let cloudevents: BTreeSet<&str> = triggers
            .http
            .iter()
            .filter(|t| t.executor == HttpExecutor::CloudEvents)
            .filter_map(|t| t.component.as_ref())
            .chain(triggers.nats.iter().map(|t| &t.component))
            .chain(triggers.mqtt.iter().map(|t| &t.component))
            .chain(triggers.amqp.iter().map(|t| &t.component))
            .chain(triggers.kafka.iter().map(|t| &t.component))
            .map(ComponentId::as_str)
            .collect();

        let addresses = options.addresses.clone().unwrap_or_else(|| {
            registry::Addresses::of_listeners(
                manifest.application.public_url.as_ref(),
                (std::net::SocketAddr::from(([127, 0, 0, 1], 3000)), false),
                (manifest.application.admin.listen, false),
            )
        });
        let catalog = registry::Catalog::load(manifest, &addresses.registry_base()).await?;
        let registry = Arc::new(registry::Registry::new(registry::document::build(
            manifest, &catalog, &addresses,
        )));

        let stores = crate::kv::open_stores(manifest, &options.state_dir)?;
        let mut components = HashMap::new();
        let mut http_handlers = HashMap::new();
        let mut configs = HashMap::new();
        for (id, component) in &manifest.components {
            let id = id.as_str();
            let mut config = component_config(component)?;
            config.key_value = crate::kv::grants_for(component, &stores);
            // A component behind a wasi-http route only is a plain HTTP component; every other
            // component (a CloudEvents route, a broker trigger, a subscriber) is a handler.
            if raw_http.contains(id) {
                let handler = engine.load_http(
                    id,
                    ComponentSource::Path(component.source.clone()),
                    config.clone(),
                )?;
                http_handlers.insert(id.to_owned(), Arc::new(WasmHttp::new(handler)));
            }
            if bound.contains(id) {
                configs.insert(id.to_owned(), config.clone());
            }
            if !raw_http.contains(id) || cloudevents.contains(id) {
                let handler =
                    engine.load(id, ComponentSource::Path(component.source.clone()), config)?;
                components.insert(
                    id.to_owned(),
                    ComponentEntry {
                        handler: crate::contract::enforce(
                            Arc::new(WasmHandler::new(handler)),
                            catalog.contract(id),
                        ),
                        outputs: Arc::new(component.outputs.keys().cloned().collect()),
                        max_concurrency: component.limits.max_concurrency,
                    },
                );
            }
            tracing::info!(component = id, source = %component.source.display(), "loaded");
        }

        let subscribers = ComponentSinkFactory::new(components.keys().cloned().collect());
        let webhooks = Arc::new(outputs::http_sinks(manifest, egress.clone())?);
        let brokers = Arc::new(outputs::broker_sinks(manifest, egress.clone())?);
        let mut sinks = SinkRegistry::with_factories(webhooks, brokers);
        sinks.register(subscriber::SCHEME, Arc::new(subscribers.clone()));
        let cluster = manifest.application.cluster.as_ref().map(|c| {
            delivery::ClusterConfig::new(c.nats.clone(), &manifest.application.name, c.replicas)
        });
        let delivery = Arc::new(Delivery::open_with(&options.state_dir, sinks, cluster).await?);
        delivery.set_max_hops(manifest.application.max_hops);
        delivery.set_limits(manifest.application.store);
        outputs::set_up(&delivery, manifest).await?;
        let dispatcher = Dispatcher::new(components, Router::new(delivery.clone()));
        subscribers.set_dispatcher(dispatcher.clone());

        let mut routes = Vec::new();
        let mut infos = Vec::new();
        // The queues keeping the routes' dedup windows (`dedup_window`).
        let mut trigger_queues = Vec::new();
        for (index, trigger) in manifest.triggers.http.iter().enumerate() {
            let component = trigger.component.as_ref().map(ComponentId::to_string);
            // The manifest allows a window only on a cloudevents route with a component.
            let dedup = match (trigger.dedup_window, &component) {
                (Some(window), Some(component)) => {
                    let id = delivery::SubscriptionId::route(index);
                    trigger_queues.push(brokers::TriggerQueue {
                        id: id.clone(),
                        component: component.clone(),
                        dedup_window: Some(window),
                        label: format!("http {}", trigger.route),
                    });
                    Some(id)
                }
                _ => None,
            };
            let outputs_of = |id: &str| -> Arc<BTreeSet<String>> {
                Arc::new(
                    manifest
                        .components
                        .get(id)
                        .map(|c| c.outputs.keys().cloned().collect())
                        .unwrap_or_default(),
                )
            };
            let (target, executor) = match (trigger.executor, &component) {
                (HttpExecutor::WasiHttp, Some(component)) => {
                    let handler = http_handlers[component.as_str()].clone();
                    (
                        RouteTarget::WasiHttp {
                            component: component.clone(),
                            handler,
                            outputs: outputs_of(component),
                        },
                        "wasi-http",
                    )
                }
                (HttpExecutor::Binder, Some(component)) => {
                    let source = manifest.components[component.as_str()].source.clone();
                    let handler = load_binder(
                        &engine,
                        component,
                        source,
                        trigger.binder.as_ref(),
                        configs[component.as_str()].clone(),
                    )?;
                    (
                        RouteTarget::WasiHttp {
                            component: component.clone(),
                            handler,
                            outputs: outputs_of(component),
                        },
                        "binder",
                    )
                }
                _ => (
                    RouteTarget::CloudEvents {
                        component: component.clone(),
                        dedup,
                    },
                    "cloudevents",
                ),
            };
            infos.push(RouteInfo {
                route: trigger.route.to_string(),
                component,
                executor,
            });
            routes.push(HttpRoute {
                route: trigger.route.clone(),
                target,
            });
        }

        let ingress = &manifest.application.http;
        let auth_token = match &ingress.auth_token {
            Some(secret) => Some(http_server::BearerToken::new(&secret.resolve().map_err(
                |e| AppError::Config(format!("[application.http] auth_token: {e}")),
            )?)),
            None => None,
        };
        let config = HttpConfig {
            max_body_size: usize::try_from(ingress.max_body_size.bytes()).unwrap_or(usize::MAX),
            webhook: WebhookConfig {
                allowed_origins: ingress.allowed_origins.clone(),
                allowed_rate: ingress.allowed_rate,
                auth_token,
                egress: egress.clone(),
            },
            limits: ingress.limits,
            tls: match &ingress.tls {
                Some(files) => Some(
                    http_server::Tls::load(files.clone())
                        .map_err(|e| AppError::Config(format!("[application.http] tls: {e}")))?,
                ),
                None => None,
            },
        };
        let remote =
            crate::remote::RemoteSubscriptions::prepare(manifest, &addresses.http, client.clone())?;
        let http = Arc::new(HttpTrigger::new(routes, dispatcher.clone(), config, client));

        let broker_triggers = brokers::connect(manifest).await?;
        trigger_queues.extend(broker_triggers.iter().map(brokers::TriggerQueue::from));
        brokers::set_up_trigger_queues(&delivery, &trigger_queues).await?;
        let brokers = broker_triggers
            .iter()
            .map(|t| RouteInfo {
                route: t.label.clone(),
                component: Some(t.component.clone()),
                executor: "cloudevents",
            })
            .collect();
        Ok(App {
            name: manifest.application.name.clone(),
            routes: infos,
            brokers,
            broker_triggers,
            http,
            dispatcher,
            delivery,
            registry,
            remote,
        })
    }

    /// The app's xRegistry document (endpoints, message definitions, schemas), for the admin
    /// API to serve.
    pub fn registry(&self) -> &Arc<registry::Registry> {
        &self.registry
    }

    /// `https` when the HTTP trigger serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.http.is_tls() { "https" } else { "http" }
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The HTTP routes, in manifest order.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// The broker triggers, in manifest order (NATS, MQTT, AMQP, Kafka).
    pub fn broker_triggers(&self) -> &[RouteInfo] {
        &self.brokers
    }

    /// The dispatcher, for embedders feeding events from elsewhere.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The app's own readiness checks, for `/readyz` beside the delivery engine's: each broker
    /// trigger's loop is running and, where its client tells (NATS), connected.
    pub fn readiness(
        &self,
    ) -> impl Fn() -> Vec<(String, Result<(), String>)> + Send + Sync + 'static {
        type Probe = (
            String,
            Arc<std::sync::atomic::AtomicBool>,
            Option<transports::ConnectionProbe>,
        );
        let triggers: Vec<Probe> = self
            .broker_triggers
            .iter()
            .map(|t| (t.label.clone(), t.running(), t.connection()))
            .collect();
        move || {
            triggers
                .iter()
                .map(|(label, running, connection)| {
                    let state = if !running.load(std::sync::atomic::Ordering::Relaxed) {
                        Err("its receiver stopped".to_owned())
                    } else {
                        connection.as_ref().map_or(Ok(()), |probe| probe())
                    };
                    (format!("trigger {label}"), state)
                })
                .collect()
        }
    }

    /// The delivery engine: subscriptions, outbox, dead letters. The admin API serves it.
    pub fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }

    /// Runs the broker triggers and serves HTTP until `shutdown` resolves; then stops
    /// taking events, finishes those in flight, and stops the delivery workers (whatever
    /// they had not delivered yet stays queued for the next start).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let mut brokers = tokio::task::JoinSet::new();
        for trigger in self.broker_triggers {
            brokers.spawn(trigger.run(
                self.dispatcher.clone(),
                self.delivery.clone(),
                stopped.clone(),
            ));
        }
        // Subscriptions elsewhere are made once the listener takes their events, and
        // withdrawn before it stops.
        let remote = self.remote.start();
        let shutdown = async move {
            shutdown.await;
            remote.stop().await;
        };
        let result = self.http.clone().serve(listener, shutdown).await;
        let _ = stop.send(true);
        while brokers.join_next().await.is_some() {}
        self.delivery.stop().await;
        result
    }
}

/// The most instance slots the engine's pool is sized for. Each slot reserves (not commits)
/// address space for two linear memories of up to 4 GiB, so 2048 slots stay far inside a
/// 47-bit address space.
const MAX_POOL_SIZE: u32 = 2048;

/// The engine sized for the manifest's components: a pool slot for every instance their
/// `max_concurrency` caps allow (so no component is refused because others hold the slots),
/// and slots large enough for the largest `memory` any of them may use. Whatever memory or
/// concurrency the manifest accepts, the engine can then give.
pub fn engine_config(manifest: &Manifest, state_dir: &std::path::Path) -> EngineConfig {
    let defaults = EngineConfig::default();
    let wanted: u64 = manifest
        .components
        .values()
        .map(|c| u64::from(c.limits.max_concurrency))
        .sum();
    let pool_size = u32::try_from(wanted)
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_POOL_SIZE);
    if wanted > u64::from(MAX_POOL_SIZE) {
        tracing::warn!(
            wanted,
            pool = MAX_POOL_SIZE,
            "the components' max_concurrency add up to more instances than the engine pools; \
             they share {MAX_POOL_SIZE} slots, and an event finding none free is refused as busy"
        );
    }
    let max_memory_bytes = manifest
        .components
        .values()
        .map(|c| c.limits.memory.bytes())
        .fold(defaults.max_memory_bytes, u64::max);
    EngineConfig {
        egress: Arc::new(manifest.application.egress.clone()),
        pool_size,
        max_memory_bytes,
        ..defaults
    }
    .with_cache_dir(state_dir.join("cache"))
}

/// Loads `component` linked to its route's binder (a stock one, or a component file).
fn load_binder(
    engine: &Engine,
    component: &str,
    source: std::path::PathBuf,
    binder: Option<&manifest::Binder>,
    config: ComponentConfig,
) -> Result<Arc<dyn crate::http::RawHttpHandler>, AppError> {
    // The manifest gives every binder route a binder (the stock `http` one by default).
    let binder = binder
        .cloned()
        .unwrap_or(manifest::Binder::Stock(manifest::StockBinder::Http));
    let binder = match binder {
        manifest::Binder::Path(path) => ComponentSource::Path(path),
        manifest::Binder::Stock(stock) => ComponentSource::Bytes(
            binders::stock(stock)
                .map_err(|e| {
                    AppError::Config(format!("the binder route of component `{component}`: {e}"))
                })?
                .to_vec(),
        ),
    };
    let handler = engine.load_binder(component, binder, ComponentSource::Path(source), config)?;
    Ok(Arc::new(WasmHttp::new(handler)))
}

/// The engine's view of a component's manifest entry: limits, grants, variables (read now
/// from the environment or files where the manifest says so), outputs.
pub fn component_config(component: &Component) -> Result<ComponentConfig, AppError> {
    let mut variables = std::collections::BTreeMap::new();
    for (name, value) in &component.variables {
        let value = value.resolve().map_err(|e| {
            AppError::Config(format!(
                "[component.{}.variables] {name}: {e}",
                component.id.as_str()
            ))
        })?;
        variables.insert(name.clone(), value);
    }
    Ok(ComponentConfig {
        limits: Limits {
            deadline: component.limits.timeout,
            max_memory_bytes: component.limits.memory.bytes(),
            max_concurrency: component.limits.max_concurrency,
        },
        grants: Grants {
            dirs: component
                .files
                .iter()
                .map(|f| DirGrant {
                    host: f.source.clone(),
                    guest: f.destination.clone(),
                })
                .collect(),
            env: component
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            outbound_hosts: component.allowed_outbound_hosts.clone(),
        },
        variables,
        outputs: component.outputs.keys().cloned().collect(),
        // Opened stores are added by the caller; see `crate::kv`.
        key_value: Default::default(),
    })
}
