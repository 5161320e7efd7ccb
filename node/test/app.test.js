import assert from 'node:assert/strict';
import { test } from 'node:test';

import { appWithFakes } from './helper.js';

const { app, stores } = appWithFakes();

function log(i) {
  return {
    id: `vote-${i}`,
    name: 'Alux Nahual',
    album: 'Conquista',
    year: 1982,
    rank: 1 + (i % 10),
    route: i % 2 ? 'grpc' : 'wasm',
    accepted_at: new Date(Date.UTC(2026, 10, 23, 12, 0, i)).toISOString(),
    counted_at: new Date(Date.UTC(2026, 10, 23, 12, 0, i + 1)).toISOString(),
  };
}
stores.logList = Array.from({ length: 150 }, (_, i) => log(149 - i));
stores.counts = {
  total: 3,
  bands: [{ band: 'Alux Nahual', votes: 3 }],
  albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 3 }],
};

test('GET /healthz answers 200 with status ok', async () => {
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('GET /api/logs gives 20 logs by default, as the store orders them', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/logs' });
  assert.equal(res.statusCode, 200);
  const { logs } = res.json();
  assert.equal(logs.length, 20);
  assert.deepEqual(logs[0], log(149));
});

test('GET /api/logs?limit=N gives N logs, up to 20', async () => {
  for (const [limit, want] of [['1', 1], ['7', 7], ['20', 20], ['007', 7]]) {
    const res = await app.inject({ method: 'GET', url: `/api/logs?limit=${limit}` });
    assert.equal(res.statusCode, 200, limit);
    assert.equal(res.json().logs.length, want, limit);
  }
});

test('bad query parameters answer 400 naming the parameter', async () => {
  const cases = [
    ['/api/logs?limit=0', 'limit'],
    ['/api/logs?limit=21', 'limit'],
    ['/api/logs?limit=-1', 'limit'],
    ['/api/logs?limit=2.5', 'limit'],
    ['/api/logs?limit=abc', 'limit'],
    ['/api/logs?limit=', 'limit'],
    ['/api/logs?limit=1e2', 'limit'],
    ['/api/logs?limit=99999999999999999999', 'limit'],
    ['/api/logs?limit=5&limit=6', 'limit'],
    ['/api/logs?limt=5', 'limt'],
    ['/api/results?band=x', 'band'],
    ['/api/stream?x=1', 'x'],
  ];
  for (const [url, field] of cases) {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 400, url);
    assert.match(res.headers['content-type'], /^application\/json/, url);
    const body = res.json();
    assert.equal(body.field, field, url);
    assert.match(body.error, new RegExp(`^${field}: `), url);
  }
});

test('GET /api/results gives the counts', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/results' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), stores.counts);
});

test('a store that is down answers 503 with Retry-After, and recovery needs no restart', async (t) => {
  t.after(() => {
    stores.mongoUp = true;
    stores.redisUp = true;
  });
  stores.mongoUp = false;
  let res = await app.inject({ method: 'GET', url: '/api/logs' });
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers['retry-after'], '1');
  assert.deepEqual(res.json(), { error: 'mongo unavailable' });
  res = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { error: 'not ready: mongo unavailable' });
  // The counts do not need MongoDB.
  res = await app.inject({ method: 'GET', url: '/api/results' });
  assert.equal(res.statusCode, 200);

  stores.redisUp = false;
  res = await app.inject({ method: 'GET', url: '/api/results' });
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { error: 'redis unavailable' });
  res = await app.inject({ method: 'GET', url: '/readyz' });
  assert.deepEqual(res.json(), { error: 'not ready: mongo unavailable, redis unavailable' });

  stores.mongoUp = true;
  stores.redisUp = true;
  res = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ready' });
  res = await app.inject({ method: 'GET', url: '/api/logs?limit=2' });
  assert.equal(res.statusCode, 200);
});

test('unknown routes answer 404 with a JSON error', async () => {
  const res = await app.inject({ method: 'GET', url: '/nope?x=1' });
  assert.equal(res.statusCode, 404);
  assert.deepEqual(res.json(), { error: 'no such path: /nope' });
});

test('other methods are not routes', async () => {
  const res = await app.inject({ method: 'POST', url: '/api/logs' });
  assert.equal(res.statusCode, 404);
});
