import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BadRequestError } from '../src/errors.js';
import { DEFAULT_LIMIT, MAX_LIMIT, parseLogsQuery } from '../src/query.js';

test('limit defaults to 20 and accepts 1 to 20', () => {
  assert.equal(DEFAULT_LIMIT, 20);
  assert.equal(MAX_LIMIT, 20);
  assert.deepEqual(parseLogsQuery({}), { limit: 20 });
  assert.deepEqual(parseLogsQuery({ limit: '1' }), { limit: 1 });
  assert.deepEqual(parseLogsQuery({ limit: '20' }), { limit: 20 });
});

test('anything else is a BadRequestError naming the field', () => {
  for (const query of [{ limit: '0' }, { limit: '21' }, { limit: ' 5' }, { limit: '+5' }, { limit: ['1', '2'] }, { other: '1' }]) {
    assert.throws(() => parseLogsQuery(query), (err) => {
      assert.ok(err instanceof BadRequestError);
      assert.equal(err.field, Object.keys(query)[0]);
      return true;
    });
  }
});
