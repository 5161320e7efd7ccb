// The API's only entry point that listens: node src/server.js (HOST, PORT from the environment).
// SIGTERM/SIGINT close the server gracefully: in-flight requests finish, then the process exits.
import { buildApp } from './app.js';

const host = process.env.HOST ?? '0.0.0.0';
const port = Number.parseInt(process.env.PORT ?? '3000', 10);

const app = buildApp({ logger: true });

let closing = false;
async function shutdown(signal) {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, 'closing');
  try {
    await app.close();
    process.exit(0);
  } catch (err) {
    app.log.error(err, 'close failed');
    process.exit(1);
  }
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => void shutdown(signal));
}

try {
  await app.listen({ host, port });
} catch (err) {
  app.log.error(err);
  process.exit(1);
}
