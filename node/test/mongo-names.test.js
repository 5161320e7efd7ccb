// Where the API reads the newest logs against the single contract, proto/mongo_names.json: the
// consumer's store (go/internal/votelog) is checked against the same file.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { RECENT_COLLECTION, RECENT_DATABASE } from '../src/logs.js';
import { MAX_LIMIT } from '../src/query.js';

// npm_test copies files from other packages to their workspace-relative path.
const names = JSON.parse(readFileSync(new URL('../proto/mongo_names.json', import.meta.url), 'utf8'));

test('the newest logs are read where the consumer writes them', () => {
  assert.deepEqual({ database: RECENT_DATABASE, collection: RECENT_COLLECTION }, names.recent);
});

test('the API asks for no more logs than the consumers keep newest', () => {
  assert.equal(MAX_LIMIT, names.newest_max);
});
