// GET /api/live: everything the live page shows in one small document, made at most once per
// `maxAgeMs` however many ask, and cacheable for that long by browsers and a CDN in front of the
// webapp (docs/deploy-gke.md), so 100,000 viewers polling it once a second cost the API about one
// request per second per CDN cache, and the stores one read of each per second per instance.
//
// The document: {"at", "logs", "results", "status"}: the newest `logLimit` logs (as
// GET /api/logs), the counts (as GET /api/results), whether the last read of each store worked
// (as the stream's status event), and when it was read. A store that fails keeps its last data
// (null before the first read that worked) and says "down".
import { createHash } from 'node:crypto';

/**
 * @param {object} deps
 * @param {{ newest(limit: number): Promise<unknown[]> }} deps.logs
 * @param {{ read(): Promise<unknown> }} deps.results
 * @param {number} [deps.maxAgeMs] how long one read serves
 * @param {number} [deps.logLimit]
 * @param {() => number} [deps.now]
 * @param {import('fastify').FastifyBaseLogger} [deps.log]
 */
export function createLive({ logs, results, maxAgeMs = 1000, logLimit = 20, now = Date.now, log }) {
  let last = { logs: null, results: null };
  /** @type {{ body: string, etag: string, readAt: number } | null} */
  let doc = null;
  /** The read in progress: every request that finds the document old waits for the same one. */
  let reading = null;

  async function read() {
    const readAt = now();
    const [newest, counts] = await Promise.allSettled([logs.newest(logLimit), results.read()]);
    for (const r of [newest, counts]) {
      if (r.status === 'rejected') log?.warn({ err: r.reason }, 'live: read failed');
    }
    last = {
      logs: newest.status === 'fulfilled' ? newest.value : last.logs,
      results: counts.status === 'fulfilled' ? counts.value : last.results,
    };
    const body = JSON.stringify({
      at: new Date(readAt).toISOString(),
      logs: last.logs,
      results: last.results,
      status: { mongo: newest.status === 'fulfilled' ? 'up' : 'down', redis: counts.status === 'fulfilled' ? 'up' : 'down' },
    });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    doc = { body, etag, readAt };
    return doc;
  }

  return {
    /** The current document, read again if it is maxAgeMs old. */
    async get() {
      if (doc && now() - doc.readAt < maxAgeMs) return doc;
      reading ??= read().finally(() => {
        reading = null;
      });
      return reading;
    },
    maxAgeSeconds: Math.max(1, Math.round(maxAgeMs / 1000)),
  };
}
