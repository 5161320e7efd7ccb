// MongoDB and Redis crash (SIGKILL) under the running API and start again on the same port with
// the same data: the API answers 503 while each is down, names it in /readyz and in the stream's
// status event, and serves again after it is back, with no restart of its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';

import { buildApp } from '../../src/app.js';
import { RECENT_COLLECTION, RECENT_DATABASE } from '../../src/logs.js';
import { TOTAL } from '../../src/redis-keys.js';
import { openStores } from '../../src/stores.js';
import { eventReader } from '../helper.js';
import { ferretdb, redisServer } from './servers.js';

let mongoServer, redisProc, stores, app, base;

async function get(path) {
  const res = await fetch(base + path);
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/** Polls path until it answers status (a store coming back takes the drivers a moment). */
async function eventually(path, status, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await get(path);
    if (last.status === status) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${path}: still ${last.status} ${JSON.stringify(last.body)} after ${timeoutMs} ms, want ${status}`);
}

before(async () => {
  mongoServer = await ferretdb();
  redisProc = await redisServer();
  await mongoServer.start();
  await redisProc.start();
  const mongoUrl = `mongodb://127.0.0.1:${mongoServer.port}/`;
  const redisUrl = `redis://127.0.0.1:${redisProc.port}`;

  const mongo = new MongoClient(mongoUrl);
  await mongo.db(RECENT_DATABASE).collection(RECENT_COLLECTION).insertOne({
    _id: 'vote-1', name: 'Alux Nahual', album: 'Conquista', year: 1982, rank: 1, route: 'grpc',
    accepted_at: new Date(), counted_at: new Date(), partition: 0, offset: 0,
  });
  await mongo.close();
  const redis = new Redis(redisUrl);
  await redis.set(TOTAL, '1');
  redis.disconnect();

  stores = openStores({ mongoUrl, redisUrl });
  app = buildApp({ ...stores, streamIntervalMs: 200 });
  stores.watch(app.log);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
  await stores?.close();
  await mongoServer?.kill();
  await redisProc?.kill();
});

test('MongoDB killed: logs and readiness answer 503, counts still work; back, it serves again', async (t) => {
  const events = eventReader(await fetch(`${base}/api/stream`));
  t.after(() => events.cancel());
  await events.until('status', (s) => s.mongo === 'up' && s.redis === 'up');

  await mongoServer.kill();
  let res = await eventually('/api/logs', 503);
  assert.deepEqual(res.body, { error: 'mongo unavailable' });
  assert.equal(res.headers.get('retry-after'), '1');
  res = await get('/readyz');
  assert.equal(res.status, 503);
  assert.deepEqual(res.body, { error: 'not ready: mongo unavailable' });
  assert.equal((await get('/api/results')).status, 200);
  await events.until('status', (s) => s.mongo === 'down' && s.redis === 'up');

  await mongoServer.start();
  res = await eventually('/api/logs', 200);
  assert.deepEqual(res.body.logs.map((l) => l.id), ['vote-1']);
  await eventually('/readyz', 200);
  await events.until('status', (s) => s.mongo === 'up');
});

test('Redis killed: counts and readiness answer 503, logs still work; back, it serves again', async () => {
  await redisProc.kill();
  let res = await eventually('/api/results', 503);
  assert.deepEqual(res.body, { error: 'redis unavailable' });
  res = await get('/readyz');
  assert.equal(res.status, 503);
  assert.deepEqual(res.body, { error: 'not ready: redis unavailable' });
  assert.equal((await get('/api/logs')).status, 200);

  await redisProc.start();
  res = await eventually('/api/results', 200);
  assert.equal(res.body.total, 1);
  await eventually('/readyz', 200);
});
