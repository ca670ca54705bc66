//! A plain `wasi:http` component (no Spindle SDK): an exchange-rate service answering
//! `GET /rates/<CURRENCY>` with the rate to EUR as text. The `orders` handler calls it over
//! outbound HTTP, granted in `spindle.toml`; it stands in for any external HTTP(S) service.

use std::io::Write as _;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasi::http::proxy::export!(Rates);

struct Rates;

impl wasi::exports::http::incoming_handler::Guest for Rates {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let currency = path.rsplit('/').next().unwrap_or_default().to_ascii_uppercase();
        let (status, body) = match currency.as_str() {
            "EUR" => (200, "1.00"),
            "USD" => (200, "0.92"),
            "GBP" => (200, "1.17"),
            _ => (404, "unknown currency"),
        };
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(status).expect("a valid status");
        let out = response.body().expect("the body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut stream = out.write().expect("the body stream");
        stream.write_all(body.as_bytes()).expect("write");
        stream.flush().expect("flush");
        drop(stream);
        OutgoingBody::finish(out, None).expect("finish");
    }
}
