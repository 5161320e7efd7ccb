// End to end: votes go in at both producers and come out on the page. Run by //vue:e2e_test
// under `stack exec`, which starts Kafka, Redis, FerretDB, both producer routes, the consumer,
// the API and the webapp's server, and sets their URLs. Headless Chromium (the toolchain's
// /usr/bin/chromium, driven by playwright-core; nothing is downloaded) loads the page through the
// real proxy and checks the last 20 logs and both charts against what was sent, then sends one
// more vote and watches the page update over the event stream without a reload. The stack gives
// the API the contest's ballot (proto/ballot.json): its bands and albums without votes show as
// zero bars after the counted ones. Screenshots go
// to $TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/vue/e2e_test/test.outputs/).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const env = {};
for (const name of ['GRPC_FRONT_URL', 'WASM_PRODUCER_URL', 'API_URL', 'WEB_URL']) {
  env[name] = process.env[name];
  if (!env[name]) throw new Error(`${name} is not set: run this test with tools/bazel test //vue:e2e_test`);
}
const outputs = process.env.TEST_UNDECLARED_OUTPUTS_DIR ?? join(process.cwd(), 'e2e-outputs');
mkdirSync(outputs, { recursive: true });

// Real albums (as the other tests use); how many votes each gets, split over both routes.
const ALBUMS = [
  { name: 'Alux Nahual', album: 'Conquista', year: 1982, votes: 13 },
  { name: 'Alux Nahual', album: 'Alto al Fuego', year: 1987, votes: 8 },
  { name: 'Bohemia Suburbana', album: 'Sombras en el Jardín', year: 1993, votes: 9 },
];
const TOTAL = ALBUMS.reduce((n, a) => n + a.votes, 0);

// The ballot the stack gives the producers and the API.
const BALLOT = JSON.parse(readFileSync(new URL('../proto/ballot.json', import.meta.url), 'utf8'));
// A band on the ballot that no vote here names.
const UNVOTED_BAND = 'Viernes Verde';

async function vote(producer, { name, album, year }, rank) {
  const res = await fetch(`${producer}/votes`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, album, year, rank }),
  });
  const body = await res.json();
  assert.equal(res.status, 202, `${producer}: ${JSON.stringify(body)}`);
  return body.id;
}

async function results() {
  const res = await fetch(`${env.API_URL}/api/results`);
  return res.ok ? res.json() : null;
}

/** Polls check until it returns a truthy value. */
async function waitFor(what, check, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

let browser;

before(async () => {
  let i = 0;
  for (const album of ALBUMS) {
    for (let n = 0; n < album.votes; n++, i++) {
      // Alternate the routes so both producers' votes show up on the page.
      await vote(i % 2 ? env.GRPC_FRONT_URL : env.WASM_PRODUCER_URL, album, 1 + (i % 10));
    }
  }
  await waitFor(`${TOTAL} votes counted`, async () => (await results())?.total === TOTAL);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Bazel's sandbox (bubblewrap) leaves Chromium no room for its own namespace sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
});

after(async () => {
  await browser?.close();
});

/** What the page shows, read from the DOM. */
async function pageState(page) {
  return page.evaluate(() => {
    const bars = (label) =>
      [...document.querySelectorAll(`figure[aria-label="${label}"] li`)].map((li) => [
        li.dataset.label,
        Number(li.dataset.value),
        li.querySelector('.vote-chart__value').textContent,
      ]);
    return {
      lines: [...document.querySelectorAll('[role="log"] li')].map((li) => li.textContent),
      state: document.querySelector('[data-testid="stream-state"]')?.textContent,
      total: document.querySelector('[data-testid="total"]')?.textContent,
      bands: bars('Votes per band'),
      albums: bars('Votes per album'),
      scrollWidth: document.documentElement.scrollWidth,
    };
  });
}

/** The charts for these votes: the counted names, most votes first, then the ballot's others at 0. */
function expectedCharts(albums = ALBUMS) {
  const bands = new Map();
  for (const a of albums) bands.set(a.name, (bands.get(a.name) ?? 0) + a.votes);
  const counted = [...bands].sort((x, y) => y[1] - x[1]).map(([band, votes]) => [band, votes, `${votes} votes`]);
  const countedAlbums = [...albums]
    .sort((x, y) => y.votes - x.votes)
    .map((a) => [`${a.album} (${a.name})`, a.votes, `${a.votes} votes`]);
  const zero = (label) => [label, 0, '0 votes'];
  const unlisted = (rows) => (label) => !rows.some((r) => r[0] === label);
  return {
    bands: [...counted, ...BALLOT.bands.map((b) => b.name).filter(unlisted(counted)).map(zero)],
    albums: [
      ...countedAlbums,
      ...BALLOT.bands
        .flatMap((b) => b.albums.map((a) => `${a.album} (${b.name})`))
        .filter(unlisted(countedAlbums))
        .map(zero),
    ],
  };
}

/** Waits until the page has the ballot (a zero bar for a band without votes). */
async function waitForBallot(page) {
  await page.waitForFunction(
    (band) => document.querySelector(`figure[aria-label="Votes per band"] li[data-label="${band}"]`),
    UNVOTED_BAND,
  );
}

test('the page shows the last 20 logs and both charts with the counted votes, then updates live', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(env.WEB_URL);
  await page.waitForFunction(() => document.querySelectorAll('[role="log"] li').length === 20);
  await waitForBallot(page);

  // The page's 20 lines are the API's newest 20, oldest first (newest at the bottom).
  const api = await (await fetch(`${env.API_URL}/api/logs?limit=20`)).json();
  let shown = await pageState(page);
  assert.equal(shown.state, 'live');
  assert.equal(shown.lines.length, 20);
  assert.deepEqual(
    shown.lines.map((l) => l.split(' ').at(-1)),
    api.logs.map((l) => l.id).reverse(),
  );
  const routes = new Set(api.logs.map((l) => l.route));
  assert.deepEqual([...routes].sort(), ['grpc', 'wasm']);
  assert.equal(shown.total, `${TOTAL} votes counted`);
  const want = expectedCharts();
  assert.deepEqual(shown.bands, want.bands);
  assert.deepEqual(shown.albums, want.albums);
  assert.deepEqual(
    shown.bands.find(([band]) => band === UNVOTED_BAND),
    [UNVOTED_BAND, 0, '0 votes'],
    'a ballot band without votes is a zero bar',
  );
  await page.screenshot({ path: join(outputs, 'webapp-desktop.png'), fullPage: true });

  // One more vote, with the page open: it arrives over the stream, no reload.
  const id = await vote(env.GRPC_FRONT_URL, ALBUMS[2], 10);
  await page.waitForFunction(
    (newest) => document.querySelector('[role="log"] li:last-child')?.textContent.endsWith(newest),
    id,
    { timeout: 60000 },
  );
  await page.waitForFunction((n) => document.querySelector('[data-testid="total"]')?.textContent === n, `${TOTAL + 1} votes counted`);
  shown = await pageState(page);
  assert.equal(shown.lines.length, 20);
  const now = ALBUMS.map((a, i) => (i === 2 ? { ...a, votes: a.votes + 1 } : a));
  assert.deepEqual(shown.bands, expectedCharts(now).bands);
  assert.deepEqual(shown.bands.slice(0, 2), [
    ['Alux Nahual', 21, '21 votes'],
    ['Bohemia Suburbana', 10, '10 votes'],
  ]);
  await page.close();
});

test('at 375 px wide everything fits without sideways scrolling', async () => {
  const page = await browser.newPage({ viewport: { width: 375, height: 812 }, isMobile: true });
  await page.goto(env.WEB_URL);
  await page.waitForFunction(() => document.querySelectorAll('[role="log"] li').length === 20);
  await waitForBallot(page);
  const shown = await pageState(page);
  assert.ok(shown.scrollWidth <= 375, `the page is ${shown.scrollWidth} px wide at a 375 px viewport`);
  // Every vote here is on the ballot, so the charts have one bar per ballot band and album.
  assert.equal(shown.bands.length, BALLOT.bands.length);
  assert.equal(shown.albums.length, BALLOT.bands.flatMap((b) => b.albums).length);
  await page.screenshot({ path: join(outputs, 'webapp-375px.png'), fullPage: true });
  await page.close();
});
