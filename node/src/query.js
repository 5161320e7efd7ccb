// Query-string checks: the API answers 400 naming the parameter instead of guessing.
import { BadRequestError } from './errors.js';

export const DEFAULT_LIMIT = 20;
// The consumers keep this many newest logs for the query (proto/mongo_names.json, newest_max).
export const MAX_LIMIT = 20;

/**
 * Reads GET /api/logs' query: only `limit`, an integer from 1 to MAX_LIMIT.
 * @param {Record<string, unknown>} query the parsed query string
 * @returns {{ limit: number }}
 */
export function parseLogsQuery(query) {
  rejectUnknown(query, ['limit']);
  const raw = query.limit;
  if (raw === undefined) return { limit: DEFAULT_LIMIT };
  if (typeof raw !== 'string') throw new BadRequestError('limit', 'give it once');
  if (!/^[0-9]{1,3}$/.test(raw)) {
    throw new BadRequestError('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  }
  const limit = Number(raw);
  if (limit < 1 || limit > MAX_LIMIT) {
    throw new BadRequestError('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return { limit };
}

/**
 * Fails on the first parameter outside allowed (so a typo such as ?limt=5 is not ignored).
 * @param {Record<string, unknown>} query
 * @param {string[]} allowed
 */
export function rejectUnknown(query, allowed) {
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) throw new BadRequestError(name, 'unknown query parameter');
  }
}
