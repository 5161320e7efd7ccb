// The contest's ballot (proto/ballot.json): its bands, each band's albums and each album's year,
// read once at start from the file TALLY_BALLOT names and served as GET /api/ballot. The rules are
// the producers' (go/internal/vote/ballot.go), so a file one of them refuses, the API refuses too.
import { readFileSync } from 'node:fs';

/** The TALLY_BALLOT value that turns the ballot off (as for the producers). */
export const BALLOT_OFF = 'off';

/** The vote rules' limits a ballot's names and years must fit (docs/api.md). */
const TEXT_MAX_CHARS = 100;
const YEAR_MIN = 1900;

/**
 * @typedef {{ bands: { name: string, albums: { album: string, year: number }[] }[] }} Ballot
 */

/**
 * Reads the ballot at path; unset, empty or "off" gives null (no ballot).
 * @param {string | undefined} path
 * @returns {Ballot | null}
 * @throws {Error} naming the file when it cannot be read or breaks a rule
 */
export function loadBallot(path) {
  if (!path || path === BALLOT_OFF) return null;
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`ballot ${path}: ${err.message}`, { cause: err });
  }
  try {
    return parseBallot(text);
  } catch (err) {
    throw new Error(`ballot ${path}: ${err.message}`, { cause: err });
  }
}

/**
 * Checks a ballot in proto/ballot.json's shape: no unknown fields, at least one band, every band
 * with at least one album, names trimmed and 1 to 100 characters, none listed twice, years
 * integers from 1900 on. Returns the bands alone (the description is for people).
 * @param {string} text
 * @returns {Ballot}
 */
export function parseBallot(text) {
  let file;
  try {
    file = JSON.parse(text);
  } catch (err) {
    throw new Error(`decode: ${err.message}`);
  }
  onlyKeys(file, ['description', 'bands'], 'the ballot');
  if (file.description !== undefined && typeof file.description !== 'string') {
    throw new Error('description must be a string');
  }
  if (!Array.isArray(file.bands) || file.bands.length === 0) throw new Error('no bands');
  const seen = new Set();
  const bands = file.bands.map((band) => {
    onlyKeys(band, ['name', 'albums'], 'a band');
    checkText(band.name, `band ${JSON.stringify(band.name)}`);
    if (seen.has(band.name)) throw new Error(`band ${JSON.stringify(band.name)} is listed twice`);
    seen.add(band.name);
    if (!Array.isArray(band.albums) || band.albums.length === 0) {
      throw new Error(`band ${JSON.stringify(band.name)} has no albums`);
    }
    const titles = new Set();
    const albums = band.albums.map((a) => {
      const where = `album ${JSON.stringify(a?.album)} of ${JSON.stringify(band.name)}`;
      onlyKeys(a, ['album', 'year'], where);
      checkText(a.album, where);
      if (titles.has(a.album)) throw new Error(`${where} is listed twice`);
      titles.add(a.album);
      if (!Number.isInteger(a.year) || a.year < YEAR_MIN) {
        throw new Error(`${where}: year ${JSON.stringify(a.year)} is not an integer from ${YEAR_MIN} on`);
      }
      return { album: a.album, year: a.year };
    });
    return { name: band.name, albums };
  });
  return { bands };
}

function onlyKeys(value, keys, what) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${what} must be an object`);
  }
  const unknown = Object.keys(value).find((k) => !keys.includes(k));
  if (unknown !== undefined) throw new Error(`${what} has an unknown field ${JSON.stringify(unknown)}`);
}

/** A name must be what a vote's text becomes after the format rules: trimmed, 1 to 100 characters. */
function checkText(value, what) {
  if (typeof value !== 'string') throw new Error(`${what} must be a string`);
  if (value.trim() !== value) throw new Error(`${what} has leading or trailing space`);
  const chars = [...value].length;
  if (chars === 0) throw new Error(`${what} must not be empty`);
  if (chars > TEXT_MAX_CHARS) throw new Error(`${what} must be at most ${TEXT_MAX_CHARS} characters`);
}
