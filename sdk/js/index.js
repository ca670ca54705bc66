// Write Spindle CloudEvents handlers in JavaScript.
//
// A handler is one function from an `Event` to the events it produces; `handler(fn)` wraps it
// as the `handle` export of the `spindle:cloudevents/handler` world, which componentize-js
// (npm: @bytecodealliance/componentize-js) builds into a component. The host imports below are
// bound by componentize-js from wit/ at build time: nothing here is a hand-written binding,
// only the conversions to an idiomatic event.

import { publish as witPublish } from 'spindle:cloudevents/outbound@0.1.0';
import { get as witGet } from 'spindle:cloudevents/config@0.1.0';
import { log as witLog } from 'spindle:cloudevents/log@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An extension value of the CloudEvents type URI (a plain string is a String). */
export class Uri extends String {}
/** An extension value of the CloudEvents type URI-reference. */
export class UriRef extends String {}
/** An extension value of the CloudEvents type Timestamp (RFC 3339 text). */
export class Timestamp extends String {}

function randomId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const CORE = ['id', 'source', 'specversion', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data'];

/**
 * One CloudEvent: context attributes as properties, extensions in `extensions` (a Map), data
 * as bytes. Events are values: the `with*` methods and `replace` return changed copies.
 */
export class Event {
  constructor(type, source, { id, data, datacontenttype, dataschema, subject, time, extensions } = {}) {
    this.id = id ?? randomId();
    this.source = source;
    this.specversion = '1.0';
    this.type = type;
    this.datacontenttype = datacontenttype;
    this.dataschema = dataschema;
    this.subject = subject;
    this.time = time;
    this.data = typeof data === 'string' ? encoder.encode(data) : data;
    this.extensions = new Map(extensions ? Object.entries(extensions instanceof Map ? Object.fromEntries(extensions) : extensions) : []);
  }

  /** The data parsed as JSON; a `PermanentError` when it is not JSON. */
  json() {
    try {
      return JSON.parse(this.text() || 'null');
    } catch (error) {
      throw new PermanentError(`event ${this.id}: data is not JSON: ${error.message}`);
    }
  }

  /** The data as UTF-8 text (empty without data). */
  text() {
    return this.data ? decoder.decode(this.data) : '';
  }

  /** A copy carrying `value` as JSON data (`application/json`). */
  withJson(value) {
    return this.replace({ data: encoder.encode(JSON.stringify(value)), datacontenttype: 'application/json' });
  }

  /** A copy carrying `data` (bytes or text) of the media type `contentType`. */
  withData(contentType, data) {
    return this.replace({ data: typeof data === 'string' ? encoder.encode(data) : data, datacontenttype: contentType });
  }

  /** A copy with the given attributes changed (`id`, `type`, `subject`, `extensions`, ...). */
  replace(changes = {}) {
    const copy = Object.create(Event.prototype);
    for (const name of CORE) copy[name] = name in changes ? changes[name] : this[name];
    copy.extensions = new Map(changes.extensions ?? this.extensions);
    const unknown = Object.keys(changes).filter((k) => !CORE.includes(k) && k !== 'extensions');
    if (unknown.length) throw new TypeError(`unknown event attributes: ${unknown.join(', ')}`);
    return copy;
  }

  /** A copy with a new random `id` (for an event derived from this one). */
  withFreshId() {
    return this.replace({ id: randomId() });
  }

  static fromWit(e) {
    const event = new Event(e.type, e.source, {
      id: e.id, data: e.data, datacontenttype: e.datacontenttype, dataschema: e.dataschema,
      subject: e.subject, time: e.time,
    });
    event.specversion = e.specversion;
    const kinds = { uri: Uri, 'uri-ref': UriRef, timestamp: Timestamp };
    for (const [name, value] of e.extensions) {
      const Kind = kinds[value.tag];
      event.extensions.set(name, Kind ? new Kind(value.val) : value.val);
    }
    return event;
  }

  toWit() {
    const typed = (name, value) => {
      if (value instanceof Uri) return { tag: 'uri', val: String(value) };
      if (value instanceof UriRef) return { tag: 'uri-ref', val: String(value) };
      if (value instanceof Timestamp) return { tag: 'timestamp', val: String(value) };
      if (typeof value === 'boolean') return { tag: 'boolean', val: value };
      if (typeof value === 'number' && Number.isInteger(value)) return { tag: 'integer', val: value };
      if (typeof value === 'string') return { tag: 'string', val: value };
      if (value instanceof Uint8Array) return { tag: 'binary', val: value };
      throw new TypeError(`extension ${name}: a value must be a boolean, an integer, a string or bytes`);
    };
    return {
      id: this.id, source: this.source, specversion: this.specversion, type: this.type,
      datacontenttype: this.datacontenttype, dataschema: this.dataschema, subject: this.subject,
      time: this.time,
      extensions: [...this.extensions].map(([name, value]) => [name, typed(name, value)]),
      data: this.data,
    };
  }
}

/** Why a handler refused an event; `transient` says whether a retry may succeed. */
export class HandlerError extends Error {
  get transient() {
    return false;
  }
}

/** A passing condition (a dependency is down): the event is retried later (HTTP 503). */
export class TransientError extends HandlerError {
  get transient() {
    return true;
  }
}

/** The event can never succeed: it is rejected (HTTP 422) or dead-lettered. */
export class PermanentError extends HandlerError {}

/** A publish was refused: an undeclared output, an invalid event, or the runtime failed. */
export class PublishError extends Error {}

/** Sends `event` to the output named `output` in spindle.toml (once the handler succeeds). */
export function publish(output, event) {
  try {
    witPublish(output, event.toWit());
  } catch (error) {
    const reason = error?.payload ?? error;
    throw new PublishError(`${reason?.tag ?? 'failed'}: ${reason?.val ?? reason}`);
  }
}

/** The component's variables (`[component.<id>.variables]`). */
export const config = {
  /** The value of `name`, or `undefined` when it is not set. */
  get(name) {
    return witGet(name) ?? undefined;
  },
};

const write = (level) => (message, fields = {}) =>
  witLog(level, message, Object.entries(fields).map(([k, v]) => [String(k), String(v)]));

/** Structured logs in the host's log, tagged with the component: `log.info('msg', { k: v })`. */
export const log = {
  debug: write('debug'),
  info: write('info'),
  warn: write('warn'),
  error: write('error'),
};

/**
 * The `handle` export running `fn` on each event: `export const handle = handler(fn)`. `fn`
 * returns an Event, an array of them, or nothing; throwing a `TransientError` asks for a
 * retry, anything else rejects the event.
 */
export function handler(fn) {
  return function handle(witEvent) {
    let results;
    try {
      results = fn(Event.fromWit(witEvent));
    } catch (error) {
      const transient = error instanceof HandlerError && error.transient;
      throw {
        kind: transient ? 'transient' : 'permanent',
        message: error instanceof HandlerError ? error.message : `${error?.name ?? 'Error'}: ${error?.message ?? error}`,
      };
    }
    if (results == null) return [];
    return (Array.isArray(results) ? results : [results]).map((e) => e.toWit());
  };
}
