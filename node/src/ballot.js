// The contest's ballot (proto/ballot.json): its bands, each band's albums and each album's year,
// read once at start from the file TALLY_BALLOT names and served as GET /api/ballot. The rules are
// the producers' (go/internal/vote/ballot.go), so a file one of them refuses, the API refuses too.
import { readFileSync } from 'node:fs';

/** The TALLY_BALLOT value that turns the ballot off (as for the producers). */
export const BALLOT_OFF = 'off';

/** The vote rules' limits a ballot's names and years must fit (docs/api.md). */
const TEXT_MAX_CHARS = 100;
const YEAR_MIN = 1900;
/** The vote's year is an int32 (proto/vote/v1/vote.proto). */
const YEAR_MAX = 2 ** 31 - 1;

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

/** A ballot file's first broken rule; path names the value (proto/ballot_cases.json's paths). */
export class BallotError extends Error {
  /**
   * @param {string} path "" for the file as a whole, else e.g. bands[1].albums[0].year
   * @param {string} reason
   */
  constructor(path, reason) {
    super(path === '' ? reason : `${path}: ${reason}`);
    this.name = 'BallotError';
    this.path = path;
  }
}

/**
 * Checks a ballot in proto/ballot.json's shape by the rules of proto/ballot_cases.json (the
 * producers run the same table): only the known fields, at least one band, every band with at
 * least one album, names trimmed and 1 to 100 characters, none listed twice, years whole numbers
 * from 1900 to the largest int32. Returns the bands alone (the description is for people).
 * @param {string} text
 * @returns {Ballot}
 * @throws {BallotError} naming the first value that breaks a rule
 */
export function parseBallot(text) {
  let file;
  try {
    file = JSON.parse(text);
  } catch (err) {
    throw new BallotError('', `is not JSON: ${err.message}`);
  }
  onlyKeys(file, ['description', 'bands'], '');
  if ('description' in file && typeof file.description !== 'string') {
    throw new BallotError('description', 'must be a string');
  }
  const seen = new Set();
  const bands = nonEmptyArray(file.bands, 'bands').map((band, i) => {
    const path = `bands[${i}]`;
    onlyKeys(band, ['name', 'albums'], path);
    checkText(band.name, `${path}.name`);
    if (seen.has(band.name)) throw new BallotError(`${path}.name`, `band ${JSON.stringify(band.name)} is listed twice`);
    seen.add(band.name);
    const titles = new Set();
    const albums = nonEmptyArray(band.albums, `${path}.albums`).map((a, j) => {
      const where = `${path}.albums[${j}]`;
      onlyKeys(a, ['album', 'year'], where);
      checkText(a.album, `${where}.album`);
      if (titles.has(a.album)) {
        throw new BallotError(`${where}.album`, `album ${JSON.stringify(a.album)} is listed twice under this band`);
      }
      titles.add(a.album);
      if (!Number.isInteger(a.year) || a.year < YEAR_MIN || a.year > YEAR_MAX) {
        throw new BallotError(`${where}.year`, `must be a whole number from ${YEAR_MIN} to ${YEAR_MAX}`);
      }
      return { album: a.album, year: a.year };
    });
    return { name: band.name, albums };
  });
  return { bands };
}

/** An object with only the given keys; an unknown one is named by its path, the first in code-point order. */
function onlyKeys(value, keys, path) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BallotError(path, 'must be an object');
  }
  const unknown = Object.keys(value)
    .filter((k) => !keys.includes(k))
    .sort(byCodePoints)[0];
  if (unknown !== undefined) throw new BallotError(path === '' ? unknown : `${path}.${unknown}`, 'is not a known field');
}

/** Code-point order, which is UTF-8 byte order (Go's and Rust's); a plain sort compares UTF-16 units. */
function byCodePoints(a, b) {
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function nonEmptyArray(value, path) {
  if (!Array.isArray(value) || value.length === 0) throw new BallotError(path, 'must be a non-empty array');
  return value;
}

/**
 * Unicode White_Space, what the producers trim from a vote's text (Go's strings.TrimSpace, Rust's
 * str::trim). Not JavaScript's trim, which also strips U+FEFF and keeps U+0085.
 */
const EDGE_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;

/** A name must be what a vote's text becomes after the format rules: trimmed, 1 to 100 characters. */
function checkText(value, path) {
  if (typeof value !== 'string') throw new BallotError(path, 'must be a string');
  if (value === '') throw new BallotError(path, 'must not be empty');
  if (EDGE_SPACE.test(value)) throw new BallotError(path, 'has leading or trailing space');
  if ([...value].length > TEXT_MAX_CHARS) throw new BallotError(path, `must be at most ${TEXT_MAX_CHARS} characters`);
}
