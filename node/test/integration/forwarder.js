// A TCP forwarder the integration tests put between the API and a real store, so a test can take
// the store away (refuse and cut every connection, as a crashed or unreachable server does) and
// bring it back, while the store itself keeps its data and other tests keep using it.
import net from 'node:net';

/**
 * @param {string} url the store's URL (redis://host:port or mongodb://host:port/)
 * @returns {Promise<{ url: string, down(): Promise<void>, up(): Promise<void>, close(): Promise<void> }>}
 */
export async function forwarder(url) {
  const target = new URL(url);
  const sockets = new Set();
  let server = null;
  let port = 0;

  function track(socket) {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  }

  // Both are idempotent: a test's cleanup may bring up a store the test already brought back.
  async function up() {
    if (server) return;
    server = net.createServer((client) => {
      const store = net.connect(Number(target.port), target.hostname);
      track(client);
      track(store);
      client.on('error', () => store.destroy());
      store.on('error', () => client.destroy());
      client.pipe(store).pipe(client);
    });
    const listening = server;
    await new Promise((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(port, '127.0.0.1', resolve);
    });
    port = listening.address().port;
  }

  async function down() {
    if (!server) return;
    const closed = new Promise((resolve) => server.close(resolve));
    server = null;
    for (const s of sockets) s.destroy();
    await closed;
  }

  await up();
  const local = new URL(url);
  local.hostname = '127.0.0.1';
  local.port = String(port);
  return { url: local.toString(), up, down, close: down };
}
