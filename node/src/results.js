// The vote counts, read from Redis (the consumer writes them; proto/redis_keys.json has the keys).
import { UnavailableError } from './errors.js';
import { BY_BAND, TOTAL, bandAlbums } from './redis-keys.js';

/** How many bands and albums the results name; the rest are summed (RESULTS_TOP). */
export const DEFAULT_TOP = 20;

/**
 * The counts, bounded however many names Redis holds (an old ballot, a bigger contest): the top
 * `top` bands and albums by votes, and the others summed, so a response and the page's charts
 * stay small.
 * @typedef {object} Results
 * @property {number} total every counted vote
 * @property {{ band: string, votes: number }[]} bands the top bands, most votes first
 * @property {{ band: string, album: string, votes: number }[]} albums the top albums, most votes first
 * @property {{ count: number, votes: number }} otherBands the bands not listed, and their votes
 * @property {{ count: number, votes: number }} otherAlbums the albums not listed, and their votes
 */

/**
 * @param {import('ioredis').Redis} redis
 * @param {{ top?: number }} [options]
 * @returns {{ read(): Promise<Results>, ping(): Promise<void> }}
 */
export function resultsReader(redis, { top = DEFAULT_TOP } = {}) {
  return {
    async read() {
      try {
        // Two round trips: the bands first, then every band's albums in one pipeline. The consumer
        // updates all keys of a batch atomically, so a read between the two may see a newer batch
        // in the albums than in the bands; the next read (the stream's next tick) agrees again.
        const [[totalErr, total], [bandsErr, byBand]] = await redis
          .multi()
          .get(TOTAL)
          .hgetall(BY_BAND)
          .exec();
        if (totalErr || bandsErr) throw totalErr ?? bandsErr;
        const bandNames = Object.keys(byBand);
        const pipeline = redis.pipeline();
        for (const band of bandNames) pipeline.hgetall(bandAlbums(band));
        const perBand = bandNames.length ? await pipeline.exec() : [];
        const albums = [];
        perBand.forEach(([err, hash], i) => {
          if (err) throw err;
          for (const [album, votes] of Object.entries(hash)) {
            albums.push({ band: bandNames[i], album, votes: Number(votes) });
          }
        });
        const bands = Object.entries(byBand).map(([band, votes]) => ({ band, votes: Number(votes) }));
        bands.sort((a, b) => b.votes - a.votes || compare(a.band, b.band));
        albums.sort((a, b) => b.votes - a.votes || compare(a.band, b.band) || compare(a.album, b.album));
        return {
          total: Number(total ?? 0),
          bands: bands.slice(0, top),
          albums: albums.slice(0, top),
          otherBands: sum(bands.slice(top)),
          otherAlbums: sum(albums.slice(top)),
        };
      } catch (err) {
        throw new UnavailableError('redis', err);
      }
    },
    async ping() {
      try {
        await redis.ping();
      } catch (err) {
        throw new UnavailableError('redis', err);
      }
    },
  };
}

function sum(rows) {
  return { count: rows.length, votes: rows.reduce((n, r) => n + r.votes, 0) };
}

/**
 * What changed from `prev` to `next` (both Results): the rows whose votes changed or that are
 * new to the top (`set`), the rows that left it (`gone`, names only), and the total and sums as
 * they are now. The stream sends this instead of the whole table; `null` when nothing changed.
 * @param {Results} prev
 * @param {Results} next
 */
export function resultsDelta(prev, next) {
  const bands = rowsDelta(prev.bands, next.bands, (r) => r.band);
  const albums = rowsDelta(prev.albums, next.albums, (r) => `${r.band}\u0000${r.album}`);
  const same =
    prev.total === next.total &&
    !bands.set.length && !bands.gone.length && !albums.set.length && !albums.gone.length &&
    JSON.stringify([prev.otherBands, prev.otherAlbums]) === JSON.stringify([next.otherBands, next.otherAlbums]);
  if (same) return null;
  return { total: next.total, bands, albums, otherBands: next.otherBands, otherAlbums: next.otherAlbums };
}

function rowsDelta(prev, next, key) {
  const before = new Map(prev.map((r) => [key(r), r.votes]));
  const now = new Set(next.map(key));
  return {
    set: next.filter((r) => before.get(key(r)) !== r.votes),
    gone: prev.filter((r) => !now.has(key(r))).map(({ votes, ...name }) => name),
  };
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
