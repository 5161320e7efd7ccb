import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createLive } from '../src/live.js';
import { appWithFakes, counts, fakeStores } from './helper.js';

test('GET /api/live is the whole page in one document a browser and a CDN may keep a second', async () => {
  const { app, stores } = appWithFakes();
  stores.logList = [{ id: 'vote-2' }, { id: 'vote-1' }];
  stores.counts = counts(2, [{ band: 'Alux Nahual', votes: 2 }]);
  const res = await app.inject({ method: 'GET', url: '/api/live' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.equal(res.headers['cache-control'], 'public, max-age=1, s-maxage=1');
  const doc = res.json();
  assert.deepEqual(doc.logs, stores.logList);
  assert.deepEqual(doc.results, stores.counts);
  assert.deepEqual(doc.status, { mongo: 'up', redis: 'up' });
  assert.ok(!Number.isNaN(Date.parse(doc.at)));

  const again = await app.inject({ method: 'GET', url: '/api/live', headers: { 'if-none-match': res.headers.etag } });
  assert.equal(again.statusCode, 304);
  const bad = await app.inject({ method: 'GET', url: '/api/live?x=1' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().field, 'x');
});

test('one read of the stores serves every request for maxAgeMs, however many come at once', async () => {
  const stores = fakeStores();
  let reads = 0;
  const results = { read: async () => (reads++, stores.counts) };
  let clock = 0;
  const live = createLive({ logs: stores.logs, results, maxAgeMs: 1000, now: () => clock });
  const docs = await Promise.all(Array.from({ length: 1000 }, () => live.get()));
  assert.equal(reads, 1);
  assert.ok(docs.every((d) => d === docs[0]));
  clock = 999;
  await live.get();
  assert.equal(reads, 1);
  clock = 1000;
  stores.counts = counts(5);
  const next = await live.get();
  assert.equal(reads, 2);
  assert.equal(JSON.parse(next.body).results.total, 5);
  assert.notEqual(next.etag, docs[0].etag);
});

test('a store that is down keeps its last data and says down; the other still updates', async () => {
  const stores = fakeStores();
  let clock = 0;
  const live = createLive({ logs: stores.logs, results: stores.results, maxAgeMs: 1000, now: () => clock });
  stores.redisUp = false;
  let doc = JSON.parse((await live.get()).body);
  assert.equal(doc.results, null);
  assert.deepEqual(doc.status, { mongo: 'up', redis: 'down' });

  clock += 1000;
  stores.redisUp = true;
  stores.counts = counts(4);
  assert.equal(JSON.parse((await live.get()).body).results.total, 4);

  clock += 1000;
  stores.redisUp = false;
  stores.mongoUp = false;
  stores.counts = counts(9);
  doc = JSON.parse((await live.get()).body);
  assert.equal(doc.results.total, 4);
  assert.deepEqual(doc.logs, []);
  assert.deepEqual(doc.status, { mongo: 'down', redis: 'down' });
});
