// The vote logs, read from MongoDB (the consumer writes them; docs/data.md has the layout).
//
// The newest-N query reads only `logs_recent`, the newest 20 logs plus those written since the
// consumer last trimmed it (at most a second ago), never `logs`: the local MongoDB-wire server
// (FerretDB v1) answers any sorted query by scanning the whole collection, which takes seconds
// at 100k logs, while logs_recent stays a few dozen documents however many votes were cast.
// logs_recent lives in a database of its own, tally_recent (go/internal/votelog says why).
import { UnavailableError } from './errors.js';

export const RECENT_DATABASE = 'tally_recent';
export const RECENT_COLLECTION = 'logs_recent';

/**
 * @typedef {object} Log one counted vote, as the API returns it
 * @property {string} id the vote id
 * @property {string} name
 * @property {string} album
 * @property {number} year
 * @property {number} rank
 * @property {string} route "grpc" or "wasm"
 * @property {string} accepted_at ISO 8601
 * @property {string} counted_at ISO 8601
 */

/**
 * @param {import('mongodb').MongoClient} client
 * @returns {{ newest(limit: number): Promise<Log[]>, ping(): Promise<void> }}
 */
export function logsReader(client) {
  const db = client.db(RECENT_DATABASE);
  const recent = db.collection(RECENT_COLLECTION);
  return {
    /** The newest `limit` logs, newest first (by accept time, then vote id: a total order). */
    async newest(limit) {
      try {
        const docs = await recent
          .find({}, { projection: { partition: 0, offset: 0 } })
          .sort({ accepted_at: -1, _id: -1 })
          .limit(limit)
          .toArray();
        return docs.map(toLog);
      } catch (err) {
        throw new UnavailableError('mongo', err);
      }
    },
    async ping() {
      try {
        await db.command({ ping: 1 });
      } catch (err) {
        throw new UnavailableError('mongo', err);
      }
    },
  };
}

function toLog(doc) {
  return {
    id: String(doc._id),
    name: doc.name,
    album: doc.album,
    year: doc.year,
    rank: doc.rank,
    route: doc.route,
    accepted_at: iso(doc.accepted_at),
    counted_at: iso(doc.counted_at),
  };
}

function iso(value) {
  return value instanceof Date ? value.toISOString() : null;
}
