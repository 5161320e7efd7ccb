// The API's own entry point (node src/server.js) over the real stores with the contest's ballot,
// proto/ballot.json, as the stack and Cloud Run give it (TALLY_BALLOT, a file path); and refusing
// to start on a malformed ballot file, naming it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { freePort } from '../helper.js';

for (const name of ['MONGO_URL', 'REDIS_URL']) {
  if (!process.env[name]) throw new Error(`${name} is not set: run this test with tools/bazel test //node:integration_test`);
}

const SERVER = fileURLToPath(new URL('../../src/server.js', import.meta.url));
const BALLOT_FILE = fileURLToPath(new URL('../../proto/ballot.json', import.meta.url));

/** Runs the API with TALLY_BALLOT=ballot; exited resolves to { code, stderr } when it ends. */
async function startAPI(ballot) {
  const port = await freePort();
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', TALLY_BALLOT: ballot },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
  return { base: `http://127.0.0.1:${port}`, child, exited };
}

async function getWhenUp(base, path, exited, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fetch(base + path);
    } catch (err) {
      const gone = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 100))]);
      if (gone) throw new Error(`the API exited (${gone.code}): ${gone.stderr}`);
      if (Date.now() > deadline) throw err;
    }
  }
}

test('GET /api/ballot serves proto/ballot.json, as the API read it at start', async (t) => {
  const api = await startAPI(BALLOT_FILE);
  t.after(async () => {
    api.child.kill('SIGTERM');
    await api.exited;
  });
  const res = await getWhenUp(api.base, '/api/ballot', api.exited);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=60');
  const { bands } = JSON.parse(readFileSync(BALLOT_FILE, 'utf8'));
  assert.deepEqual(await res.json(), { bands });
  const again = await fetch(`${api.base}/api/ballot`, { headers: { 'If-None-Match': res.headers.get('etag') } });
  assert.equal(again.status, 304);
});

test('the API started with TALLY_BALLOT=off answers /api/ballot with 404', async (t) => {
  const api = await startAPI('off');
  t.after(async () => {
    api.child.kill('SIGTERM');
    await api.exited;
  });
  const res = await getWhenUp(api.base, '/api/ballot', api.exited);
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'no ballot: TALLY_BALLOT is off' });
});

test('a malformed ballot file stops the API at start, naming the file', async () => {
  const file = join(mkdtempSync(join(process.env.TEST_TMPDIR ?? tmpdir(), 'ballot-')), 'ballot.json');
  const ballot = JSON.parse(readFileSync(BALLOT_FILE, 'utf8'));
  ballot.bands[1].albums = [];
  writeFileSync(file, JSON.stringify(ballot));
  const api = await startAPI(file);
  const { code, stderr } = await api.exited;
  assert.equal(code, 2);
  assert.equal(stderr.trim(), `api: bad settings: ballot ${file}: bands[1].albums: must be a non-empty array`);
});
