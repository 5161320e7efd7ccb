// The API's ballot reader against the contract, proto/ballot.json, and against the shared table of
// ballot files the producers run too (proto/ballot_cases.json).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { BALLOT_OFF, BallotError, loadBallot, parseBallot } from '../src/ballot.js';
import { appWithFakes } from './helper.js';

const BALLOT_FILE = fileURLToPath(new URL('../proto/ballot.json', import.meta.url));
const contract = JSON.parse(readFileSync(BALLOT_FILE, 'utf8'));

test('proto/ballot.json loads as its bands, albums and years, without the description', () => {
  assert.deepEqual(loadBallot(BALLOT_FILE), { bands: contract.bands });
});

test('unset, empty or off is no ballot', () => {
  for (const path of [undefined, '', BALLOT_OFF]) assert.equal(loadBallot(path), null);
});

// The ballot file's rules as the producers run them: every case of the shared table, the same
// verdict and, for a refused file, the same path.
const CASES_FILE = fileURLToPath(new URL('../proto/ballot_cases.json', import.meta.url));
const { cases } = JSON.parse(readFileSync(CASES_FILE, 'utf8'));

test('the shared ballot table has cases', () => assert.ok(cases.length > 0));

for (const c of cases) {
  test(`ballot_cases.json: ${c.description}`, () => {
    const text = 'text' in c ? c.text : JSON.stringify(c.ballot);
    if (c.valid) {
      parseBallot(text);
      return;
    }
    assert.throws(() => parseBallot(text), (err) => err instanceof BallotError && err.path === c.path);
  });
}

test('a malformed file is an error naming the file and the rule', () => {
  const file = join(mkdtempSync(join(process.env.TEST_TMPDIR ?? tmpdir(), 'ballot-')), 'ballot.json');
  const band = { name: 'B', albums: [{ album: 'A', year: 1990 }] };
  writeFileSync(file, JSON.stringify({ bands: [band, band] }));
  assert.throws(() => loadBallot(file), { message: `ballot ${file}: bands[1].name: band "B" is listed twice` });
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
