//! Serves the admin API over a fresh delivery engine, for tools that test it from outside
//! (schemathesis): `cargo run -p spindle-api --example serve -- STATE_DIR [PORT] [TOKEN]`.
//! Prints `listening on http://ADDR` once it accepts connections; stops on Ctrl-C.

use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let state_dir = args.next().ok_or("usage: serve STATE_DIR [PORT] [TOKEN]")?;
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let token = args.next();
    let engine = Arc::new(
        delivery::Delivery::open(&state_dir, delivery::SinkRegistry::with_defaults()).await?,
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let api = api::AdminApi::new(
        engine.clone(),
        api::AdminConfig {
            token: token.as_deref().map(http_server::BearerToken::new),
            ..api::AdminConfig::default()
        },
    );
    api.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    if let Ok(engine) = Arc::try_unwrap(engine) {
        engine.shutdown().await;
    }
    Ok(())
}
