//! Trace export: the spans of every event's handling and delivery (see `delivery::trace`),
//! sent over OTLP (HTTP/protobuf) to a collector when `[application.telemetry] otlp` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` names one. Off otherwise, at no cost on the hot path.

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP exporter: {0}")]
pub struct TelemetryError(String);

/// A running exporter; [`Telemetry::shutdown`] flushes what is still buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Where spans go: the manifest's endpoint (the collector's base URL, `/v1/traces` is added),
/// else `OTEL_EXPORTER_OTLP_ENDPOINT` (read by the exporter itself), else nowhere.
pub fn endpoint(configured: Option<&url::Url>) -> Option<Option<String>> {
    match configured {
        Some(url) => {
            let base = url.as_str().trim_end_matches('/');
            Some(Some(if base.ends_with("/v1/traces") {
                base.to_owned()
            } else {
                format!("{base}/v1/traces")
            }))
        }
        None => std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")
            .filter(|v| !v.is_empty())
            .map(|_| None),
    }
}

impl Telemetry {
    /// Starts exporting to `endpoint` (`None`: the environment's) as service `service`: from
    /// now on every event's handling and delivery attempts make spans
    /// ([`delivery::trace`]). Must run outside an async runtime (the exporter's HTTP client
    /// is a blocking one, on the batch processor's own thread).
    pub fn start(endpoint: Option<String>, service: &str) -> Result<Self, TelemetryError> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(std::time::Duration::from_secs(10));
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service.to_owned())
                    .build(),
            )
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        delivery::trace::install(Some(opentelemetry::global::tracer("spindle")));
        Ok(Telemetry { provider })
    }

    /// Flushes the buffered spans and stops the exporter.
    pub fn shutdown(self) {
        delivery::trace::install(None);
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: the OTLP exporter did not shut down cleanly: {error}");
        }
    }
}
