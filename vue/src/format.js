// How the page words the API's data.

/**
 * The terminal's lines for logs as the API sends them (newest first): oldest first, so the
 * newest is at the bottom, each "HH:MM:SS route  band — album (year) rank N  id".
 * @param {{ id: string, name: string, album: string, year: number, rank: number, route: string, accepted_at: string }[]} logs
 */
export function logLines(logs) {
  return [...logs].reverse().map((log) => ({
    id: log.id,
    text: `${log.accepted_at.slice(11, 19)} ${log.route.padEnd(4)} ${log.name} — ${log.album} (${log.year}) rank ${log.rank}  ${log.id}`,
  }));
}

/** The per-band chart's bars: the API's top bands, then one bar for the rest, if any. */
export function bandBars(results) {
  const bars = results.bands.map((b) => ({ label: b.band, value: b.votes }));
  return withOthers(bars, results.otherBands, 'band');
}

/** The per-album chart's bars, labelled "album (band)", then one bar for the rest, if any. */
export function albumBars(results) {
  const bars = results.albums.map((a) => ({ label: `${a.album} (${a.band})`, value: a.votes }));
  return withOthers(bars, results.otherAlbums, 'album');
}

function withOthers(bars, others, noun) {
  if (!others?.count) return bars;
  const label = `${new Intl.NumberFormat('en').format(others.count)} other ${noun}${others.count === 1 ? '' : 's'}`;
  return [...bars, { label, value: others.votes }];
}

/**
 * The counts after a results-delta event (the API's node/src/results.js resultsDelta): rows set
 * or gone, the total and the sums replaced; rows stay most votes first, then by name.
 */
export function applyResultsDelta(results, delta) {
  const bandKey = (r) => r.band;
  const albumKey = (r) => `${r.band}\u0000${r.album}`;
  return {
    total: delta.total,
    bands: applyRows(results.bands, delta.bands, bandKey),
    albums: applyRows(results.albums, delta.albums, albumKey),
    otherBands: delta.otherBands,
    otherAlbums: delta.otherAlbums,
  };
}

function applyRows(rows, { set, gone }, key) {
  const byKey = new Map(rows.map((r) => [key(r), r]));
  for (const r of gone) byKey.delete(key(r));
  for (const r of set) byKey.set(key(r), r);
  return [...byKey.values()].sort((a, b) => b.votes - a.votes || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
