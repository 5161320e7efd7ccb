// The API's Redis key names against the single contract, proto/redis_keys.json: a change there
// (or here) that the other side did not follow fails this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BY_BAND, TOTAL, bandAlbums } from '../src/redis-keys.js';

// npm_test copies files from other packages to their workspace-relative path.
const contract = JSON.parse(readFileSync(new URL('../proto/redis_keys.json', import.meta.url), 'utf8'));

function key(name) {
  const found = contract.keys.find((k) => k.name === name);
  assert.ok(found, `proto/redis_keys.json has no key named ${name}`);
  return found;
}

function fill(template) {
  return template.replace(/\{(\w+)\}/g, (_, name) => contract.examples[name]);
}

const READS = ['total', 'by_band', 'band_albums'];

test('every key the API reads matches the contract, with its type and the API as a reader', () => {
  const band = contract.examples.band;
  for (const [name, built, type] of [
    ['total', TOTAL, 'string'],
    ['by_band', BY_BAND, 'hash'],
    ['band_albums', bandAlbums(band), 'hash'],
  ]) {
    const k = key(name);
    assert.equal(built, fill(k.template), name);
    assert.equal(k.type, type, name);
    assert.ok(k.readers.includes('api'), `${name} does not list the api among its readers`);
  }
});

test('the contract lists the api as a reader of exactly the keys it reads', () => {
  const listed = contract.keys.filter((k) => k.readers.includes('api')).map((k) => k.name);
  assert.deepEqual(listed.sort(), [...READS].sort());
});

test('the fields the API relies on: bands in by_band, albums in band_albums', () => {
  assert.equal(key('by_band').field, '{band}');
  assert.equal(key('band_albums').field, '{album}');
});
