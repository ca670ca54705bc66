//! A plain `wasi:http/incoming-handler` component (no Spindle SDK), for the engine's HTTP
//! executor: answers `hello <path>` with the request body's length, or misbehaves on demand.

use std::hint::black_box;
use std::io::{Read as _, Write as _};
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Hello);

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match path.as_str() {
            "/panic" => panic!("boom"),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            _ => {}
        }
        let mut body = Vec::new();
        if let Ok(incoming) = request.consume() {
            if let Ok(mut stream) = incoming.stream() {
                let _ = stream.read_to_end(&mut body);
            }
            IncomingBody::finish(incoming);
        }
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(200).expect("valid status");
        let out = response.body().expect("body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut stream = out.write().expect("stream");
        write!(stream, "hello {path} ({} bytes)", body.len()).expect("write");
        stream.flush().expect("flush");
        drop(stream);
        OutgoingBody::finish(out, None).expect("finish");
    }
}
