import assert from 'node:assert/strict';
import { test } from 'node:test';

import { appWithFakes, counts, eventReader } from './helper.js';

const none = { count: 0, votes: 0 };

test('GET /api/stream pushes logs, results and status, then only what changed', async (t) => {
  const { app, stores } = appWithFakes({ streamIntervalMs: 20 });
  stores.logList = [{ id: 'a' }];
  stores.counts = counts(1);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  const res = await fetch(`${base}/api/stream`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
  const events = eventReader(res);
  t.after(() => events.cancel());

  assert.deepEqual(await events.next(), { event: 'logs', data: [{ id: 'a' }] });
  assert.deepEqual(await events.next(), { event: 'results', data: stores.counts });
  assert.deepEqual(await events.next(), { event: 'status', data: { mongo: 'up', redis: 'up' } });

  // Nothing changed for several polls, then the counts change: the next event says what changed.
  await new Promise((r) => setTimeout(r, 100));
  stores.counts = counts(2, [{ band: 'Alux Nahual', votes: 2 }]);
  const delta = (total, bands, albums = { set: [], gone: [] }) => ({
    event: 'results-delta',
    data: { total, bands, albums, otherBands: none, otherAlbums: none },
  });
  assert.deepEqual(await events.next(), delta(2, { set: [{ band: 'Alux Nahual', votes: 2 }], gone: [] }));

  stores.logList = [{ id: 'b' }, { id: 'a' }];
  assert.deepEqual(await events.next(), { event: 'logs', data: stores.logList });

  // A store going down is a status event; its data stays as last sent until it is back.
  stores.redisUp = false;
  assert.deepEqual(await events.next(), { event: 'status', data: { mongo: 'up', redis: 'down' } });
  stores.counts = counts(3, [{ band: 'Bohemia Suburbana', votes: 3 }]);
  stores.redisUp = true;
  assert.deepEqual(
    await events.next(),
    delta(3, { set: [{ band: 'Bohemia Suburbana', votes: 3 }], gone: [{ band: 'Alux Nahual' }] }),
  );
  assert.deepEqual(await events.next(), { event: 'status', data: { mongo: 'up', redis: 'up' } });
});

test('a new client gets the current state at once; closing the app ends open streams', async () => {
  const { app, stores } = appWithFakes({ streamIntervalMs: 20 });
  stores.logList = [{ id: 'x' }];
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const first = eventReader(await fetch(`${base}/api/stream`));
  await first.until('status');

  const second = eventReader(await fetch(`${base}/api/stream`));
  assert.deepEqual(await second.next(), { event: 'logs', data: [{ id: 'x' }] });

  await app.close();
  await assert.rejects(first.until('never', () => false, 2000), /stream ended/);
  await assert.rejects(second.until('never', () => false, 2000), /stream ended/);
});

test('a client connecting after changes gets the whole current table as results', async () => {
  const { app, stores } = appWithFakes({ streamIntervalMs: 20 });
  stores.counts = counts(1);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const first = eventReader(await fetch(`${base}/api/stream`));
  await first.until('results');
  stores.counts = counts(5, [{ band: 'Viernes Verde', votes: 5 }]);
  await first.until('results-delta');

  const second = eventReader(await fetch(`${base}/api/stream`));
  assert.deepEqual(await second.until('results'), stores.counts);
  await app.close();
});
