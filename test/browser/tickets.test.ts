/**
 * Session tickets in real Chromium against the reference server (`server-stub/`, a child
 * process): a page on another origin connects without any cookie reaching the socket server,
 * tickets are renewed in-band on the live socket, a stale embedded ticket is replaced by itself,
 * the raw session id never reaches page JavaScript, and the served script is never cached.
 *
 * Origins: the socket server is `http://127.0.0.1:PORT` (also serves the same-origin demo page
 * `/`); the page origin is `http://localhost:PAGE_PORT` (another site: its cookie never goes to
 * 127.0.0.1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Request, Response, Route } from 'playwright-core';
import { launchBrowser, PageRecorder, textOf, waitUntil } from '../helpers/browser.js';
import { startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';
import { TicketSealer } from '../../src/server/tickets.js';

const SCRIPT_PATH = '/socket.io/socket.io-sessions.js';
const COOKIE_NAME = 'connect.sid';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let browser: Browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

function startServer(env: Record<string, string> = {}): Promise<ReferenceServer> {
  return startReferenceServer({ env: { PAGE_PORT: '0', ...env }, waitForPage: true });
}

interface Ticket {
  token: string;
  expiresAt: number;
  expiresIn: number;
}

/** Everything a page sent and received over the network, including both Socket.IO transports. */
class Traffic {
  readonly requests: Array<{ url: string; method: string; headers: Record<string, string>; postData: string | null }> = [];
  readonly responses: Array<{ url: string; status: number; headers: Record<string, string>; body: string }> = [];
  /** engine.io packets (e.g. `40{...}`, `42["event",...]`) the page sent / received, polling and websocket alike. */
  readonly sent: string[] = [];
  readonly received: string[] = [];
  /** Raw websocket handshake request headers (CDP), for the cookie check on upgrades. */
  readonly wsHandshakeHeaders: Array<Record<string, string>> = [];
  readonly wsUrls: string[] = [];
  private readonly pending: Array<Promise<unknown>> = [];

  static async record(page: Page): Promise<Traffic> {
    const traffic = new Traffic();
    page.on('request', (req) => traffic.pending.push(traffic.onRequest(req)));
    page.on('response', (res) => traffic.pending.push(traffic.onResponse(res)));
    page.on('websocket', (ws) => {
      traffic.wsUrls.push(ws.url());
      ws.on('framesent', ({ payload }) => traffic.sent.push(String(payload)));
      ws.on('framereceived', ({ payload }) => traffic.received.push(String(payload)));
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
      const raw = (e.response.requestHeaders ?? {}) as Record<string, string>;
      traffic.wsHandshakeHeaders.push(Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v])));
    });
    return traffic;
  }

  private async onRequest(req: Request): Promise<void> {
    const headers = await withTimeout(req.allHeaders(), 3000).catch(() => req.headers());
    const postData = req.postData();
    this.requests.push({ url: req.url(), method: req.method(), headers, postData });
    if (isPolling(req.url()) && req.method() === 'POST' && postData) this.sent.push(...postData.split('\x1e'));
  }

  private async onResponse(res: Response): Promise<void> {
    const headers = await withTimeout(res.allHeaders(), 3000).catch(() => res.headers());
    const type = headers['content-type'] ?? '';
    const textual = /text|javascript|json|octet-stream/.test(type) || isPolling(res.url());
    const body = textual ? await withTimeout(res.text(), 5000).catch(() => '') : '';
    this.responses.push({ url: res.url(), status: res.status(), headers, body });
    if (isPolling(res.url()) && res.request().method() === 'GET' && body) this.received.push(...body.split('\x1e'));
  }

  /** Waits for the header/body reads started so far. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0));
  }

  /** Socket.IO CONNECT packets the page sent: their `auth` payloads, in order. */
  connectPackets(): Array<Record<string, unknown>> {
    return this.sent.flatMap((p) => {
      const m = /^40(\{.*\})?$/s.exec(p);
      return m ? [m[1] ? (JSON.parse(m[1]) as Record<string, unknown>) : {}] : [];
    });
  }

  /** Socket.IO CONNECT_ERROR packets the page received (a refused handshake). */
  connectErrors(): string[] {
    return this.received.filter((p) => p.startsWith('44'));
  }

  /** In-band refreshes the page sent (`42<ack id>["sio-sessions:refresh", token]`). */
  refreshesSent(): string[] {
    return this.sent.filter((p) => /^42\d*\["sio-sessions:refresh"/.test(p));
  }

  /** Acks the page received (`43<id>[...]`), parsed. */
  acksReceived(): unknown[] {
    return this.received.flatMap((p) => {
      const m = /^43\d+(\[.*\])$/s.exec(p);
      return m ? [(JSON.parse(m[1]) as unknown[])[0]] : [];
    });
  }
}

const isPolling = (url: string) => /\/socket\.io\/\?.*transport=polling/.test(url);

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);
}

/** The raw session id from the httpOnly cookie (`s%3A<sid>.<signature>`). */
async function sessionIdOf(context: BrowserContext, origin: string): Promise<string> {
  const cookie = (await context.cookies(origin)).find((c) => c.name === COOKIE_NAME);
  assert.ok(cookie, `a ${COOKIE_NAME} cookie for ${origin}`);
  assert.equal(cookie.httpOnly, true, 'the session cookie is httpOnly');
  const value = decodeURIComponent(cookie.value);
  assert.ok(value.startsWith('s:'), `a signed cookie: ${value}`);
  const sid = value.slice(2, value.lastIndexOf('.'));
  assert.ok(sid.length >= 16, `a plausible session id: ${sid}`);
  return sid;
}

/** Opens a ticket with the server's own (generated, persisted) secret: the positive control that a ticket names a session. */
async function openTicket(server: ReferenceServer, token: unknown, audience: string) {
  const secret = readFileSync(join(server.dataDir, 'secret'), 'utf8').trim();
  return new TicketSealer([secret], 60_000).open(token, audience);
}

/** The embedded ticket statement the served script ends with. */
const EMBED_LINE = /\(globalThis\.__socketIoSessions=globalThis\.__socketIoSessions\|\|\{\}\)\.ticket=(.*);\s*$/;

function embeddedTicketOf(script: string): Ticket | null {
  const m = EMBED_LINE.exec(script);
  assert.ok(m, 'the served script ends with the embedded-ticket statement');
  return JSON.parse(m[1]!) as Ticket | null;
}

function withEmbeddedTicket(script: string, ticket: Ticket | null): string {
  assert.match(script, EMBED_LINE);
  return script.replace(EMBED_LINE, `(globalThis.__socketIoSessions=globalThis.__socketIoSessions||{}).ticket=${JSON.stringify(ticket)};\n`);
}

/** Serves `body` for the first plain (no query) request of the served script; later ones go to the server. */
async function replaceFirstScriptLoad(page: Page, body: (real: string) => string | Promise<string>): Promise<{ served: () => boolean }> {
  let served = false;
  await page.route(
    (url) => url.pathname === SCRIPT_PATH && url.search === '',
    async (route: Route) => {
      if (served) return route.continue();
      served = true;
      const real = await route.fetch();
      await route.fulfill({ response: real, body: await body(await real.text()) });
    },
  );
  return { served: () => served };
}

function waitForText(page: Page, rec: PageRecorder, server: ReferenceServer, selector: string, expected: string, timeout = 10_000) {
  return waitUntil(() => textOf(page, selector), (t) => t === expected, {
    timeout,
    what: `${selector} to be ${JSON.stringify(expected)}`,
    describe: () => `page events:\n${rec.dump()}\nserver output:\n${server.output()}`,
  });
}

async function increment(page: Page, rec: PageRecorder, server: ReferenceServer, expected: number): Promise<void> {
  await page.click('#increment');
  await waitForText(page, rec, server, '#counter', String(expected));
  await waitForText(page, rec, server, '#http-counter', String(expected));
}

/** A fresh context (no cookies) with a recorded page and its traffic. */
async function openContext() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const rec = new PageRecorder(page);
  const traffic = await Traffic.record(page);
  return { context, page, rec, traffic };
}

describe('tickets: cross-origin page and demo page', () => {
  let server: ReferenceServer;
  let pageUrl: string;
  before(async () => {
    server = await startServer();
    pageUrl = server.pageUrl!;
    assert.match(pageUrl, /^http:\/\/localhost:\d+$/);
  });
  after(async () => {
    if (process.env.DEBUG_BROWSER_TESTS) console.log(server?.output());
    await server?.dispose();
  });

  test('cross-origin page connects with a ticket, and no cookie ever reaches the socket server', async () => {
    const { context, page, rec, traffic } = await openContext();
    try {
      await page.goto(`${pageUrl}/cross-origin.html`);
      await waitForText(page, rec, server, '#state', 'connected');
      await waitForText(page, rec, server, '#counter', '0');
      await increment(page, rec, server, 1);
      await increment(page, rec, server, 2);
      assert.equal(await textOf(page, '#http-counter'), '2', 'the page origin sees the socket\'s writes over HTTP: one session');
      await traffic.settle();

      // The page origin has the session cookie; the socket server's origin has none, and none was sent there.
      const sid = await sessionIdOf(context, pageUrl);
      assert.deepEqual(await context.cookies(server.url), [], 'no cookie for the socket server\'s origin');
      const toSocketServer = traffic.requests.filter((r) => r.url.startsWith(`${server.url}/`));
      assert.ok(toSocketServer.some((r) => isPolling(r.url)), `polling requests to the socket server were recorded: ${toSocketServer.map((r) => r.url).join(', ')}`);
      assert.ok(toSocketServer.some((r) => r.url.startsWith(`${server.url}${SCRIPT_PATH}`)), 'the served script was loaded from the socket server');
      for (const r of toSocketServer) assert.equal(r.headers.cookie, undefined, `no cookie on ${r.method} ${r.url}`);
      assert.ok(traffic.wsUrls.length >= 1, 'the socket upgraded to a websocket');
      assert.equal(traffic.wsHandshakeHeaders.length, traffic.wsUrls.length, 'the websocket upgrade request headers were seen');
      for (const h of traffic.wsHandshakeHeaders) {
        assert.equal(h.origin, pageUrl, 'the upgrade came from the page origin');
        assert.equal(h.cookie, undefined, 'no cookie on the websocket upgrade');
      }
      // Positive control: requests to the page origin do carry the cookie.
      const toPageOrigin = traffic.requests.filter((r) => r.url.startsWith(`${pageUrl}/api/session`));
      assert.ok(toPageOrigin.length >= 1 && toPageOrigin.every((r) => /connect\.sid=/.test(r.headers.cookie ?? '')), 'the page origin\'s own requests carry the cookie');

      // The handshake carried a ticket, fetched from the page origin's token endpoint, naming this session.
      const connects = traffic.connectPackets();
      assert.equal(connects.length, 1, `one CONNECT packet: ${JSON.stringify(connects)}`);
      assert.deepEqual(Object.keys(connects[0]!), ['sessionTicket']);
      assert.equal(typeof connects[0]!.sessionTicket, 'string');
      assert.ok(traffic.requests.some((r) => r.url === `${pageUrl}/socket.io-sessions/token`), 'the ticket came from the token endpoint');
      const opened = await openTicket(server, connects[0]!.sessionTicket, pageUrl);
      assert.ok('sid' in opened, `the ticket opens for audience ${pageUrl}: ${JSON.stringify(opened)}`);
      assert.equal(opened.sid, sid, 'the ticket names the page origin\'s session');
      assert.deepEqual(traffic.connectErrors(), [], 'no refused handshake');
      assert.deepEqual(rec.consoleLines().filter((l) => /invalid|disconnect|unavailable/.test(l)), []);
    } finally {
      await context.close();
    }
  });

  test('the raw session id appears nowhere in page JavaScript, the served script, URLs or auth payloads', async () => {
    for (const which of ['demo page (embedded ticket)', 'cross-origin page (token endpoint)'] as const) {
      const { context, page, rec, traffic } = await openContext();
      try {
        const demo = which.startsWith('demo');
        const origin = demo ? server.url : pageUrl;
        await page.goto(demo ? `${server.url}/` : `${pageUrl}/cross-origin.html`);
        await waitForText(page, rec, server, '#state', 'connected');
        await increment(page, rec, server, 1);
        const sid = await sessionIdOf(context, origin);

        // What page JavaScript can read.
        const seen = await page.evaluate(async (demoPage) => {
          const g = (globalThis as unknown as { __socketIoSessions?: unknown }).__socketIoSessions;
          const script = demoPage ? await (await fetch('/socket.io/socket.io-sessions.js', { cache: 'no-store' })).text() : null;
          return { cookie: document.cookie, embed: JSON.stringify(g ?? null), script, html: document.documentElement.outerHTML };
        }, demo);
        assert.equal(seen.cookie, '', 'the session cookie is invisible to document.cookie');
        assert.ok(!seen.embed.includes(sid), `window.__socketIoSessions does not hold the sid: ${seen.embed}`);
        if (demo) {
          assert.ok(seen.script, 'the served script, fetched with the page\'s cookie');
          const embedded = embeddedTicketOf(seen.script);
          assert.ok(embedded, 'a same-origin fetch with the session cookie gets an embedded ticket');
          assert.ok(!seen.script.includes(sid), 'the served script does not contain the sid');
          // Positive control: the embedded ticket does name this session, sealed.
          const opened = await openTicket(server, embedded.token, server.url);
          assert.ok('sid' in opened && opened.sid === sid, `the embedded ticket is sealed and names the session: ${JSON.stringify(opened)}`);
          assert.ok(seen.embed.includes('"token"'), 'the page global holds an embedded ticket (sealed)');
        } else {
          assert.equal(seen.embed, '{"ticket":null}', 'a cross-site load of the served script embeds no ticket');
        }
        assert.ok(!seen.html.includes(sid), 'the DOM does not contain the sid');
        assert.ok(!(await page.content()).includes(sid), 'page.content() does not contain the sid');

        // What went over the network.
        await traffic.settle();
        for (const r of traffic.requests) {
          assert.ok(!r.url.includes(sid), `request URL without the sid: ${r.url}`);
          assert.ok(!(r.postData ?? '').includes(sid), `request body without the sid: ${r.url}`);
        }
        for (const r of traffic.responses) assert.ok(!r.body.includes(sid), `response body without the sid: ${r.url}`);
        const served = traffic.responses.filter((r) => r.url.startsWith(`${server.url}${SCRIPT_PATH}`));
        assert.ok(served.length >= 1 && served.every((r) => r.body.length > 1000), 'the served script bodies were captured');
        assert.ok(traffic.sent.length > 0 && traffic.received.length > 0, 'socket traffic was captured');
        for (const p of [...traffic.sent, ...traffic.received]) assert.ok(!p.includes(sid), `socket packet without the sid: ${p.slice(0, 200)}`);
        const connects = traffic.connectPackets();
        assert.equal(connects.length, 1);
        assert.equal(typeof connects[0]!.sessionTicket, 'string', 'the handshake auth carries a ticket');
        assert.ok(!JSON.stringify(connects).includes(sid), 'auth payloads do not contain the sid');
        const opened = await openTicket(server, connects[0]!.sessionTicket, origin);
        assert.ok('sid' in opened && opened.sid === sid, `the handshake ticket names this session (so the sid above is the right one): ${JSON.stringify(opened)}`);
        assert.ok(!rec.consoleLines().some((l) => l.includes(sid)), 'console output without the sid');
        if (demo) {
          // Control for test 1's cookie check on upgrades: the CDP view shows a cookie when one is sent.
          assert.ok(traffic.wsHandshakeHeaders.length >= 1 && traffic.wsHandshakeHeaders.every((h) => /connect\.sid=/.test(h.cookie ?? '')));
        }
      } finally {
        await context.close();
      }
    }
  });

  test('served script headers: Cache-Control "private, no-store" and Vary "Cookie" on the response the browser got', async () => {
    const { context, page, rec, traffic } = await openContext();
    try {
      await page.goto(`${server.url}/`);
      await waitForText(page, rec, server, '#state', 'connected');
      await page.goto(`${pageUrl}/cross-origin.html`);
      await waitForText(page, rec, server, '#state', 'connected');
      await traffic.settle();
      const scripts = traffic.responses.filter((r) => new URL(r.url).pathname === SCRIPT_PATH);
      assert.equal(scripts.length, 2, `the served script was loaded by both pages: ${scripts.map((r) => r.url).join(', ')}`);
      for (const r of scripts) {
        assert.equal(r.status, 200);
        assert.equal(r.headers['cache-control'], 'private, no-store', r.url);
        assert.equal(r.headers.vary, 'Cookie', r.url);
        assert.match(r.headers['content-type'] ?? '', /^application\/javascript/);
      }
    } finally {
      await context.close();
    }
  });
});

describe('tickets: in-band renewal (TICKET_TTL=2500)', () => {
  let server: ReferenceServer;
  before(async () => {
    server = await startServer({ TICKET_TTL: '2500' });
  });
  after(async () => {
    if (process.env.DEBUG_BROWSER_TESTS) console.log(server?.output());
    await server?.dispose();
  });

  test('a ticket that expires mid-connection is renewed in-band, without a disconnect', async () => {
    const HOLD_MS = 8000;
    const pages = [
      { name: 'cross-origin page (token endpoint)', url: () => `${server.pageUrl}/cross-origin.html` },
      { name: 'demo page (embedded ticket, renewed from the served script)', url: () => `${server.url}/` },
    ];
    const opened = await Promise.all(pages.map(async (p) => ({ ...p, ...(await openContext()) })));
    try {
      await Promise.all(
        opened.map(async ({ page, rec, url }) => {
          await page.goto(url());
          await waitForText(page, rec, server, '#state', 'connected');
          await page.evaluate(() => {
            // The pages' `const socket` is a global lexical binding, not a window property.
            const socket = (0, eval)('socket') as { id: string; on(e: string, l: (...a: unknown[]) => void): void };
            const seen = { events: [] as string[], id: socket.id };
            (window as unknown as { __seen: typeof seen }).__seen = seen;
            for (const e of ['disconnect', 'connect', 'connect_error', 'sio-sessions:invalid']) socket.on(e, () => seen.events.push(e));
          });
        }),
      );
      await sleep(HOLD_MS);

      for (const { name, page, rec, traffic } of opened) {
        await traffic.settle();
        const state = await page.evaluate(() => {
          const socket = (0, eval)('socket') as { id: string; connected: boolean };
          const seen = (window as unknown as { __seen: { events: string[]; id: string } }).__seen;
          return { events: seen.events, sameId: socket.id === seen.id, connected: socket.connected };
        });
        const context = `${name}\npage events:\n${rec.dump()}\nserver output:\n${server.output()}`;
        assert.deepEqual(state.events, [], `no disconnect, reconnect or invalid event on ${context}`);
        assert.equal(state.sameId, true, `the same socket throughout: ${name}`);
        assert.equal(state.connected, true, name);
        assert.equal(await textOf(page, '#state'), 'connected', name);
        assert.deepEqual(rec.consoleLines().filter((l) => /disconnect:|invalid|unavailable/.test(l)), [], context);
        assert.equal(traffic.connectPackets().length, 1, `one handshake only: ${name}`);
        assert.deepEqual(traffic.connectErrors(), [], name);

        const refreshes = traffic.refreshesSent();
        assert.ok(refreshes.length >= 2, `at least 2 in-band refreshes in ${HOLD_MS} ms with 2.5 s tickets, saw ${refreshes.length}: ${context}`);
        const acks = traffic.acksReceived().filter((a): a is { ok: boolean } => typeof a === 'object' && a !== null && 'ok' in a);
        assert.ok(acks.length >= 2 && acks.every((a) => a.ok === true), `every refresh acked ok: ${JSON.stringify(acks)}`);
        // Each refresh presented a new ticket, never the one of the handshake.
        const tokens = refreshes.map((p) => (JSON.parse(p.replace(/^42\d*/, '')) as [string, string])[1]);
        assert.equal(new Set([traffic.connectPackets()[0]!.sessionTicket, ...tokens]).size, tokens.length + 1, 'every refresh carries a fresh ticket');

        if (name.startsWith('cross-origin')) {
          const credentialLines = rec.consoleLines().filter((l) => /credential expires in \d+ ms/.test(l));
          assert.ok(credentialLines.length >= 3, `the connect's expiry and at least 2 renewals logged: ${context}`);
          const tokenRequests = traffic.requests.filter((r) => r.url.endsWith('/socket.io-sessions/token'));
          assert.ok(tokenRequests.length >= 3, `tickets came from the token endpoint: ${tokenRequests.length}`);
        } else {
          const busted = traffic.requests.filter((r) => r.url.startsWith(`${server.url}${SCRIPT_PATH}?_=`));
          assert.ok(busted.length >= 2, `renewals re-requested the served script with a cache-busting parameter: ${traffic.requests.map((r) => r.url).join('\n')}`);
        }

        await increment(page, rec, server, 1);
      }
    } finally {
      await Promise.all(opened.map(({ context }) => context.close()));
    }
  });
});

describe('tickets: a stale embedded ticket is replaced automatically', () => {
  let server: ReferenceServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    if (process.env.DEBUG_BROWSER_TESTS) console.log(server?.output());
    await server?.dispose();
  });

  test('an expired embedded ticket is never presented: a new one comes from a cache-busted copy of the served script, with no refused handshake', async () => {
    const { context, page, rec, traffic } = await openContext();
    try {
      // A session and a real ticket for it (the API request context shares the browser context's cookies).
      assert.equal((await context.request.get(`${server.url}/`)).status(), 200);
      // The API request context is not a page: say what the browser says for its own script tag.
      const real = embeddedTicketOf(await (await context.request.get(`${server.url}${SCRIPT_PATH}`, { headers: { 'sec-fetch-site': 'same-origin' } })).text());
      assert.ok(real, 'a real embedded ticket');
      const stale: Ticket = { ...real, expiresAt: Date.now() - 1000 };
      const route = await replaceFirstScriptLoad(page, (script) => withEmbeddedTicket(script, stale));

      await page.goto(`${server.url}/`);
      await waitForText(page, rec, server, '#state', 'connected');
      assert.equal(route.served(), true, 'the page got the script with the stale ticket');
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { __socketIoSessions: { ticket: { expiresAt: number } } }).__socketIoSessions.ticket.expiresAt),
        stale.expiresAt,
        'the page holds the stale ticket',
      );
      await increment(page, rec, server, 1);
      await traffic.settle();

      assert.deepEqual(traffic.connectErrors(), [], 'no refused handshake');
      assert.deepEqual(rec.consoleLines().filter((l) => /invalid:|disconnect:/.test(l)), [], rec.dump());
      const connects = traffic.connectPackets();
      assert.equal(connects.length, 1, JSON.stringify(connects));
      assert.notEqual(connects[0]!.sessionTicket, stale.token, 'the expired ticket was not presented');
      const busted = traffic.requests.filter((r) => r.url.startsWith(`${server.url}${SCRIPT_PATH}?_=`));
      assert.ok(
        busted.length >= 1,
        `the stale ticket was replaced by re-requesting the served script with ?_= ; requests:\n${traffic.requests.map((r) => `${r.method} ${r.url}`).join('\n')}\nCONNECT auth: ${JSON.stringify(connects)}`,
      );
      const opened = await openTicket(server, connects[0]!.sessionTicket, server.url);
      assert.ok('sid' in opened && opened.sid === (await sessionIdOf(context, server.url)), 'the handshake used a fresh ticket of this session');
    } finally {
      await context.close();
    }
  });

  test('an embedded ticket of another (destroyed) session is replaced after one invalid answer, without a page reload', async () => {
    const { context, page, rec, traffic } = await openContext();
    try {
      // A document of the origin with no socket on it, to act with the page's own cookies.
      await page.goto(`${server.url}/api/session`);
      const t1 = await page.evaluate(async (scriptPath) => {
        const login = await fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'alice' }) });
        if (!login.ok) throw new Error(`login ${login.status}`);
        return (await fetch(scriptPath, { cache: 'no-store' })).text();
      }, SCRIPT_PATH);
      const ticket1 = embeddedTicketOf(t1);
      assert.ok(ticket1, 'alice\'s session got an embedded ticket');
      const aliceSid = await sessionIdOf(context, server.url);
      assert.equal((await openTicket(server, ticket1.token, server.url) as { sid?: string }).sid, aliceSid);

      // Logging in again regenerates the session: alice's session (T1's) is destroyed.
      const bob = await page.evaluate(async () => {
        const res = await fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'bob' }) });
        return res.json() as Promise<{ user: string }>;
      });
      assert.equal(bob.user, 'bob');
      const bobSid = await sessionIdOf(context, server.url);
      assert.notEqual(bobSid, aliceSid);

      await replaceFirstScriptLoad(page, (script) => withEmbeddedTicket(script, ticket1));
      const mark = rec.events.length;
      const navigationsBefore = rec.navigations;
      await page.goto(`${server.url}/`);
      await waitForText(page, rec, server, '#state', 'connected');
      await waitForText(page, rec, server, '#user', 'bob');
      await increment(page, rec, server, 1);
      await sleep(500); // wall clock: an absence (no reload, no other handshake) over a real window
      await traffic.settle();

      assert.equal(rec.navigations - navigationsBefore, 1, `only our own navigation, no reload:\n${rec.dump()}`);
      const invalid = rec.consoleLines(mark).filter((l) => /^\[demo\] invalid: /.test(l));
      assert.equal(invalid.length, 1, `one invalid answer:\n${rec.dump()}`);
      assert.match(invalid[0]!, /^\[demo\] invalid: (destroyed|not-found) \(at the handshake\) → reconnecting$/);
      assert.equal(traffic.connectErrors().length, 1, `one refused handshake: ${JSON.stringify(traffic.connectErrors())}`);

      const connects = traffic.connectPackets();
      assert.equal(connects.length, 2, `refused with T1, then accepted: ${JSON.stringify(connects)}`);
      assert.equal(connects[0]!.sessionTicket, ticket1.token, 'the first handshake presented the embedded T1');
      assert.notEqual(connects[1]!.sessionTicket, ticket1.token, 'T1 was never presented again');
      const opened = await openTicket(server, connects[1]!.sessionTicket, server.url);
      assert.ok('sid' in opened && opened.sid === bobSid, `the second handshake's ticket names bob's session: ${JSON.stringify(opened)}`);
      assert.ok(
        traffic.requests.some((r) => r.url.startsWith(`${server.url}${SCRIPT_PATH}?_=`)),
        'the replacement came from a cache-busted copy of the served script',
      );
      assert.equal(await textOf(page, '#state'), 'connected');
    } finally {
      await context.close();
    }
  });
});
