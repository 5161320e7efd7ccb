// Builds Tally's Fastify app without listening, so tests can drive it with app.inject().
// src/server.js is the only module that binds a port and the only one that opens connections:
// the app gets its stores (src/logs.js, src/results.js) handed in.
import { createHash } from 'node:crypto';

import Fastify from 'fastify';

import { BadRequestError, UnavailableError } from './errors.js';
import { parseLogsQuery, rejectUnknown } from './query.js';
import { createLive } from './live.js';
import { createStream } from './stream.js';

/**
 * @param {object} deps
 * @param {{ newest(limit: number): Promise<unknown[]>, ping(): Promise<void> }} deps.logs
 * @param {{ read(): Promise<unknown>, ping(): Promise<void> }} deps.results
 * @param {import('./ballot.js').Ballot | null} [deps.ballot] the contest's ballot (src/ballot.js); null: none
 * @param {number} [deps.streamIntervalMs] how often the stream reads the stores
 * @param {number} [deps.liveMaxAgeMs] how long one read of the stores serves GET /api/live
 * @param {import('fastify').FastifyServerOptions} [options] passed to Fastify (e.g. { logger: true })
 * @returns {import('fastify').FastifyInstance}
 */
export function buildApp({ logs, results, ballot = null, streamIntervalMs, liveMaxAgeMs }, options = {}) {
  const app = Fastify(options);
  const stream = createStream({ logs, results, intervalMs: streamIntervalMs, log: app.log });
  const live = createLive({ logs, results, maxAgeMs: liveMaxAgeMs, log: app.log });

  // Open event streams would keep app.close() waiting for ever: end them first.
  app.addHook('preClose', async () => stream.close());

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof BadRequestError) {
      return reply.code(400).send({ error: err.message, field: err.field });
    }
    if (err instanceof UnavailableError) {
      request.log.warn({ err: err.cause, store: err.store }, 'store unavailable');
      return reply.code(503).header('Retry-After', '1').send({ error: err.message });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no such path: ${request.url.split('?')[0]}` }),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request, reply) => {
    const checks = await Promise.allSettled([logs.ping(), results.ping()]);
    const down = checks.filter((c) => c.status === 'rejected').map((c) => c.reason.message);
    if (down.length) {
      return reply.code(503).header('Retry-After', '1').send({ error: `not ready: ${down.join(', ')}` });
    }
    return { status: 'ready' };
  });

  app.get('/api/logs', async (request) => {
    const { limit } = parseLogsQuery(request.query);
    return { logs: await logs.newest(limit) };
  });

  // The ballot changes only when the API starts again (a new revision, a restart), so a browser
  // may keep it a minute and then revalidate it by its ETag.
  const ballotJSON = ballot && JSON.stringify(ballot);
  const ballotTag = ballot && `"${createHash('sha256').update(ballotJSON).digest('base64url').slice(0, 27)}"`;
  app.get('/api/ballot', async (request, reply) => {
    rejectUnknown(request.query, []);
    if (!ballot) return reply.code(404).send({ error: 'no ballot: TALLY_BALLOT is off' });
    reply.header('Cache-Control', 'public, max-age=60').header('ETag', ballotTag);
    if (request.headers['if-none-match'] === ballotTag) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(ballotJSON);
  });

  app.get('/api/results', async (request) => {
    rejectUnknown(request.query, []);
    return results.read();
  });

  // The live page's one document (src/live.js): a browser and a CDN may keep it a second, so a
  // CDN in front of the webapp answers the viewers and this API sees about one request a second.
  app.get('/api/live', async (request, reply) => {
    rejectUnknown(request.query, []);
    const doc = await live.get();
    const age = live.maxAgeSeconds;
    reply.header('Cache-Control', `public, max-age=${age}, s-maxage=${age}`).header('ETag', doc.etag);
    if (request.headers['if-none-match'] === doc.etag) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(doc.body);
  });

  app.get('/api/stream', (request, reply) => {
    rejectUnknown(request.query, []);
    reply.hijack();
    stream.add(reply.raw);
  });

  return app;
}
