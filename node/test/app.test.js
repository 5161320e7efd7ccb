import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { buildApp } from '../src/app.js';

const app = buildApp();
after(() => app.close());

test('GET /healthz answers 200 with status ok', async () => {
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('unknown routes answer 404', async () => {
  const res = await app.inject({ method: 'GET', url: '/nope' });
  assert.equal(res.statusCode, 404);
});
