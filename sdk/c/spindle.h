/*
 * spindle.h: write Spindle CloudEvents handlers in C.
 *
 * The bindings underneath (`handler.h`, `handler.c`, `handler_component_type.o`) are
 * generated from wit/ by `wit-bindgen c wit --world handler`; this header only adds an
 * idiomatic layer over their structs: building events and strings, JSON data, results,
 * typed errors, publishing, variables and logs. A handler implements
 *
 *     bool spindle_handle(const spindle_event_t *event, spindle_results_t *results,
 *                         spindle_error_t *error);
 *
 * returning true with zero or more events pushed to `results`, or false after
 * `spindle_fail_transient` / `spindle_fail_permanent` filled `error`.
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#include <stdbool.h>
#include <stddef.h>

#include "handler.h"

typedef handler_event_t spindle_event_t;
typedef handler_list_event_t spindle_results_t;
typedef handler_handler_error_t spindle_error_t;

/* What the handler implements (see above). */
bool spindle_handle(const spindle_event_t *event, spindle_results_t *results, spindle_error_t *error);

/* A new event of type `type` from `source`, spec version 1.0, with a random id. */
spindle_event_t spindle_event_new(const char *type, const char *source);
/* A deep copy of `event` (to return or publish a changed copy of the input). */
spindle_event_t spindle_event_clone(const spindle_event_t *event);
/* Frees an event that was not handed over (to spindle_results_push). */
void spindle_event_free(spindle_event_t *event);
/* Replaces the event's type / subject / id. */
void spindle_event_set_type(spindle_event_t *event, const char *type);
void spindle_event_set_subject(spindle_event_t *event, const char *subject);
void spindle_event_set_id(spindle_event_t *event, const char *id);
/* Sets the data (copied) and its media type. */
void spindle_event_set_data(spindle_event_t *event, const char *content_type, const void *data, size_t len);
/* Sets JSON text as the data (`application/json`). */
void spindle_event_set_json(spindle_event_t *event, const char *json);
/* The data as a NUL-terminated string (malloc'd; free it), or NULL without data. */
char *spindle_event_text(const spindle_event_t *event);
/* The string member `key` of the JSON object in the data (malloc'd; free it), or NULL when
 * the data is not a JSON object with that string member. A small reader, not a JSON library:
 * top-level members only, with the common escapes. */
char *spindle_event_json_string(const spindle_event_t *event, const char *key);
/* The type of the event as a NUL-terminated string (malloc'd; free it). */
char *spindle_event_type(const spindle_event_t *event);
/* Whether the event's type is `type`. */
bool spindle_event_type_is(const spindle_event_t *event, const char *type);

/* Appends `event` to the results (taking it over). */
void spindle_results_push(spindle_results_t *results, spindle_event_t event);

/* Fill `error` and return false: a retry may succeed (HTTP 503 + Retry-After) ... */
bool spindle_fail_transient(spindle_error_t *error, const char *message);
/* ... or the event can never succeed (HTTP 422, a dead letter). */
bool spindle_fail_permanent(spindle_error_t *error, const char *message);

/* Sends `event` to the output `output` of spindle.toml; on refusal returns false and, when
 * `why` is not NULL, a malloc'd reason in `*why`. The event stays the caller's. */
bool spindle_publish(const char *output, const spindle_event_t *event, char **why);
/* The variable `name` (malloc'd; free it), or NULL when it is not set. */
char *spindle_config_get(const char *name);
/* Logs `message` at info / warn level, tagged with the component. */
void spindle_log_info(const char *message);
void spindle_log_warn(const char *message);

#endif
