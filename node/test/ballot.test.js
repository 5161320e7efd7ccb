// The API's ballot reader against the contract, proto/ballot.json, and against the malformed
// ballots the producers refuse at start (go/internal/vote/ballot.go's rules).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { BALLOT_OFF, loadBallot, parseBallot } from '../src/ballot.js';
import { appWithFakes } from './helper.js';

const BALLOT_FILE = fileURLToPath(new URL('../proto/ballot.json', import.meta.url));
const contract = JSON.parse(readFileSync(BALLOT_FILE, 'utf8'));

test('proto/ballot.json loads as its bands, albums and years, without the description', () => {
  assert.deepEqual(loadBallot(BALLOT_FILE), { bands: contract.bands });
});

test('unset, empty or off is no ballot', () => {
  for (const path of [undefined, '', BALLOT_OFF]) assert.equal(loadBallot(path), null);
});

const band = (name, albums = [{ album: 'A', year: 1990 }]) => ({ name, albums });
const malformed = {
  'not JSON': ['{"bands": [', /: decode: /],
  'no bands': [{ bands: [] }, /: no bands$/],
  'bands missing': [{ description: 'x' }, /: no bands$/],
  'an unknown top-level field': [{ bands: [band('B')], band: [] }, /unknown field "band"/],
  'an unknown band field': [{ bands: [{ ...band('B'), year: 1 }] }, /unknown field "year"/],
  'an unknown album field': [{ bands: [band('B', [{ album: 'A', year: 1990, rank: 1 }])] }, /unknown field "rank"/],
  'a band without albums': [{ bands: [band('B', [])] }, /band "B" has no albums/],
  'a band listed twice': [{ bands: [band('B'), band('B')] }, /band "B" is listed twice/],
  'an untrimmed band': [{ bands: [band(' B')] }, /band " B" has leading or trailing space/],
  'an empty band name': [{ bands: [band('')] }, /must not be empty/],
  'a band name over 100 characters': [{ bands: [band('x'.repeat(101))] }, /at most 100 characters/],
  'a band name that is not text': [{ bands: [band(7)] }, /must be a string/],
  'an album listed twice': [{ bands: [band('B', [{ album: 'A', year: 1990 }, { album: 'A', year: 1991 }])] }, /album "A" of "B" is listed twice/],
  'an untrimmed album': [{ bands: [band('B', [{ album: 'A ', year: 1990 }])] }, /album "A " of "B" has leading or trailing space/],
  'a year before 1900': [{ bands: [band('B', [{ album: 'A', year: 1899 }])] }, /year 1899 is not an integer from 1900 on/],
  'a year that is not an integer': [{ bands: [band('B', [{ album: 'A', year: '1990' }])] }, /year "1990" is not an integer/],
  'a band that is not an object': [{ bands: ['B'] }, /a band must be an object/],
};

for (const [name, [ballot, reason]] of Object.entries(malformed)) {
  test(`refused: ${name}`, () => {
    const text = typeof ballot === 'string' ? ballot : JSON.stringify(ballot);
    assert.throws(() => parseBallot(text), reason);
  });
}

test('a malformed file is an error naming the file and the rule', () => {
  const file = join(mkdtempSync(join(process.env.TEST_TMPDIR ?? tmpdir(), 'ballot-')), 'ballot.json');
  writeFileSync(file, JSON.stringify({ bands: [band('B'), band('B')] }));
  assert.throws(() => loadBallot(file), { message: `ballot ${file}: band "B" is listed twice` });
  assert.throws(() => loadBallot(`${file}.missing`), new RegExp(`^Error: ballot ${file}\\.missing: ENOENT`));
});

test('GET /api/ballot serves the ballot, cacheable and revalidated by its ETag', async () => {
  const ballot = loadBallot(BALLOT_FILE);
  const { app } = appWithFakes({ ballot });
  const res = await app.inject({ method: 'GET', url: '/api/ballot' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.equal(res.headers['cache-control'], 'public, max-age=60');
  assert.deepEqual(res.json(), { bands: contract.bands });
  const again = await app.inject({ method: 'GET', url: '/api/ballot', headers: { 'if-none-match': res.headers.etag } });
  assert.equal(again.statusCode, 304);
  assert.equal(again.body, '');
  const stale = await app.inject({ method: 'GET', url: '/api/ballot', headers: { 'if-none-match': '"other"' } });
  assert.equal(stale.statusCode, 200);
  const query = await app.inject({ method: 'GET', url: '/api/ballot?x=1' });
  assert.equal(query.statusCode, 400);
  assert.equal(query.json().field, 'x');
});

test('GET /api/ballot without a ballot is a 404 saying so', async () => {
  const { app } = appWithFakes();
  const res = await app.inject({ method: 'GET', url: '/api/ballot' });
  assert.equal(res.statusCode, 404);
  assert.deepEqual(res.json(), { error: 'no ballot: TALLY_BALLOT is off' });
});
