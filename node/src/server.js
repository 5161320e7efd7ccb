// The API's only entry point that listens: node src/server.js. Settings come only from the
// environment (src/config.js: HOST, PORT, MONGO_URL, REDIS_URL, LOG_LEVEL, RESULTS_TOP, TALLY_BALLOT;
// a malformed ballot file stops it here, exit 2, naming the file).
// SIGTERM/SIGINT close the server gracefully: event streams end, in-flight requests finish,
// the store connections close, then the process exits.
import { buildApp } from './app.js';
import { configFromEnv } from './config.js';
import { openStores } from './stores.js';

let config;
try {
  config = configFromEnv(process.env);
} catch (err) {
  console.error(`api: bad settings: ${err.message}`);
  process.exit(2);
}

const stores = openStores(config);
const app = buildApp({ ...stores, ballot: config.ballot }, { logger: { level: config.logLevel } });
stores.watch(app.log);
app.addHook('onClose', () => stores.close());

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
  await app.listen({ host: config.host, port: config.port });
} catch (err) {
  app.log.error(err);
  process.exit(1);
}
