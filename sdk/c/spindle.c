/* spindle.c: the layer of spindle.h over the wit-bindgen C bindings (see spindle.h). */

#include "spindle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static handler_string_t str(const char *s) {
    handler_string_t out;
    handler_string_dup(&out, s);
    return out;
}

static handler_string_t str_n(const void *s, size_t len) {
    handler_string_t out;
    handler_string_dup_n(&out, (const char *)s, len);
    return out;
}

static char *cstr(const handler_string_t *s) {
    char *out = malloc(s->len + 1);
    memcpy(out, s->ptr, s->len);
    out[s->len] = 0;
    return out;
}

static handler_option_string_t some(const handler_string_t *s) {
    handler_option_string_t out = {.is_some = true, .val = str_n(s->ptr, s->len)};
    return out;
}

static void random_id(char out[37]) {
    uint8_t b[16];
    if (getentropy(b, sizeof b) != 0) memset(b, 0, sizeof b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

spindle_event_t spindle_event_new(const char *type, const char *source) {
    char id[37];
    random_id(id);
    spindle_event_t e;
    memset(&e, 0, sizeof e);
    e.id = str(id);
    e.source = str(source);
    e.specversion = str("1.0");
    e.type = str(type);
    return e;
}

spindle_event_t spindle_event_clone(const spindle_event_t *event) {
    spindle_event_t e;
    memset(&e, 0, sizeof e);
    e.id = str_n(event->id.ptr, event->id.len);
    e.source = str_n(event->source.ptr, event->source.len);
    e.specversion = str_n(event->specversion.ptr, event->specversion.len);
    e.type = str_n(event->type.ptr, event->type.len);
    if (event->datacontenttype.is_some) e.datacontenttype = some(&event->datacontenttype.val);
    if (event->dataschema.is_some) e.dataschema = some(&event->dataschema.val);
    if (event->subject.is_some) e.subject = some(&event->subject.val);
    if (event->time.is_some) e.time = some(&event->time.val);
    size_t n = event->extensions.len;
    if (n > 0) {
        e.extensions.ptr = calloc(n, sizeof *e.extensions.ptr);
        e.extensions.len = n;
        for (size_t i = 0; i < n; i++) {
            const spindle_cloudevents_types_tuple2_string_attribute_value_t *from = &event->extensions.ptr[i];
            spindle_cloudevents_types_tuple2_string_attribute_value_t *to = &e.extensions.ptr[i];
            to->f0 = str_n(from->f0.ptr, from->f0.len);
            to->f1.tag = from->f1.tag;
            switch (from->f1.tag) {
            case SPINDLE_CLOUDEVENTS_TYPES_ATTRIBUTE_VALUE_BOOLEAN:
                to->f1.val.boolean = from->f1.val.boolean;
                break;
            case SPINDLE_CLOUDEVENTS_TYPES_ATTRIBUTE_VALUE_INTEGER:
                to->f1.val.integer = from->f1.val.integer;
                break;
            case SPINDLE_CLOUDEVENTS_TYPES_ATTRIBUTE_VALUE_BINARY:
                to->f1.val.binary.ptr = malloc(from->f1.val.binary.len ? from->f1.val.binary.len : 1);
                memcpy(to->f1.val.binary.ptr, from->f1.val.binary.ptr, from->f1.val.binary.len);
                to->f1.val.binary.len = from->f1.val.binary.len;
                break;
            default: /* string, uri, uri-ref and timestamp share the string layout */
                to->f1.val.string = str_n(from->f1.val.string.ptr, from->f1.val.string.len);
            }
        }
    }
    if (event->data.is_some) {
        e.data.is_some = true;
        e.data.val.len = event->data.val.len;
        e.data.val.ptr = malloc(e.data.val.len ? e.data.val.len : 1);
        memcpy(e.data.val.ptr, event->data.val.ptr, e.data.val.len);
    }
    return e;
}

void spindle_event_free(spindle_event_t *event) { handler_event_free(event); }

static void replace(handler_string_t *field, const char *value) {
    handler_string_free(field);
    *field = str(value);
}

void spindle_event_set_type(spindle_event_t *event, const char *type) { replace(&event->type, type); }

void spindle_event_set_id(spindle_event_t *event, const char *id) { replace(&event->id, id); }

void spindle_event_set_subject(spindle_event_t *event, const char *subject) {
    handler_option_string_free(&event->subject);
    event->subject.is_some = true;
    event->subject.val = str(subject);
}

void spindle_event_set_data(spindle_event_t *event, const char *content_type, const void *data, size_t len) {
    handler_option_string_free(&event->datacontenttype);
    event->datacontenttype.is_some = true;
    event->datacontenttype.val = str(content_type);
    handler_option_list_u8_free(&event->data);
    event->data.is_some = true;
    event->data.val.ptr = malloc(len ? len : 1);
    memcpy(event->data.val.ptr, data, len);
    event->data.val.len = len;
}

void spindle_event_set_json(spindle_event_t *event, const char *json) {
    spindle_event_set_data(event, "application/json", json, strlen(json));
}

char *spindle_event_text(const spindle_event_t *event) {
    if (!event->data.is_some) return NULL;
    handler_string_t s = {.ptr = event->data.val.ptr, .len = event->data.val.len};
    return cstr(&s);
}

char *spindle_event_type(const spindle_event_t *event) { return cstr(&event->type); }

bool spindle_event_type_is(const spindle_event_t *event, const char *type) {
    size_t n = strlen(type);
    return event->type.len == n && memcmp(event->type.ptr, type, n) == 0;
}

/* The JSON reader behind spindle_event_json_string. */
typedef struct {
    const char *p, *end;
} cursor_t;

static void ws(cursor_t *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Reads a JSON string at the cursor; the decoded text (malloc'd) or NULL. */
static char *json_string(cursor_t *c) {
    if (c->p >= c->end || *c->p != '"') return NULL;
    c->p++;
    char *out = malloc((size_t)(c->end - c->p) + 1);
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\\' && c->p < c->end) {
            char esc = *c->p++;
            switch (esc) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': {
                unsigned code = 0;
                for (int i = 0; i < 4 && c->p < c->end; i++, c->p++) {
                    char h = *c->p;
                    code = code * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                if (code < 0x80) {
                    ch = (char)code;
                } else if (code < 0x800) {
                    out[n++] = (char)(0xc0 | (code >> 6));
                    ch = (char)(0x80 | (code & 0x3f));
                } else {
                    out[n++] = (char)(0xe0 | (code >> 12));
                    out[n++] = (char)(0x80 | ((code >> 6) & 0x3f));
                    ch = (char)(0x80 | (code & 0x3f));
                }
                break;
            }
            default: ch = esc; /* \" \\ \/ */
            }
        }
        out[n++] = ch;
    }
    if (c->p >= c->end) {
        free(out);
        return NULL;
    }
    c->p++; /* the closing quote */
    out[n] = 0;
    return out;
}

/* Skips one JSON value (strings, numbers, literals, nested objects and arrays). */
static bool skip_value(cursor_t *c) {
    ws(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') {
        char *s = json_string(c);
        bool ok = s != NULL;
        free(s);
        return ok;
    }
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            if (*c->p == '"') {
                char *s = json_string(c);
                if (!s) return false;
                free(s);
                continue;
            }
            if (*c->p == '{' || *c->p == '[') depth++;
            if (*c->p == '}' || *c->p == ']') depth--;
            c->p++;
            if (depth == 0) return true;
        }
        return false;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']') c->p++;
    return true;
}

char *spindle_event_json_string(const spindle_event_t *event, const char *key) {
    if (!event->data.is_some) return NULL;
    cursor_t c = {(const char *)event->data.val.ptr, (const char *)event->data.val.ptr + event->data.val.len};
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return NULL;
    c.p++;
    for (;;) {
        ws(&c);
        char *name = json_string(&c);
        if (!name) return NULL;
        ws(&c);
        if (c.p >= c.end || *c.p != ':') {
            free(name);
            return NULL;
        }
        c.p++;
        ws(&c);
        bool match = strcmp(name, key) == 0;
        free(name);
        if (match) return c.p < c.end && *c.p == '"' ? json_string(&c) : NULL;
        if (!skip_value(&c)) return NULL;
        ws(&c);
        if (c.p >= c.end || *c.p != ',') return NULL;
        c.p++;
    }
}

void spindle_results_push(spindle_results_t *results, spindle_event_t event) {
    results->ptr = realloc(results->ptr, (results->len + 1) * sizeof *results->ptr);
    results->ptr[results->len++] = event;
}

static bool fail(spindle_error_t *error, spindle_cloudevents_types_error_kind_t kind, const char *message) {
    error->kind = kind;
    error->message = str(message);
    return false;
}

bool spindle_fail_transient(spindle_error_t *error, const char *message) {
    return fail(error, SPINDLE_CLOUDEVENTS_TYPES_ERROR_KIND_TRANSIENT, message);
}

bool spindle_fail_permanent(spindle_error_t *error, const char *message) {
    return fail(error, SPINDLE_CLOUDEVENTS_TYPES_ERROR_KIND_PERMANENT, message);
}

bool spindle_publish(const char *output, const spindle_event_t *event, char **why) {
    handler_string_t name = str(output);
    spindle_event_t copy = spindle_event_clone(event);
    spindle_cloudevents_outbound_publish_error_t error;
    bool ok = spindle_cloudevents_outbound_publish(&name, &copy, &error);
    handler_string_free(&name);
    handler_event_free(&copy);
    if (!ok) {
        static const char *kinds[] = {"unknown output", "invalid event", "failed"};
        /* Every variant carries a string in the same place. */
        char *detail = cstr(&error.val.failed);
        if (why) {
            size_t len = strlen(detail) + 32;
            *why = malloc(len);
            snprintf(*why, len, "%s: %s", kinds[error.tag < 3 ? error.tag : 2], detail);
        }
        free(detail);
        spindle_cloudevents_outbound_publish_error_free(&error);
    }
    return ok;
}

char *spindle_config_get(const char *name) {
    handler_string_t key = str(name);
    handler_string_t value;
    bool found = spindle_cloudevents_config_get(&key, &value);
    handler_string_free(&key);
    if (!found) return NULL;
    char *out = cstr(&value);
    handler_string_free(&value);
    return out;
}

static void log_at(spindle_cloudevents_log_level_t level, const char *message) {
    handler_string_t text = str(message);
    handler_list_tuple2_string_string_t fields = {.ptr = NULL, .len = 0};
    spindle_cloudevents_log_log(level, &text, &fields);
    handler_string_free(&text);
}

void spindle_log_info(const char *message) { log_at(SPINDLE_CLOUDEVENTS_LOG_LEVEL_INFO, message); }

void spindle_log_warn(const char *message) { log_at(SPINDLE_CLOUDEVENTS_LOG_LEVEL_WARN, message); }

/* The export the bindings call: runs the user's handler, and on failure frees what it had
 * pushed (the bindings free the results of a success after returning them). */
bool exports_handler_handle(handler_event_t *event, handler_list_event_t *ret, handler_handler_error_t *err) {
    ret->ptr = NULL;
    ret->len = 0;
    bool ok = spindle_handle(event, ret, err);
    handler_event_free(event);
    if (!ok) {
        handler_list_event_free(ret);
        ret->ptr = NULL;
        ret->len = 0;
    }
    return ok;
}
