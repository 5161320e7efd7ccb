// src/server.js as a process: it starts with its stores unreachable (and says it is not ready),
// and SIGTERM stops it cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

import { freePort } from './helper.js';

test('node src/server.js serves from its settings, then exits 0 on SIGTERM', async (t) => {
  const port = await freePort();
  const dead = await freePort(); // nothing listens there: both stores are down
  const child = spawn(process.execPath, ['src/server.js'], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      MONGO_URL: `mongodb://127.0.0.1:${dead}/`,
      REDIS_URL: `redis://127.0.0.1:${dead}`,
      LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => child.kill('SIGKILL'));

  let health;
  for (const deadline = Date.now() + 10000; Date.now() < deadline; ) {
    health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
    if (health) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(health?.status, 200);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { error: 'not ready: mongo unavailable, redis unavailable' });

  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
});

test('a bad PORT stops it at start with exit 2, naming PORT', async () => {
  const child = spawn(process.execPath, ['src/server.js'], {
    env: { ...process.env, PORT: 'eighty' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /^api: bad settings: PORT: /);
});
