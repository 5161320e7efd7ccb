// How the page words the API's data, in the page's language (i18n.js).

/**
 * The terminal's lines for logs as the API sends them (newest first): oldest first, so the
 * newest is at the bottom, each "HH:MM:SS route  band — album (year) posición N  id" (the rank
 * worded in the page's language).
 * @param {{ id: string, name: string, album: string, year: number, rank: number, route: string, accepted_at: string }[]} logs
 * @param {import('./i18n.js').Messages} t the page's words
 */
export function logLines(logs, t) {
  return [...logs].reverse().map((log) => ({
    id: log.id,
    text: `${log.accepted_at.slice(11, 19)} ${log.route.padEnd(4)} ${log.name} — ${log.album} (${log.year}) ${t.rank(log.rank)}  ${log.id}`,
  }));
}

/**
 * The per-band chart's bars: the API's top bands, then the ballot's other bands at zero (see
 * ballotZeros), then one bar for the rest, if any.
 * @param {object} results the counts as the API sends them (node/src/results.js)
 * @param {{ bands: { name: string, albums: { album: string }[] }[] } | null} ballot GET /api/ballot, or null
 * @param {import('./i18n.js').Messages} t the page's words (the rest's label)
 */
export function bandBars(results, ballot, t) {
  const bars = results.bands.map((b) => ({ label: b.band, value: b.votes }));
  const names = (ballot?.bands ?? []).map((b) => b.name);
  return withOthers(withZeros(bars, names, results.otherBands), results.otherBands, t.otherBands);
}

/** The per-album chart's bars, labelled "album (band)", as bandBars does the bands. */
export function albumBars(results, ballot, t) {
  const label = (album, band) => `${album} (${band})`;
  const bars = results.albums.map((a) => ({ label: label(a.album, a.band), value: a.votes }));
  const names = (ballot?.bands ?? []).flatMap((b) => b.albums.map((a) => label(a.album, b.name)));
  return withOthers(withZeros(bars, names, results.otherAlbums), results.otherAlbums, t.otherAlbums);
}

/**
 * The bars and, in the ballot's order, a zero bar for each ballot name that has none. Only while
 * the API lists every counted name (no rest): then a name it does not list has no votes; with a
 * rest, a ballot name may be counted in it, so the rest's bar stands for it instead.
 */
function withZeros(bars, ballotLabels, others) {
  if (others?.count) return bars;
  const listed = new Set(bars.map((b) => b.label));
  return [...bars, ...ballotLabels.filter((l) => !listed.has(l)).map((label) => ({ label, value: 0 }))];
}

/** The bars and one for the rest, labelled by label(how many names it sums), if there is a rest. */
function withOthers(bars, others, label) {
  if (!others?.count) return bars;
  return [...bars, { label: label(others.count), value: others.votes }];
}
