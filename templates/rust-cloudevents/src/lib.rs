//! {{name}}: a Spindle CloudEvents handler.
//!
//! Build with `spindle build` (or `cargo build --target wasm32-wasip2 --release`) and run with
//! `spindle up`. Send it an event with e.g.
//! `curl -X POST localhost:3000/ -H 'ce-id: 1' -H 'ce-source: /me' -H 'ce-type: com.example.greet' -H 'ce-specversion: 1.0' -H 'content-type: application/json' -d '{"name":"ada"}'`.

use serde::{Deserialize, Serialize};
use spindle_sdk::{Event, Result, cloudevents_component};

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

/// Answers every `com.example.greet` event with a `com.example.greeting`; ignores others.
#[cloudevents_component]
fn handle(event: Event) -> Result<Option<Event>> {
    if event.ty() != "com.example.greet" {
        return Ok(None);
    }
    let greet: Greet = event.json()?;
    spindle_sdk::log::info("greeting", &[("name", &greet.name)]);
    let reply = Event::new("com.example.greeting", "/{{name}}").with_json(&Greeting {
        message: format!("Hello, {}!", greet.name),
    })?;
    Ok(Some(reply))
}
