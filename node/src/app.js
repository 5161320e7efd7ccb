// Builds Tally's Fastify app without listening, so tests can drive it with app.inject().
// src/server.js is the only module that binds a port.
import Fastify from 'fastify';

/**
 * @param {import('fastify').FastifyServerOptions} [options] passed to Fastify (e.g. { logger: true }).
 * @returns {import('fastify').FastifyInstance}
 */
export function buildApp(options = {}) {
  const app = Fastify(options);

  app.get('/healthz', async () => ({ status: 'ok' }));

  return app;
}
