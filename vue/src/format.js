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

/** The per-band chart's bars. */
export function bandBars(results) {
  return results.bands.map((b) => ({ label: b.band, value: b.votes }));
}

/** The per-album chart's bars, labelled "album (band)". */
export function albumBars(results) {
  return results.albums.map((a) => ({ label: `${a.album} (${a.band})`, value: a.votes }));
}
