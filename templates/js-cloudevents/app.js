// {{name}}: a Spindle CloudEvents handler in JavaScript.
//
// Build with `spindle build` (componentize-js turns this module into a component) and run
// with `spindle up`. Send it an event with e.g.
// curl -X POST localhost:3000/ -H 'ce-id: 1' -H 'ce-source: /me' -H 'ce-type: com.example.greet' -H 'ce-specversion: 1.0' -H 'content-type: application/json' -d '{"name":"ada"}'

import { Event, PermanentError, handler, log } from './node_modules/spindle-sdk/index.js';

/** Answers every `com.example.greet` event with a `com.example.greeting`; ignores others. */
function greet(event) {
  if (event.type !== 'com.example.greet') return undefined;
  const { name } = event.json() ?? {};
  if (!name) throw new PermanentError('a greet event needs a `name`');
  log.info('greeting', { name });
  return new Event('com.example.greeting', '/{{name}}').withJson({ message: `Hello, ${name}!` });
}

export const handle = handler(greet);
