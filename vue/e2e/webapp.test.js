// End to end: votes go in at both producers and come out on the page. Run by //vue:e2e_test
// under `stack exec`, which starts Kafka, Redis, FerretDB, both producer routes, the consumer,
// the API and the webapp's server, and sets their URLs. Headless Chromium (the toolchain's
// /usr/bin/chromium, driven by playwright-core; nothing is downloaded) loads the page through the
// real proxy and checks the last 20 logs and both charts against what was sent, then sends one
// more vote and watches the page update from the live document (GET /api/live) without a reload. The stack gives
// the API the contest's ballot (proto/ballot.json): its bands and albums without votes show as
// zero bars after the counted ones. The page speaks Spanish unless the browser prefers English:
// each page here is opened with a browser locale (Accept-Language and navigator.languages), and the
// words are checked in both. Screenshots go to $TEST_UNDECLARED_OUTPUTS_DIR
// (bazel-testlogs/vue/e2e_test/test.outputs/).
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

// The page's words that this test reads, per browser language: Spanish for the contest's
// audience (es-GT), English for a browser that asks for it (en-US).
const WORDS = {
  'es-GT': {
    lang: 'es',
    perBand: 'Votos por banda',
    perAlbum: 'Votos por álbum',
    live: 'en vivo',
    total: (n) => `${n} votos contados`,
    votes: (n) => `${n} ${n === 1 ? 'voto' : 'votos'}`,
    rank: 'posición',
  },
  'en-US': {
    lang: 'en',
    perBand: 'Votes per band',
    perAlbum: 'Votes per album',
    live: 'live',
    total: (n) => `${n} votes counted`,
    votes: (n) => `${n} ${n === 1 ? 'vote' : 'votes'}`,
    rank: 'rank',
  },
};

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

/** What the page shows, read from the DOM, its charts found by their names in words. */
async function pageState(page, words) {
  return page.evaluate(({ perBand, perAlbum }) => {
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
      bands: bars(perBand),
      albums: bars(perAlbum),
      lang: document.documentElement.lang,
      scrollWidth: document.documentElement.scrollWidth,
    };
  }, { perBand: words.perBand, perAlbum: words.perAlbum });
}

/** The charts for these votes: the counted names, most votes first, then the ballot's others at 0. */
function expectedCharts(words, albums = ALBUMS) {
  const bands = new Map();
  for (const a of albums) bands.set(a.name, (bands.get(a.name) ?? 0) + a.votes);
  const counted = [...bands].sort((x, y) => y[1] - x[1]).map(([band, votes]) => [band, votes, words.votes(votes)]);
  const countedAlbums = [...albums]
    .sort((x, y) => y.votes - x.votes)
    .map((a) => [`${a.album} (${a.name})`, a.votes, words.votes(a.votes)]);
  const zero = (label) => [label, 0, words.votes(0)];
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
async function waitForBallot(page, words) {
  await page.waitForFunction(
    ({ band, chart }) => document.querySelector(`figure[aria-label="${chart}"] li[data-label="${band}"]`),
    { band: UNVOTED_BAND, chart: words.perBand },
  );
}

/** A page opened by a browser whose preferred language is locale. */
async function openPage(locale, options = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale, ...options });
  await page.goto(env.WEB_URL);
  await page.waitForFunction(() => document.querySelectorAll('[role="log"] li').length === 20);
  await waitForBallot(page, WORDS[locale]);
  return page;
}

test('the page shows the last 20 logs and both charts with the counted votes, in Spanish, then updates live', async () => {
  const words = WORDS['es-GT'];
  const page = await openPage('es-GT');

  // The page's 20 lines are the API's newest 20, oldest first (newest at the bottom).
  const api = await (await fetch(`${env.API_URL}/api/logs?limit=20`)).json();
  let shown = await pageState(page, words);
  assert.equal(shown.lang, 'es');
  assert.equal(shown.state, words.live);
  assert.equal(shown.lines.length, 20);
  assert.deepEqual(
    shown.lines.map((l) => l.split(' ').at(-1)),
    api.logs.map((l) => l.id).reverse(),
  );
  const routes = new Set(api.logs.map((l) => l.route));
  assert.deepEqual([...routes].sort(), ['grpc', 'wasm']);
  assert.ok(shown.lines.every((l) => l.includes(` ${words.rank} `)), shown.lines[0]);
  assert.equal(shown.total, words.total(TOTAL));
  const want = expectedCharts(words);
  assert.deepEqual(shown.bands, want.bands);
  assert.deepEqual(shown.albums, want.albums);
  assert.deepEqual(
    shown.bands.find(([band]) => band === UNVOTED_BAND),
    [UNVOTED_BAND, 0, words.votes(0)],
    'a ballot band without votes is a zero bar',
  );
  await page.screenshot({ path: join(outputs, 'webapp-desktop.png'), fullPage: true });

  // One more vote, with the page open: it arrives with the next poll of the live document, no reload.
  const id = await vote(env.GRPC_FRONT_URL, ALBUMS[2], 10);
  await page.waitForFunction(
    (newest) => document.querySelector('[role="log"] li:last-child')?.textContent.endsWith(newest),
    id,
    { timeout: 60000 },
  );
  await page.waitForFunction((n) => document.querySelector('[data-testid="total"]')?.textContent === n, words.total(TOTAL + 1));
  shown = await pageState(page, words);
  assert.equal(shown.lines.length, 20);
  const now = ALBUMS.map((a, i) => (i === 2 ? { ...a, votes: a.votes + 1 } : a));
  assert.deepEqual(shown.bands, expectedCharts(words, now).bands);
  assert.deepEqual(shown.bands.slice(0, 2), [
    ['Alux Nahual', 21, '21 votos'],
    ['Bohemia Suburbana', 10, '10 votos'],
  ]);
  await page.close();
});

test('a browser that prefers English gets the page in English', async () => {
  const words = WORDS['en-US'];
  const page = await openPage('en-US');
  // What Chromium sent and told the page: the same preference, so the test proves the page follows it.
  assert.equal(await page.evaluate(() => navigator.languages[0]), 'en-US');
  const shown = await pageState(page, words);
  assert.equal(shown.lang, 'en');
  assert.equal(shown.state, words.live);
  assert.ok(shown.lines.every((l) => l.includes(` ${words.rank} `)), shown.lines[0]);
  const total = Number(shown.total.split(' ')[0]);
  assert.equal(shown.total, words.total(total));
  assert.ok(total >= TOTAL, shown.total);
  assert.deepEqual(
    shown.bands.find(([band]) => band === UNVOTED_BAND),
    [UNVOTED_BAND, 0, words.votes(0)],
  );
  await page.screenshot({ path: join(outputs, 'webapp-en.png'), fullPage: true });
  await page.close();
});

test('at 375 px wide everything fits without sideways scrolling', async () => {
  const page = await openPage('es-GT', { viewport: { width: 375, height: 812 }, isMobile: true });
  const shown = await pageState(page, WORDS['es-GT']);
  assert.ok(shown.scrollWidth <= 375, `the page is ${shown.scrollWidth} px wide at a 375 px viewport`);
  // Every vote here is on the ballot, so the charts have one bar per ballot band and album.
  assert.equal(shown.bands.length, BALLOT.bands.length);
  assert.equal(shown.albums.length, BALLOT.bands.flatMap((b) => b.albums).length);
  await page.screenshot({ path: join(outputs, 'webapp-375px.png'), fullPage: true });
  await page.close();
});
