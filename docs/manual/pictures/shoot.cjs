// Headless Chromium (the toolchain's /usr/bin/chromium, driven by playwright-core, as the
// webapp's e2e test does) takes the manual's browser pictures:
//
//   node shoot.cjs webapp <webapp URL> <out.png>   the page once its 20 logs and charts are live
//   node shoot.cjs page <file.html> <out.png>      a local page (a terminal's output), full height
const { chromium } = require('playwright-core');
const { pathToFileURL } = require('node:url');
const path = require('node:path');

async function main([mode, source, out]) {
  if (!['webapp', 'page'].includes(mode) || !source || !out) {
    throw new Error('usage: shoot.cjs webapp|page <url or file> <out.png>');
  }
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  try {
    if (mode === 'webapp') {
      // A browser of the contest's audience (Guatemala): the page in Spanish, as the manual.
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'es-GT' });
      await page.goto(source);
      // Live: the event stream is up, the terminal holds its 20 lines and the charts have bars.
      await page.waitForFunction(
        () =>
          document.querySelector('.log-terminal__state--live') &&
          document.querySelectorAll('[role="log"] li').length === 20 &&
          document.querySelectorAll('figure li').length > 0,
        null,
        { timeout: 60000 },
      );
      await page.waitForTimeout(3000); // a few stream updates under the load
      await page.screenshot({ path: out, fullPage: true });
    } else {
      const page = await browser.newPage({ viewport: { width: 1100, height: 600 } });
      await page.goto(pathToFileURL(path.resolve(source)).href);
      await page.screenshot({ path: out, fullPage: true });
    }
  } finally {
    await browser.close();
  }
  console.log(`shoot: ${out}`);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`shoot: ${e.message}`);
  process.exit(1);
});
