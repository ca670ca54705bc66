//! The transports' registry is the one owner of what a sink URI may be: every scheme a
//! registered transport declares is accepted by the manifest as an output, becomes a
//! delivery queue the delivery engine can build a sink for, and is a scheme the
//! Subscriptions API accepts for the transport's protocols; a scheme no transport declares
//! is refused by all of them alike.

use delivery::{Protocol, SinkRegistry, Subscription};
use manifest::Manifest;
use transports::registry::TRANSPORTS;
use url::Url;

/// A manifest with one component whose only output is `uri`.
fn manifest_with_output(uri: &str) -> Result<Manifest, manifest::ManifestError> {
    let text = format!(
        r#"
spindle_manifest_version = 1
[application]
name = "registry-seam"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
[component.c.outputs]
out = {{ uri = "{uri}", mode = "structured" }}
"#
    );
    Manifest::from_str(&text, ".")
}

/// The transport's example sink with `scheme` instead of its plain one and no port, so
/// that the scheme's default port applies.
fn example_with_scheme(example: &str, scheme: &str) -> String {
    let url = Url::parse(example).expect("an example sink is a URL");
    let host = url.host_str().expect("an example sink has a host");
    format!("{scheme}://{host}{}", &url[url::Position::BeforePath..])
}

#[test]
fn every_registered_scheme_runs_from_the_manifest_to_a_sink() {
    let sinks = SinkRegistry::with_defaults();
    let mut checked = 0;
    for transport in TRANSPORTS {
        for scheme in transport.schemes() {
            let uri = example_with_scheme(transport.example_sink(), scheme.name);
            let manifest = manifest_with_output(&uri)
                .unwrap_or_else(|e| panic!("the manifest refuses {uri}: {e}"));
            let output = &manifest.components["c"].outputs["out"];
            assert_eq!(
                output.sink.endpoint().map(|e| (e.is_tls(), e.port)),
                Some((scheme.tls, scheme.default_port)),
                "{uri}: TLS and default port come from the registry"
            );
            let queue = runtime::outputs::subscription("c", "out", output);
            assert_eq!(queue.protocol.api_name(), output.sink.api_protocol());
            assert!(
                queue.protocol.sink_schemes().contains(&scheme.name),
                "the API accepts {} for protocol {}",
                scheme.name,
                queue.protocol.api_name()
            );
            sinks
                .create(&queue)
                .unwrap_or_else(|e| panic!("no sink for {uri}, which the manifest took: {e}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "every scheme of the four broker transports");
}

#[test]
fn every_api_protocol_of_a_transport_builds_a_sink_with_its_destination_in_settings() {
    let sinks = SinkRegistry::with_defaults();
    for transport in TRANSPORTS {
        for protocol in transport.api_protocols() {
            let protocol = Protocol::from_api_name(protocol).expect("an API protocol");
            let sink: manifest::Sink = transport
                .example_sink()
                .parse()
                .expect("the example parses");
            let destination = transport.destination(&sink).to_owned();
            let scheme = transport.schemes()[0].name;
            let mut sub = Subscription::new("s", protocol, format!("{scheme}://127.0.0.1"));
            sub.protocolsettings = Some(serde_json::json!({
                transport.destination_setting(): destination
            }));
            let built = sinks.create(&sub);
            assert!(
                built.is_ok(),
                "{} with protocolsettings.{} = {destination:?}: {:?}",
                protocol.api_name(),
                transport.destination_setting(),
                built.err()
            );
        }
    }
}

#[test]
fn a_scheme_no_transport_declares_is_refused_by_the_manifest_and_the_api_alike() {
    for uri in ["ws://127.0.0.1:8080/mqtt", "redis://127.0.0.1/orders"] {
        let scheme = uri.split(':').next().unwrap();
        let error = manifest_with_output(uri).expect_err(uri).to_string();
        assert!(error.contains("unsupported scheme"), "{error}");
        for protocol in [
            Protocol::Http,
            Protocol::Mqtt3,
            Protocol::Mqtt5,
            Protocol::Amqp,
            Protocol::Nats,
            Protocol::Kafka,
        ] {
            assert!(!protocol.sink_schemes().contains(&scheme), "{protocol:?}");
        }
    }
}
