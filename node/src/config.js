// The API's settings, only from the environment, with defaults for a local //:up stack.
import { loadBallot } from './ballot.js';
import { DEFAULT_TOP } from './results.js';

/**
 * @param {Record<string, string | undefined>} env usually process.env
 * @returns {{ host: string, port: number, mongoUrl: string, redisUrl: string, logLevel: string, resultsTop: number, ballot: import('./ballot.js').Ballot | null }}
 * @throws {Error} naming the setting, or the ballot's file when it cannot be read or is malformed
 */
export function configFromEnv(env) {
  const port = env.PORT ?? '3000';
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) {
    throw new Error(`PORT: want a port number, got ${JSON.stringify(port)}`);
  }
  // How many bands and albums results name before summing the rest (src/results.js).
  const top = env.RESULTS_TOP ?? String(DEFAULT_TOP);
  if (!/^[0-9]{1,4}$/.test(top) || Number(top) < 1) {
    throw new Error(`RESULTS_TOP: want an integer from 1 to 9999, got ${JSON.stringify(top)}`);
  }
  return {
    host: env.HOST ?? '0.0.0.0',
    port: Number(port),
    mongoUrl: env.MONGO_URL ?? 'mongodb://127.0.0.1:27017/',
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    logLevel: env.LOG_LEVEL ?? 'info',
    resultsTop: Number(top),
    // The contest's ballot (GET /api/ballot): a file path; unset or "off" means none.
    ballot: loadBallot(env.TALLY_BALLOT),
  };
}
