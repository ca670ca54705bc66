/*
 * {{name}}: a Spindle CloudEvents handler in C.
 *
 * Build with `spindle build` (make: wit-bindgen generates the bindings into gen/, clang
 * compiles for wasm32-wasi and wasm-component-ld makes the component) and run with
 * `spindle up`. Send it an event with e.g.
 * curl -X POST localhost:3000/ -H 'ce-id: 1' -H 'ce-source: /me' -H 'ce-type: com.example.greet' -H 'ce-specversion: 1.0' -H 'content-type: application/json' -d '{"name":"ada"}'
 */
#include <stdio.h>
#include <stdlib.h>

#include "spindle.h"

/* Answers every `com.example.greet` event with a `com.example.greeting`; ignores others. */
bool spindle_handle(const spindle_event_t *event, spindle_results_t *results, spindle_error_t *error) {
    if (!spindle_event_type_is(event, "com.example.greet")) return true;
    char *name = spindle_event_json_string(event, "name");
    if (!name) return spindle_fail_permanent(error, "a greet event needs a `name`");
    spindle_log_info("greeting");
    char json[512];
    snprintf(json, sizeof json, "{\"message\":\"Hello, %s!\"}", name);
    free(name);
    spindle_event_t reply = spindle_event_new("com.example.greeting", "/{{name}}");
    spindle_event_set_json(&reply, json);
    spindle_results_push(results, reply);
    return true;
}
