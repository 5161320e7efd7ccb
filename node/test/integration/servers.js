// Real store processes a test can kill and start again: a Redis server (the toolchain's
// redis-server) and the MongoDB-wire server (FerretDB, the stack's own build, at $FERRETDB), each
// on a port and data directory of its own, so the stack's shared servers stay untouched.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../helper.js';

async function accepting(port, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(socket.end() && true));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A server process that start() runs (and waits for until it accepts connections) and kill()
 * ends at once with SIGKILL, as a crash would: no goodbye to its clients.
 */
async function server(name, command) {
  const port = await freePort();
  const dir = mkdtempSync(join(process.env.TEST_TMPDIR ?? tmpdir(), `${name}-`));
  const args = command(port, dir);
  let child = null;
  return {
    port,
    async start() {
      child = spawn(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
      const exited = new Promise((_, reject) =>
        child.once('exit', (code) => reject(new Error(`${name} exited at start (${code})`))),
      );
      await Promise.race([accepting(port), exited]);
    },
    async kill() {
      if (!child || child.exitCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    },
  };
}

export function redisServer() {
  return server('redis', (port, dir) => [
    'redis-server', '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--loglevel', 'warning',
  ]);
}

export function ferretdb() {
  const program = process.env.FERRETDB;
  if (!program) throw new Error('FERRETDB is not set: run this test with tools/bazel test //node:integration_test');
  return server('ferretdb', (port, dir) => [program, '-listen', `127.0.0.1:${port}`, '-data-dir', dir]);
}
