"""A protocol binder written in Python: plain JSON webhooks in, CloudEvents handlers out.

Many services post bare JSON with the event's kind in a header rather than CloudEvents. This
binder (world `spindle:cloudevents/binder-http`) turns such a request into a CloudEvent for the
linked handler and the handler's first result back into a plain JSON answer:

    POST /anything                       ->  event  id     = X-Request-Id (or a fresh UUID)
    X-Event-Type: com.example.thing             type   = X-Event-Type
    X-Request-Id: 42                            source = /webhooks/anything
    {"json": "body"}                            data   = the body (application/json)

    200, X-Event-Type/X-Event-Id of the result, its data as the body; 204 with no result;
    400 without X-Event-Type; 405 for other methods; 422 / 503 + Retry-After for the
    handler's permanent / transient errors.

Build: componentize-py -d ../../wit -w binder-http componentize app -o python-binder.wasm
"""

import uuid

from componentize_py_types import Err, Ok
from wit_world import exports, handle
from wit_world.imports import spindle_cloudevents_types as ce
from wit_world.imports import streams
from wit_world.imports import wasi_http_types as http

CHUNK = 4096


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: http.IncomingRequest, response_out: http.ResponseOutparam) -> None:
        headers = {name.lower(): value.decode("utf-8", "replace") for name, value in request.headers().entries()}
        if not isinstance(request.method(), http.Method_Post):
            return respond(response_out, 405, b"plain JSON webhooks are POSTed", [("allow", b"POST")])
        kind = headers.get("x-event-type")
        if not kind:
            return respond(response_out, 400, b"the X-Event-Type header names the event's type")
        path = (request.path_with_query() or "/").split("?")[0]
        body = read_body(request)
        event = ce.Event(
            id=headers.get("x-request-id") or str(uuid.uuid4()),
            source="/webhooks" + path,
            specversion="1.0",
            type=kind,
            datacontenttype="application/json" if body else None,
            dataschema=None,
            subject=None,
            time=None,
            extensions=[],
            data=body or None,
        )
        try:
            results = handle(event)
        except Err as error:
            failure: ce.HandlerError = error.value
            if failure.kind == ce.ErrorKind.TRANSIENT:
                return respond(response_out, 503, failure.message.encode(), [("retry-after", b"5")])
            return respond(response_out, 422, failure.message.encode())
        if not results:
            return respond(response_out, 204, b"")
        first = results[0]
        extra = [("x-event-type", first.type.encode()), ("x-event-id", first.id.encode())]
        if first.datacontenttype:
            extra.append(("content-type", first.datacontenttype.encode()))
        respond(response_out, 200, first.data or b"", extra)


def read_body(request: http.IncomingRequest) -> bytes:
    incoming = request.consume()
    stream = incoming.stream()
    data = bytearray()
    while True:
        try:
            data.extend(stream.blocking_read(65536))
        except Err as error:
            if isinstance(error.value, streams.StreamError_Closed):
                break
            raise
    stream.__exit__(None, None, None)
    http.IncomingBody.finish(incoming)
    return bytes(data)


def respond(out: http.ResponseOutparam, status: int, body: bytes, headers=()) -> None:
    response = http.OutgoingResponse(http.Fields.from_list(list(headers)))
    response.set_status_code(status)
    outgoing = response.body()
    http.ResponseOutparam.set(out, Ok(response))
    stream = outgoing.write()
    for start in range(0, len(body), CHUNK):
        stream.blocking_write_and_flush(body[start : start + CHUNK])
    stream.__exit__(None, None, None)
    http.OutgoingBody.finish(outgoing, None)
