// Server-Sent Events for GET /api/stream: the newest logs and the counts, pushed when they change.
//
// One poller serves every connected client: while at least one is connected it reads MongoDB and
// Redis every `intervalMs` and sends an event only when what it read differs from what it sent
// before, so the load on the stores does not grow with the number of open pages, and no page polls.
//
// Events (each `data:` is one line of JSON):
//   logs           the newest `logLimit` logs, newest first (the same array as GET /api/logs)
//   results        the counts (the same object as GET /api/results): sent to a client when it
//                  connects, and to all when the first counts are read
//   results-delta  what changed in the counts since the last results or results-delta
//                  (src/results.js resultsDelta): after the first, changes go out this way, never
//                  the whole table
//   status         {"mongo": "up"|"down", "redis": "up"|"down"}: whether the last read of each store worked

import { resultsDelta } from './results.js';

/**
 * @param {object} deps
 * @param {{ newest(limit: number): Promise<unknown[]> }} deps.logs
 * @param {{ read(): Promise<unknown> }} deps.results
 * @param {number} [deps.intervalMs] time between two reads of the stores
 * @param {number} [deps.logLimit] how many logs the logs event carries
 * @param {number} [deps.keepAliveMs] idle time after which a comment line keeps proxies from closing
 * @param {import('fastify').FastifyBaseLogger} [deps.log]
 */
export function createStream({ logs, results, intervalMs = 1000, logLimit = 20, keepAliveMs = 15000, log }) {
  /** @type {Set<import('node:http').ServerResponse>} */
  const clients = new Set();
  /** The last event data sent per event name, as JSON text. */
  let sent = new Map();
  let timer = null;
  let lastWrite = Date.now();
  let stopped = false;

  function write(res, text) {
    if (!res.writableEnded) res.write(text);
  }

  function broadcast(event, data) {
    const json = JSON.stringify(data);
    if (sent.get(event) === json) return;
    sent.set(event, json);
    const text = `event: ${event}\ndata: ${json}\n\n`;
    for (const res of clients) write(res, text);
    lastWrite = Date.now();
  }

  /** The counts as the clients have them, to send only what changes. */
  let counted = null;

  function broadcastCounts(next) {
    if (counted === null) {
      counted = next;
      broadcast('results', next);
      return;
    }
    const delta = resultsDelta(counted, next);
    if (delta === null) return;
    counted = next;
    // A client connecting later gets the whole current table as `results`.
    sent.set('results', JSON.stringify(next));
    const text = `event: results-delta\ndata: ${JSON.stringify(delta)}\n\n`;
    for (const res of clients) write(res, text);
    lastWrite = Date.now();
  }

  async function poll() {
    const [newest, counts] = await Promise.allSettled([logs.newest(logLimit), results.read()]);
    if (newest.status === 'fulfilled') broadcast('logs', newest.value);
    if (counts.status === 'fulfilled') broadcastCounts(counts.value);
    broadcast('status', {
      mongo: newest.status === 'fulfilled' ? 'up' : 'down',
      redis: counts.status === 'fulfilled' ? 'up' : 'down',
    });
    for (const r of [newest, counts]) {
      if (r.status === 'rejected') log?.warn({ err: r.reason }, 'stream: read failed');
    }
    if (clients.size > 0 && Date.now() - lastWrite >= keepAliveMs) {
      for (const res of clients) write(res, ': keep-alive\n\n');
      lastWrite = Date.now();
    }
  }

  // A chain of timeouts rather than setInterval: a slow read never overlaps the next one.
  function schedule(delay) {
    timer = setTimeout(async () => {
      await poll();
      if (clients.size > 0 && !stopped) schedule(intervalMs);
      else timer = null;
    }, delay);
  }

  return {
    /**
     * Streams to res until the client goes away. res must not have been written to.
     * @param {import('node:http').ServerResponse} res
     */
    add(res) {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        // Proxies such as nginx buffer responses unless told not to.
        'X-Accel-Buffering': 'no',
      });
      // How long EventSource waits before reconnecting after the connection drops.
      write(res, 'retry: 2000\n\n');
      for (const [event, json] of sent) write(res, `event: ${event}\ndata: ${json}\n\n`);
      clients.add(res);
      res.on('close', () => {
        clients.delete(res);
        // Nobody listens: stop reading, and forget what was sent so the next client starts fresh.
        if (clients.size === 0) {
          sent = new Map();
          counted = null;
        }
      });
      if (timer === null && !stopped) schedule(0);
    },
    /** Ends every stream and stops polling (the server is closing). */
    close() {
      stopped = true;
      clearTimeout(timer);
      timer = null;
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
