/**
 * The shared socket follows the browser's session cookie when another tab's page load changed it
 * after the socket connected (issue 15 case 11, narrowed; issue 17), in real Chromium against a real
 * session server. The order is forced: the holder tab connects with its page's ticket (session X),
 * then the browser's cookie becomes Y (as when the last of several reloading tabs' responses sets it),
 * then a tab of the origin loads the tickets part. docs/architecture.md: the path of a handshake
 * with a ticket; docs/tickets.md: "After another tab's page load".
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, PageRecorder, waitUntil } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/servers.js';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>follow</title>
<script src="/socket.io/socket.io.js"></script>
<script src="/socket.io/socket.io-sessions.js"></script>
<script>
  window.share = () => (window.socket = io.connectWithSession({ tabs: ioSessions.sharedTabs() }));
  window.alone = () => (window.socket = io.connectWithSession());
</script>`;

/** tsx compiles this file with esbuild's keepNames: functions handed to a page may call `__name`. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (f) => f;';
/** The default lifetime: the SDK's own renewal would come only 50 s after the connect. */
const TICKET_TTL = 60_000;

type PageSocket = { connected: boolean; leader: boolean; timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<any> } };

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function setup(t: TestContext) {
  const app: TestServer = await startServer({
    ticketTtl: TICKET_TTL,
    // The ack goes out after the save, so HTTP reads the write at once.
    perMessage: true,
    routes(expressApp) {
      expressApp.get('/follow.html', (_req, res) => res.type('html').set('cache-control', 'no-store').send(PAGE));
    },
  });
  app.sio.on('sconnection', (socket) => {
    const session = () => socket.session as unknown as { user?: string; counter?: number };
    socket.on('whoami', (ack: (user: unknown) => void) => ack(session().user));
    socket.on('increment', (ack: (n: number) => void) => ack((session().counter = (session().counter ?? 0) + 1)));
  });
  const context = await browser.newContext();
  await context.addInitScript({ content: KEEP_NAMES_SHIM });
  const recorders: PageRecorder[] = [];
  t.after(async () => {
    await context.close();
    await app.close();
  });
  const open = async (url = `${app.url}/follow.html`): Promise<Page> => {
    const page = await context.newPage();
    recorders.push(new PageRecorder(page));
    await page.goto(url);
    return page;
  };
  const describe = () => recorders.map((rec, i) => `tab ${i}:\n${rec.dump()}`).join('\n');
  return { app, context, open, describe };
}

/** The browser's session cookie becomes the one of `cookie` ("name=value"), as a response's Set-Cookie would make it. */
function setCookie(context: BrowserContext, app: TestServer, cookie: string) {
  const [name, value] = cookie.split('=') as [string, string];
  return context.addCookies([{ name, value, url: app.url, httpOnly: true }]);
}

const share = (page: Page) => page.evaluate(() => void (globalThis as any).share());
const connectedOf = (page: Page) => page.evaluate(() => ((globalThis as any).socket as PageSocket).connected);
const ask = <T>(page: Page, event: string) => page.evaluate((event) => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck(event), event) as Promise<T>;
const httpSession = (page: Page) => page.evaluate(() => fetch('/session', { cache: 'no-store' }).then((r) => r.json())) as Promise<{ user?: string; counter?: number }>;
/** The holder's ticket renewals: the served script, fetched again with a cache-busting parameter. */
function renewals(page: Page): { count: number } {
  const seen = { count: 0 };
  page.on('request', (req) => /\/socket\.io\/socket\.io-sessions\.js\?(.*&)?_=/.test(req.url()) && seen.count++);
  return seen;
}

test("a tab's page load that changed the browser's cookie after the shared socket connected: the socket follows the cookie's session at once, with one ticket fetch for a burst of loads, and a page of another origin changes nothing", { timeout: 60_000 }, async (t) => {
  const { app, context, open, describe } = await setup(t);
  await setCookie(context, app, await app.login({ user: 'ann' }));
  const holder = await open();
  const renewed = renewals(holder);
  await share(holder);
  await waitUntil(() => connectedOf(holder), Boolean, { what: 'the holder connected', describe });
  assert.equal(await ask(holder, 'whoami'), 'ann');

  // A page of another origin (localhost, not 127.0.0.1) loads the tickets part many times: nothing reaches this origin's tabs.
  const foreign = await open(`${app.url.replace('127.0.0.1', 'localhost')}/follow.html`);
  await foreign.evaluate(() => Array.from({ length: 20 }, () => (globalThis as any).ioSessions.tickets()));
  // The browser's cookie now names bob's session; ann's stays valid, so nothing tells the socket.
  await setCookie(context, app, await app.login({ user: 'bob' }));
  // wall clock under 1 s: an absence (no renewal) over a window longer than the SDK's 500 ms burst delay.
  await holder.waitForTimeout(800);
  assert.equal(renewed.count, 0, `no renewal for a page of another origin\n${describe()}`);
  assert.equal(await ask(holder, 'whoami'), 'ann', 'the socket is still in the session it connected with');

  // A tab of the origin loads (its response carried bob's cookie) and joins the shared connection; in the same burst, more loads.
  const tab = await open();
  await tab.evaluate(() => {
    (globalThis as any).share();
    for (let i = 0; i < 20; i++) (globalThis as any).ioSessions.tickets();
  });
  const startedAt = Date.now();
  await waitUntil(() => ask<string>(tab, 'whoami').catch(() => undefined), (user) => user === 'bob', {
    timeout: 10_000,
    what: "the shared socket in the cookie's session (bob)",
    describe,
  });
  t.diagnostic(`the shared socket followed the cookie ${Date.now() - startedAt} ms after the tab's page load (its own renewal: ${(TICKET_TTL - Math.min(10_000, TICKET_TTL / 4)) / 1000} s after connecting)`);
  assert.equal(await ask(tab, 'increment'), 1);
  assert.deepEqual((await Promise.all([holder, tab].map(httpSession))).map((s) => [s.user, s.counter]), [['bob', 1], ['bob', 1]], "the socket writes the session the tabs' HTTP requests read");

  // One ticket fetch for the burst of 21 loads, and no loop: the reconnect itself announces nothing.
  // wall clock under 1 s: an absence (a second renewal) over a window longer than the burst delay.
  await holder.waitForTimeout(800);
  assert.equal(renewed.count, 1, `one renewal for the burst\n${describe()}`);
  assert.equal(await ask(tab, 'whoami'), 'bob');
});

test("without shared tabs: each tab's own ticket socket follows a later tab's page load, and a page's own load moves nothing", { timeout: 60_000 }, async (t) => {
  const { app, context, open, describe } = await setup(t);
  await setCookie(context, app, await app.login({ user: 'ann' }));
  const first = await open();
  const renewed = renewals(first);
  await first.evaluate(() => void (globalThis as any).alone());
  await waitUntil(() => connectedOf(first), Boolean, { what: 'the first tab connected', describe });

  await setCookie(context, app, await app.login({ user: 'bob' }));
  const second = await open();
  const renewedSecond = renewals(second);
  await second.evaluate(() => void (globalThis as any).alone());
  await waitUntil(() => connectedOf(second), Boolean, { what: 'the second tab connected', describe });
  assert.equal(await ask(second, 'whoami'), 'bob', "the second tab's own socket: its page's session");
  await waitUntil(() => ask<string>(first, 'whoami').catch(() => undefined), (user) => user === 'bob', {
    timeout: 10_000,
    what: "the first tab's socket in the cookie's session (bob)",
    describe,
  });
  assert.equal(renewed.count, 1, `one renewal in the first tab\n${describe()}`);
  // The first tab followed more than the 500 ms burst delay after the second tab's load: a renewal for its own load would be seen.
  assert.equal(renewedSecond.count, 0, `none in the tab whose load it was\n${describe()}`);
  assert.deepEqual((await httpSession(first)).user, 'bob');
});
