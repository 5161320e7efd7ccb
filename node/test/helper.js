// Builds the app over in-memory stores for unit tests; the integration tests
// (test/integration/) run the same app over real MongoDB and Redis.
import net from 'node:net';
import { after } from 'node:test';

import { buildApp } from '../src/app.js';
import { UnavailableError } from '../src/errors.js';

/** Counts as src/results.js reads them: a total, top rows (none unless given), nothing summed. */
export function counts(total, bands = [], albums = []) {
  const none = { count: 0, votes: 0 };
  return { total, bands, albums, otherBands: none, otherAlbums: none };
}

/** Stores whose data and availability a test sets. */
export function fakeStores() {
  const stores = {
    logList: [],
    counts: counts(0),
    mongoUp: true,
    redisUp: true,
    logs: {
      async newest(limit) {
        if (!stores.mongoUp) throw new UnavailableError('mongo', new Error('connection refused'));
        return stores.logList.slice(0, limit);
      },
      async ping() {
        if (!stores.mongoUp) throw new UnavailableError('mongo', new Error('connection refused'));
      },
    },
    results: {
      async read() {
        if (!stores.redisUp) throw new UnavailableError('redis', new Error('connection refused'));
        return stores.counts;
      },
      async ping() {
        if (!stores.redisUp) throw new UnavailableError('redis', new Error('connection refused'));
      },
    },
  };
  return stores;
}

/** An app over fake stores, closed when the test file ends. */
export function appWithFakes(options = {}) {
  const stores = fakeStores();
  const app = buildApp({ logs: stores.logs, results: stores.results, ...options });
  after(() => app.close());
  return { app, stores };
}

/** Reads Server-Sent Events from a fetch Response; next() resolves to {event, data}. */
export function eventReader(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .filter((line) => line && !line.startsWith(':'))
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          );
          if (fields.event) return { event: fields.event, data: JSON.parse(fields.data) };
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += value;
      }
    },
    /** Skips events until one named event satisfies accept (or the timeout passes). */
    async until(event, accept = () => true, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`no ${event} event accepted within ${timeoutMs} ms`);
        let timer;
        const got = await Promise.race([
          this.next(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no ${event} event within ${timeoutMs} ms`)), remaining);
          }),
        ]).finally(() => clearTimeout(timer));
        if (got.event === event && accept(got.data)) return got.data;
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** A TCP port nothing listens on at the moment of asking. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
