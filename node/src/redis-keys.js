// Names of the Redis keys the API reads. The layout is defined once, in proto/redis_keys.json
// (written by the consumer, go/internal/counts); test/redis-keys.test.js fails when these
// builders drift from that file, so this copy cannot go stale silently.

/** STRING: every counted vote. */
export const TOTAL = 'tally:votes:total';

/** HASH: band → votes. */
export const BY_BAND = 'tally:votes:band';

/** HASH: album → votes of one band. */
export function bandAlbums(band) {
  return `tally:votes:band:${band}`;
}
