import assert from 'node:assert/strict';
import { test } from 'node:test';

import { configFromEnv } from '../src/config.js';

test('defaults point at a local //:up stack', () => {
  assert.deepEqual(configFromEnv({}), {
    host: '0.0.0.0',
    port: 3000,
    mongoUrl: 'mongodb://127.0.0.1:27017/',
    redisUrl: 'redis://127.0.0.1:6379',
    logLevel: 'info',
    resultsTop: 20,
  });
});

test('the environment overrides every default', () => {
  const config = configFromEnv({
    HOST: '127.0.0.1',
    PORT: '8123',
    MONGO_URL: 'mongodb://db:1/',
    REDIS_URL: 'redis://r:2',
    LOG_LEVEL: 'warn',
    RESULTS_TOP: '5',
  });
  assert.deepEqual(config, {
    host: '127.0.0.1',
    port: 8123,
    mongoUrl: 'mongodb://db:1/',
    redisUrl: 'redis://r:2',
    logLevel: 'warn',
    resultsTop: 5,
  });
});

test('a bad PORT is an error naming it', () => {
  for (const port of ['', 'http', '70000', '-1']) {
    assert.throws(() => configFromEnv({ PORT: port }), /^Error: PORT: /);
  }
});
