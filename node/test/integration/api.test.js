// The API over the real MongoDB-wire server (FerretDB) and Redis that `stack exec` starts
// (//node:integration_test, servers redis and mongo): the data is written as the consumer writes
// it (docs/data.md) and read back through HTTP. Stores going down: outage.test.js.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';

import { buildApp } from '../../src/app.js';
import { RECENT_COLLECTION, RECENT_DATABASE } from '../../src/logs.js';
import { BY_BAND, TOTAL, bandAlbums } from '../../src/redis-keys.js';
import { resultsReader } from '../../src/results.js';
import { openStores } from '../../src/stores.js';
import { eventReader } from '../helper.js';

for (const name of ['MONGO_URL', 'REDIS_URL']) {
  if (!process.env[name]) throw new Error(`${name} is not set: run this test with tools/bazel test //node:integration_test`);
}

const mongo = new MongoClient(process.env.MONGO_URL);
const redis = new Redis(process.env.REDIS_URL);
const db = mongo.db('tally');
const recent = mongo.db(RECENT_DATABASE).collection(RECENT_COLLECTION);
let stores, app, base;

const start = Date.UTC(2026, 10, 23, 12, 0, 0);

/** A log document as the consumer writes it; i orders them by accept time. */
function doc(i, id = `vote-${String(i).padStart(4, '0')}`) {
  return {
    _id: id,
    name: i % 3 ? 'Alux Nahual' : 'Bohemia Suburbana',
    album: i % 3 ? 'Conquista' : 'Sombras en el Jardín',
    year: i % 3 ? 1982 : 1993,
    rank: 1 + (i % 10),
    route: i % 2 ? 'grpc' : 'wasm',
    accepted_at: new Date(start + i * 1000),
    counted_at: new Date(start + i * 1000 + 50),
    partition: i % 6,
    offset: i,
  };
}

async function get(path) {
  const res = await fetch(base + path);
  return { status: res.status, headers: res.headers, body: await res.json() };
}

before(async () => {
  await recent.deleteMany({});
  await db.collection('logs').deleteMany({});
  await redis.flushall();
  // 150 logs in logs_recent; two of them accepted in the same millisecond, ordered by vote id.
  const docs = Array.from({ length: 150 }, (_, i) => doc(i));
  docs.push(doc(149, 'vote-0149-b'));
  await recent.insertMany(docs);
  // The newest-N query reads logs_recent only (docs/data.md): a log only in logs is not shown.
  await db.collection('logs').insertMany([...docs, doc(500, 'only-in-logs')]);

  await redis.set(TOTAL, '151');
  await redis.hset(BY_BAND, 'Alux Nahual', '100', 'Bohemia Suburbana', '51');
  await redis.hset(bandAlbums('Alux Nahual'), 'Conquista', '60', 'Alto al Fuego', '40');
  await redis.hset(bandAlbums('Bohemia Suburbana'), 'Sombras en el Jardín', '51');

  stores = openStores({ mongoUrl: process.env.MONGO_URL, redisUrl: process.env.REDIS_URL });
  app = buildApp({ ...stores, streamIntervalMs: 100 });
  stores.watch(app.log);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  await stores?.close();
  await mongo.close();
  redis.disconnect();
});

test('GET /api/logs: the newest 20 of logs_recent, newest first, ties broken by vote id', async () => {
  const { status, body } = await get('/api/logs');
  assert.equal(status, 200);
  assert.equal(body.logs.length, 20);
  assert.deepEqual(
    body.logs.slice(0, 3).map((l) => l.id),
    ['vote-0149-b', 'vote-0149', 'vote-0148'],
  );
  assert.deepEqual(body.logs[1], {
    id: 'vote-0149',
    name: 'Alux Nahual',
    album: 'Conquista',
    year: 1982,
    rank: 10,
    route: 'grpc',
    accepted_at: '2026-11-23T12:02:29.000Z',
    counted_at: '2026-11-23T12:02:29.050Z',
  });
  assert.equal(body.logs.at(-1).id, 'vote-0131');
});

test('GET /api/logs?limit=5 gives the newest 5; limit=21 is 400 naming limit', async () => {
  let res = await get('/api/logs?limit=5');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.logs.map((l) => l.id), ['vote-0149-b', 'vote-0149', 'vote-0148', 'vote-0147', 'vote-0146']);
  res = await get('/api/logs?limit=21');
  assert.equal(res.status, 400);
  assert.equal(res.body.field, 'limit');
});

test('GET /api/results: total, bands and albums from Redis, most votes first', async () => {
  const { status, body } = await get('/api/results');
  assert.equal(status, 200);
  assert.deepEqual(body, {
    total: 151,
    bands: [
      { band: 'Alux Nahual', votes: 100 },
      { band: 'Bohemia Suburbana', votes: 51 },
    ],
    albums: [
      { band: 'Alux Nahual', album: 'Conquista', votes: 60 },
      { band: 'Bohemia Suburbana', album: 'Sombras en el Jardín', votes: 51 },
      { band: 'Alux Nahual', album: 'Alto al Fuego', votes: 40 },
    ],
    otherBands: { count: 0, votes: 0 },
    otherAlbums: { count: 0, votes: 0 },
  });
});

test('results name the top bands and albums and sum the rest (RESULTS_TOP)', async () => {
  assert.deepEqual(await resultsReader(redis, { top: 1 }).read(), {
    total: 151,
    bands: [{ band: 'Alux Nahual', votes: 100 }],
    albums: [{ band: 'Alux Nahual', album: 'Conquista', votes: 60 }],
    otherBands: { count: 1, votes: 51 },
    otherAlbums: { count: 2, votes: 91 },
  });
});

test('GET /api/stream pushes a new log and new counts as the consumer writes them', async (t) => {
  const events = eventReader(await fetch(`${base}/api/stream`));
  t.after(() => events.cancel());
  const first = await events.until('logs');
  assert.equal(first[0].id, 'vote-0149-b');
  await events.until('results', (r) => r.total === 151);

  await recent.insertOne(doc(200));
  await redis.multi().incr(TOTAL).hincrby(BY_BAND, 'Alux Nahual', 1).hincrby(bandAlbums('Alux Nahual'), 'Conquista', 1).exec();

  const logs = await events.until('logs', (l) => l[0].id === 'vote-0200');
  assert.equal(logs.length, 20);
  // Only what changed: Alux Nahual and its Conquista, not the whole table.
  const delta = await events.until('results-delta', (d) => d.total === 152);
  assert.deepEqual(delta.bands, { set: [{ band: 'Alux Nahual', votes: 101 }], gone: [] });
  assert.deepEqual(delta.albums, { set: [{ band: 'Alux Nahual', album: 'Conquista', votes: 61 }], gone: [] });
});
