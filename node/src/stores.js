// Opens the API's connections to MongoDB and Redis, tuned so that a store going away shows as
// 503 within about two seconds (not a request hanging) and comes back by itself.
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';

import { logsReader } from './logs.js';
import { resultsReader } from './results.js';

/**
 * @param {{ mongoUrl: string, redisUrl: string }} config
 */
export function openStores({ mongoUrl, redisUrl, resultsTop }) {
  // The driver connects on first use and keeps monitoring the server, so it needs no connect()
  // that could fail at startup; a query while the server is down fails after the selection timeout.
  const mongo = new MongoClient(mongoUrl, {
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
    socketTimeoutMS: 5000,
    heartbeatFrequencyMS: 2000,
  });
  const redis = new Redis(redisUrl, {
    // Fail commands at once while disconnected instead of queueing them until Redis is back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  return {
    logs: logsReader(mongo),
    results: resultsReader(redis, { top: resultsTop }),
    /**
     * Logs Redis losing and regaining its connection, once per change. Call it in the same turn
     * as openStores: ioredis connects on the next tick, and an error event without a listener
     * would be printed by ioredis itself.
     * @param {import('fastify').FastifyBaseLogger} log
     */
    watch(log) {
      let down = false;
      redis.on('error', (err) => {
        if (!down) log.warn({ err }, 'redis connection lost; reconnecting');
        down = true;
      });
      redis.on('ready', () => {
        if (down) log.info('redis connection back');
        down = false;
      });
    },
    async close() {
      await Promise.allSettled([mongo.close(), redis.quit()]);
    },
  };
}
