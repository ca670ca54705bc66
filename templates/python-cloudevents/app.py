"""{{name}}: a Spindle CloudEvents handler in Python.

Build with `spindle build` (componentize-py turns this module into a component) and run with
`spindle up`. Send it an event with e.g.
`curl -X POST localhost:3000/ -H 'ce-id: 1' -H 'ce-source: /me' -H 'ce-type: com.example.greet' -H 'ce-specversion: 1.0' -H 'content-type: application/json' -d '{"name":"ada"}'`.
"""

import spindle_sdk
from spindle_sdk import Event, PermanentError


def handle(event: Event):
    """Answers every `com.example.greet` event with a `com.example.greeting`; ignores others."""
    if event.type != "com.example.greet":
        return None
    name = event.json().get("name")
    if not name:
        raise PermanentError("a greet event needs a `name`")
    spindle_sdk.log.info("greeting", name=name)
    return Event("com.example.greeting", "/{{name}}").with_json({"message": f"Hello, {name}!"})


WitWorld = spindle_sdk.export(handle)
