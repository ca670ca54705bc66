//! Log output for long-running commands: `RUST_LOG` decides what (`info` by default), the
//! `--log-format` flag how: human-readable text (coloured only on a terminal, so a log file or
//! a collector gets no escape codes) or one JSON object per line for log pipelines.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `span`, `spans`).
    Json,
}

/// Installs the log subscriber once; later calls do nothing.
pub fn init(format: LogFormat) {
    let _ = init_with_traces(format, None);
}

/// [`init`], plus trace export to `otlp` (see [`runtime::telemetry::endpoint`]) as service
/// `service` when given: every event's `event` and `deliver` spans go to the collector,
/// whatever `RUST_LOG` keeps for the log.
pub fn init_with_traces(
    format: LogFormat,
    otlp: Option<(Option<String>, &str)>,
) -> anyhow::Result<Option<runtime::telemetry::Telemetry>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let telemetry = match otlp {
        Some((endpoint, service)) => Some(runtime::telemetry::Telemetry::start(endpoint, service)?),
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init();
    Ok(telemetry)
}
