// The vote counts, read from Redis (the consumer writes them; proto/redis_keys.json has the keys).
import { UnavailableError } from './errors.js';
import { BY_BAND, TOTAL, bandAlbums } from './redis-keys.js';

/**
 * @typedef {object} Results
 * @property {number} total every counted vote
 * @property {{ band: string, votes: number }[]} bands most votes first
 * @property {{ band: string, album: string, votes: number }[]} albums most votes first
 */

/**
 * @param {import('ioredis').Redis} redis
 * @returns {{ read(): Promise<Results>, ping(): Promise<void> }}
 */
export function resultsReader(redis) {
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
        return {
          total: Number(total ?? 0),
          bands: bands.sort((a, b) => b.votes - a.votes || compare(a.band, b.band)),
          albums: albums.sort(
            (a, b) => b.votes - a.votes || compare(a.band, b.band) || compare(a.album, b.album),
          ),
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

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
