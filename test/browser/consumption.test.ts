/**
 * Every way of including the client, in real Chromium against a real session server
 * (express-session + Socket.IO + this library): the npm ESM build through an import map, the
 * UMD add-on after /socket.io/socket.io.js, the CDN standalone UMD on a page of another origin,
 * and the CDN standalone ESM imported by a module script. Each page connects with its own
 * session and exchanges an event each way. Pages: test/fixtures/consumption/.
 * Needs `npm run build` (dist/) first, as `npm test` does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, PageRecorder, waitUntil } from '../helpers/browser.js';
import { assertExchanged, startConsumptionServers, type ConsumptionServers, type Outcome } from '../helpers/consumption-server.js';

let browser: Browser;
let servers: ConsumptionServers;
let appOrigin: string;
let cdnOrigin: string;

before(async () => {
  servers = await startConsumptionServers();
  ({ appOrigin, cdnOrigin } = servers);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await servers?.close();
});

/**
 * Logs in as `user` (the session cookie lands in a fresh browser context), opens `url`, and
 * waits for the page's exchange. Returns its outcome, the URLs it requested and a page handle.
 */
async function visit(url: string, user: string): Promise<{ outcome: Outcome; requests: string[]; page: Page; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const login = await context.request.post(`${appOrigin}/login`, { data: { user } });
  assert.equal(login.status(), 200);
  const page = await context.newPage();
  const rec = new PageRecorder(page);
  const requests: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(url);
  const outcome = await waitUntil(
    () => page.evaluate(() => (window as unknown as { outcome?: Outcome }).outcome),
    (o) => o?.done === true,
    { what: `the exchange on ${url}`, describe: () => `page errors: ${pageErrors.join('; ')}\n${rec.dump()}` },
  );
  return { outcome: outcome!, requests, page, close: () => context.close() };
}

test('npm ESM build through an import map: bare specifiers resolve to dist/client/index.js and the served socket.io ESM bundle', async () => {
  const { outcome, requests, close } = await visit(`${appOrigin}/fixtures/esm-import-map.html`, 'esm-npm');
  try {
    assertExchanged(outcome, 'esm-npm');
    assert.ok(requests.includes(`${appOrigin}/pkg/dist/client/index.js`), requests.join('\n'));
    assert.ok(requests.includes(`${appOrigin}/socket.io/socket.io.esm.min.js`), requests.join('\n'));
  } finally {
    await close();
  }
});

test('the import map of docs/browser.md: the core, socket.io-sessions/tabs and /tickets resolve, the opt-in entries share the one core', async () => {
  const { outcome, requests, page, close } = await visit(`${appOrigin}/fixtures/esm-import-map-entries.html`, 'esm-entries');
  try {
    assertExchanged(outcome, 'esm-entries');
    const extra = await page.evaluate(() => (window as unknown as { outcome: { ticketsLoaded: boolean; leader: boolean } }).outcome);
    assert.equal(extra.ticketsLoaded, true);
    assert.equal(extra.leader, true, 'the one tab holds the shared connection');
    for (const file of ['index.min.js', 'tabs.min.js', 'tickets.min.js']) assert.ok(requests.includes(`${appOrigin}/pkg/dist/client/${file}`), `${file}:\n${requests.join('\n')}`);
    assert.ok(!requests.includes(`${appOrigin}/pkg/dist/client/index.js`), 'no second copy of the core');
  } finally {
    await close();
  }
});

test('UMD add-on after /socket.io/socket.io.js: io.connectWithSession and the ioSessions global', async () => {
  const { outcome, requests, page, close } = await visit(`${appOrigin}/fixtures/script-tag.html`, 'umd-addon');
  try {
    assertExchanged(outcome, 'umd-addon');
    assert.equal(await page.evaluate(() => (window as unknown as { sameFunction: boolean }).sameFunction), true);
    assert.ok(requests.includes(`${appOrigin}/socket.io/socket.io-sessions.js`), requests.join('\n'));
  } finally {
    await close();
  }
});

test('CDN standalone UMD from another origin: one script tag, cross-origin Socket.IO server with the session cookie', async () => {
  const { outcome, requests, page, close } = await visit(`${cdnOrigin}/fixtures/cdn-umd.html?server=${encodeURIComponent(appOrigin)}`, 'cdn-umd');
  try {
    assertExchanged(outcome, 'cdn-umd');
    assert.equal(await page.evaluate(() => (window as unknown as { globalIoDefined: boolean }).globalIoDefined), false, 'no socket.io.js needed');
    const scripts = requests.filter((u) => u.endsWith('.js'));
    assert.deepEqual(scripts, [`${cdnOrigin}/npm/socket.io-sessions/dist/cdn/socket.io-sessions.min.js`, `${cdnOrigin}/fixtures/exchange.js`]);
  } finally {
    await close();
  }
});

test('CDN standalone ESM imported by <script type="module"> from the CDN origin', async () => {
  const { outcome, requests, close } = await visit(`${appOrigin}/fixtures/cdn-esm.html`, 'cdn-esm');
  try {
    assertExchanged(outcome, 'cdn-esm');
    const scripts = requests.filter((u) => u.endsWith('.js'));
    assert.deepEqual(scripts, [`${appOrigin}/fixtures/exchange.js`, `${cdnOrigin}/npm/socket.io-sessions/dist/cdn/socket.io-sessions.esm.min.js`]);
  } finally {
    await close();
  }
});

test('the UMD add-on without /socket.io/socket.io.js fails with an error that says what to load', async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${appOrigin}/fixtures/add-on-without-io.html`);
    await waitUntil(async () => errors.length, (n) => n > 0, { what: 'a page error' });
    assert.match(errors[0]!, /socket\.io-sessions: the global "io" is missing; load \/socket\.io\/socket\.io\.js first/);
  } finally {
    await context.close();
  }
});
