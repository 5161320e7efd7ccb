import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { configFromEnv } from '../src/config.js';

const BALLOT_FILE = fileURLToPath(new URL('../proto/ballot.json', import.meta.url));

test('defaults point at a local //:up stack', () => {
  assert.deepEqual(configFromEnv({}), {
    host: '0.0.0.0',
    port: 3000,
    mongoUrl: 'mongodb://127.0.0.1:27017/',
    redisUrl: 'redis://127.0.0.1:6379',
    logLevel: 'info',
    resultsTop: 20,
    ballot: null,
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
    TALLY_BALLOT: BALLOT_FILE,
  });
  const { ballot, ...rest } = config;
  assert.deepEqual(rest, {
    host: '127.0.0.1',
    port: 8123,
    mongoUrl: 'mongodb://db:1/',
    redisUrl: 'redis://r:2',
    logLevel: 'warn',
    resultsTop: 5,
  });
  assert.equal(ballot.bands[0].name, 'Alux Nahual');
});

test('a bad PORT is an error naming it', () => {
  for (const port of ['', 'http', '70000', '-1']) {
    assert.throws(() => configFromEnv({ PORT: port }), /^Error: PORT: /);
  }
});

test('TALLY_BALLOT off or unset is no ballot; a malformed ballot file is an error naming it', () => {
  assert.equal(configFromEnv({ TALLY_BALLOT: 'off' }).ballot, null);
  assert.throws(() => configFromEnv({ TALLY_BALLOT: '/nonexistent/ballot.json' }), /^Error: ballot \/nonexistent\/ballot\.json: /);
});
