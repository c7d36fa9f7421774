/**
 * The browser SDK in a hostile or broken environment, in real Chromium against a real session
 * server (express-session + Socket.IO + this library, in this process): a token endpoint that
 * answers garbage or never answers, a server that keeps saying "invalid", garbage on the tabs'
 * BroadcastChannel, connect()/disconnect() and offline/online in quick succession, and
 * `sio-sessions:*` notices with payloads the protocol does not have. In each, what a page relies
 * on: the SDK's documented state, no page reload it did not promise, no exception in the page, no
 * tight retry loop, exactly one connection on the server.
 *
 * Pages load the SDK the seed's way (`/socket.io/socket.io.js` then the served
 * `/socket.io/socket.io-sessions.js`, globals `io` and `ioSessions`) from the server's own origin.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ServerOptions } from 'socket.io';
import { launchBrowser, PageRecorder, waitUntil } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/servers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A ticket socket's credential lasts this long, so a ticket refresh happens within a test. */
const TICKET_TTL = 4000;
/** The tabs' BroadcastChannel (and Web Lock) for `connectWithSession({ tabs: sharedTabs() })` without url or path on the server's origin (src/client/tabs.ts). */
const tabsChannel = () => `socket.io-sessions ${app.url}/ /socket.io`;

/** The page every test opens. `?auto=reload` connects at load (so a reload connects again), with the default policy. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>adversarial</title>
<script src="/socket.io/socket.io.js"></script>
<script src="/socket.io/socket.io-sessions.js"></script>
<script>
  window.log = [];
  window.record = {
    state: (e) => log.push('state:' + e.newState),
    unavailable: (c) => log.push('unavailable:' + c.phase + ':' + c.reason),
    invalid: (c) => log.push('invalid:' + c.reason + ':' + c.action),
    fatal: (e) => log.push('fatal:' + e.message),
  };
  if (location.search === '?auto=reload') window.socket = io.connectWithSession({ on: record });
</script>`;

/** The fake token endpoints under /t/<kind>: how a broken one answers. `refresh-*`: a good ticket first, then that kind of garbage. */
const BROKEN: Record<string, (res: ServerResponse) => void> = {
  'html-500': (res) => res.writeHead(500, { 'content-type': 'text/html' }).end('<!doctype html><h1>500 Internal Server Error</h1>'),
  'invalid-json': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token": "abc", "expiresIn'),
  'empty-object': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
  '5-MB': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>' + 'x'.repeat(5 * 1024 * 1024)),
  // Well-formed, but a 5 MB "token": the server refuses anything over 2048 characters, and engine.io a 5 MB handshake.
  '5-MB-token': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'x'.repeat(5 * 1024 * 1024), expiresIn: 60_000 })),
  'never-answers': () => {},
};

let browser: Browser;
/** The server of the running test (each test starts its own: its counts start at 0). */
let app: TestServer;
/** Requests per fake token endpoint. */
const tokenRequests = new Map<string, number>();
/** Per fake token endpoint: requests open now, and the most ever open at once. */
const tokenInFlight = new Map<string, { now: number; most: number }>();
/** Socket.IO handshakes that reached the server (before the library's check), and engine.io connections opened. */
/** The `/t/gated` token endpoint answers once this resolves (`openGate`). */
let gate: Promise<void> = Promise.resolve();
let openGate: () => void = () => undefined;
let handshakes = 0;
let engineOpened = 0;
/** A session cookie made over HTTP, from which the good tickets are minted. */
let ticketCookie: string;
const hanging = new Set<ServerResponse>();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Starts this test's server (stopped after the test). */
async function fresh(t: TestContext, ioOptions: Partial<ServerOptions> = {}): Promise<TestServer> {
  tokenRequests.clear();
  tokenInFlight.clear();
  handshakes = 0;
  engineOpened = 0;
  const server = await startServer({
    ticketTtl: TICKET_TTL,
    ioOptions,
    before(io) {
      io.use((_socket, next) => (handshakes++, next()));
      io.engine.on('connection', () => engineOpened++);
    },
    routes(expressApp) {
      expressApp.get('/adv.html', (_req, res) => res.type('html').set('cache-control', 'no-store').send(PAGE));
      expressApp.get('/t/:kind', (req, res) => {
        const kind = req.params.kind;
        const n = (tokenRequests.get(kind) ?? 0) + 1;
        tokenRequests.set(kind, n);
        const open = tokenInFlight.get(kind) ?? { now: 0, most: 0 };
        tokenInFlight.set(kind, open);
        open.most = Math.max(open.most, ++open.now);
        res.on('close', () => void open.now--);
        const refresh = /^refresh-(.*)$/.exec(kind);
        if (refresh && n === 1) {
          void app.ticket(ticketCookie, app.url).then((ticket) => res.set('cache-control', 'no-store').json(ticket));
          return;
        }
        // A good ticket, answered when the test opens the gate.
        if (kind === 'gated') return void gate.then(() => app.ticket(ticketCookie, app.url)).then((ticket) => res.set('cache-control', 'no-store').json(ticket));
        // A garbage ticket first (the server refuses it), then a good one that takes 2 s.
        if (kind === 'garbage-then-slow') {
          if (n === 1) return void res.set('cache-control', 'no-store').json({ token: 'garbage-token', expiresIn: 60_000 });
          // wall clock: a slow token endpoint
          return void setTimeout(() => void app.ticket(ticketCookie, app.url).then((ticket) => res.set('cache-control', 'no-store').json(ticket)), 2000);
        }
        if (kind.endsWith('never-answers')) hanging.add(res);
        BROKEN[refresh ? refresh[1]! : kind]!(res);
      });
    },
  });
  server.sio.on('sconnection', (socket) => {
    socket.on('echo', (value: unknown, ack: (v: unknown) => void) => ack(value));
    socket.on('kick', () => socket.disconnect(true));
    socket.on('slow', (value: unknown, ack: (v: unknown) => void) => setTimeout(() => ack(value), 600)); // wall clock: a slow handler (the app's)
    // An app handler that sends what the client asks for: stands in for an app (or a proxy) sending odd notices.
    socket.on('poke', (event: string, payload: unknown, ack: () => void) => (socket.emit(event, payload), ack()));
  });
  app = server;
  ticketCookie = await server.login();
  t.after(async () => {
    for (const res of hanging) res.destroy();
    hanging.clear();
    await server.close();
  });
  return server;
}

interface Tab {
  page: Page;
  rec: PageRecorder;
  /** Uncaught exceptions and unhandled rejections (`pageerror`), and console errors other than the browser's own network lines. */
  errors: string[];
}

/** tsx compiles this file with esbuild's keepNames: functions handed to a page may call `__name`. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (f) => f;';

async function openTab(context: BrowserContext, query = ''): Promise<Tab> {
  await context.addInitScript({ content: KEEP_NAMES_SHIM });
  const page = await context.newPage();
  const tab: Tab = { page, rec: new PageRecorder(page), errors: [] };
  page.on('pageerror', (err) => tab.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // The browser's own lines for failed requests and websockets are not the page's errors.
    if (msg.type() === 'error' && !/Failed to load resource|WebSocket connection to/.test(msg.text())) tab.errors.push(`console: ${msg.text()}`);
  });
  await page.goto(`${app.url}/adv.html${query}`);
  return tab;
}

/** Logs the page in (its cookie jar gets a session cookie). */
const login = (tab: Tab) => tab.page.evaluate(() => fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.ok));

/**
 * A logged-in tab whose page connects with `io.connectWithSession({ on: record, ...options })` (options: socket.io-client's
 * too), resolved once the SDK is 'connected'.
 */
async function connectedTab(context: BrowserContext, options: Record<string, unknown> = {}): Promise<Tab> {
  const tab = await openTab(context);
  await login(tab);
  await tab.page.evaluate((options) => {
    const { io, record } = globalThis as unknown as PageGlobals;
    (globalThis as any).socket = io.connectWithSession({ on: record, ...options });
  }, options);
  await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected', describe: () => dump([tab]) });
  return tab;
}

/** A tab without the session cookie whose page connects with `tickets({ source: 'fetch', tokenUrl: '/t/<kind>' })` and `options` (not waited for). */
async function ticketTab(context: BrowserContext, kind: string, options: Record<string, unknown> = {}): Promise<Tab> {
  const tab = await openTab(context);
  await tab.page.evaluate(([kind, options]) => {
    const { ioSessions, io, record } = globalThis as unknown as PageGlobals;
    (globalThis as any).socket = io.connectWithSession({ credential: ioSessions.tickets({ source: 'fetch', tokenUrl: `/t/${kind}` }), on: record, ...options });
  }, [kind, options] as const);
  return tab;
}

type PageSocket = {
  connected: boolean;
  id?: string;
  leader?: boolean;
  sessions: { state: string };
  connect(): unknown;
  disconnect(): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<any> };
};
type PageGlobals = { socket: PageSocket; log: string[]; record: object; io: any; ioSessions: any };

/** The SDK's state; 'reloaded' when the page was reloaded since it made its socket. */
const stateOf = (tab: Tab) => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket | undefined)?.sessions.state ?? 'reloaded');
const logOf = (tab: Tab) => tab.page.evaluate(() => (globalThis as any).log as string[]);
const dump = (tabs: Tab[]) => tabs.map((t, i) => `tab ${i}:\n${t.rec.dump()}\n  errors: ${JSON.stringify(t.errors)}`).join('\n');

/** engine.io clients the server has now, and Socket.IO sockets on the default namespace. */
const serverConnections = () => ({ engine: app.io.engine.clientsCount, sockets: app.io.of('/').sockets.size });

/** Polls until `read()` gives the same value for `stableMs` (nothing is still moving). */
async function settled<T>(read: () => T | Promise<T>, stableMs: number, timeout = 10_000): Promise<T> {
  const deadline = Date.now() + timeout;
  let last = JSON.stringify(await read());
  let since = Date.now();
  for (;;) {
    await sleep(50);
    const now = JSON.stringify(await read());
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= stableMs) return JSON.parse(now) as T;
    if (Date.now() > deadline) throw new Error(`still changing after ${timeout} ms: ${now}`);
  }
}

describe('a broken token endpoint (tickets({ source: "fetch", tokenUrl }))', () => {
  test('garbage, a 5 MB body or no answer, at the first connect or at a ticket refresh: "unavailable" and backoff, never a reload, an exception or a tight loop', { timeout: 60_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext(); // no session cookie: a page that went on without a ticket would be refused and reload
    try {
      const kinds = [...Object.keys(BROKEN), ...Object.keys(BROKEN).filter((k) => !k.startsWith('5-MB')).map((k) => `refresh-${k}`)];
      const tabs = await Promise.all(kinds.map(() => openTab(context)));
      handshakes = 0;
      const started = Date.now();
      await Promise.all(
        tabs.map((tab, i) =>
          tab.page.evaluate((kind) => {
            const { ioSessions, io, record } = globalThis as unknown as PageGlobals;
            (globalThis as any).socket = io.connectWithSession({ credential: ioSessions.tickets({ source: 'fetch', tokenUrl: `/t/${kind}` }), on: record });
          }, kinds[i]!),
        ),
      );
      // The refresh pages connect with their first (good) ticket.
      const refreshTabs = tabs.filter((_, i) => kinds[i]!.startsWith('refresh-'));
      await Promise.all(refreshTabs.map((tab) => waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected with the first ticket', describe: () => dump(tabs) })));
      // The first ticket lasts 4 s (+2 s of grace on the server): 12 s covers the refresh, the expiry and the reconnects after it.
      await sleep(Math.max(0, 12_000 - (Date.now() - started)));

      const report = await Promise.all(
        tabs.map(async (tab, i) => ({ kind: kinds[i]!, requests: tokenRequests.get(kinds[i]!) ?? 0, atOnce: tokenInFlight.get(kinds[i]!)?.most ?? 0, state: await stateOf(tab), log: await logOf(tab), navigations: tab.rec.navigations, errors: tab.errors })),
      );
      const text = JSON.stringify(report, null, 1);
      t.diagnostic(`token endpoint requests in 12 s: ${report.map((r) => `${r.kind} ${r.requests}`).join(', ')}`);
      for (const r of report) {
        const refresh = r.kind.startsWith('refresh-');
        assert.equal(r.navigations, 1, `${r.kind}: the page was not reloaded\n${text}`);
        assert.deepEqual(r.errors, [], `${r.kind}: no exception in the page\n${text}`);
        assert.ok(!r.log.some((l) => l.startsWith('fatal')), `${r.kind}: nothing fatal\n${text}`);
        // 12 s with the default backoff (1 s, doubling, full jitter) is at most 12 tries; a tight loop is thousands.
        // A ticket socket also renews once after the other tabs' page loads (their tickets() calls): so in
        // 12 s, one at a time, each given up after 10 s, a never-answering endpoint sees at most 1 + 2 requests.
        if (r.kind.endsWith('never-answers')) {
          assert.equal(r.atOnce, 1, `${r.kind}: one request at a time\n${text}`);
          assert.ok(r.requests <= (refresh ? 3 : 2), `${r.kind}: each given up after 10 s\n${text}`);
        }
        else assert.ok(r.requests >= 2 && r.requests <= 13, `${r.kind}: retried with backoff (${r.requests} requests in 12 s)\n${text}`);
        if (!r.kind.endsWith('never-answers')) assert.ok(r.log.includes('unavailable:credential:store-error'), `${r.kind}: the failure is reported as "unavailable" (phase credential)\n${text}`);
        if (!refresh) assert.equal(r.state, 'connecting', `${r.kind}: still trying\n${text}`);
        if (refresh) {
          // The server ends the socket when its ticket runs out: one invalid answer, then the SDK waits for a ticket.
          assert.deepEqual(r.log.filter((l) => l.startsWith('invalid')), ['invalid:ticket-expired:reconnect'], `${r.kind}: the expiry is one invalid answer, and no reload\n${text}`);
          assert.equal(r.state, 'connecting', `${r.kind}: waiting for a ticket\n${text}`);
        }
      }
      assert.equal(handshakes, refreshTabs.length, `no page tried a handshake without a ticket (only the refresh pages' first connect): ${handshakes}\n${text}`);
    } finally {
      await context.close();
    }
  });

  test('a ticket refused, the next one slow: "online" while the SDK waits for it makes one connection, not two', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    let connections = 0;
    app.io.on('connection', () => connections++);
    try {
      const tab = await ticketTab(context, 'garbage-then-slow');
      await waitUntil(() => logOf(tab), (l) => l.includes('invalid:ticket-malformed:reconnect'), { what: 'the garbage ticket refused', describe: () => dump([tab]) });
      await waitUntil(() => Promise.resolve(tokenRequests.get('garbage-then-slow') ?? 0), (n) => n === 2, { what: 'the next ticket asked for', describe: () => dump([tab]) });
      // The SDK waits for that ticket before it connects again; "online" now starts an attempt, which waits for it too.
      await tab.page.evaluate(() => dispatchEvent(new Event('online')));
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { timeout: 8000, what: 'connected with the slow ticket', describe: () => dump([tab]) });
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      assert.equal(connections, 1, `one socket on the server (a second connect() of the attempt under way sent a second CONNECT)\n${dump([tab])}`);
      assert.deepEqual((await logOf(tab)).filter((l) => l.startsWith('state:')), ['state:connecting', 'state:connected']);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });

  test('the transport drops while the first CONNECT waits for its ticket: socket.io-client asks again on the next transport, and only that one sends a CONNECT', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    gate = new Promise((resolve) => (openGate = resolve));
    t.after(() => openGate());
    const context = await browser.newContext();
    let connections = 0;
    app.io.on('connection', () => connections++);
    try {
      const tab = await ticketTab(context, 'gated', { reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
      // The first transport is open and its CONNECT waits for the ticket; the server drops it; socket.io-client opens another.
      await waitUntil(() => Promise.resolve(engineOpened), (n) => n === 1, { what: 'the first transport', describe: () => dump([tab]) });
      for (const client of Object.values((app.io.engine as unknown as { clients: Record<string, { close(): void }> }).clients)) client.close();
      await waitUntil(() => Promise.resolve(engineOpened), (n) => n === 2, { what: "socket.io-client's next transport", describe: () => dump([tab]) });
      openGate();
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected with the ticket', describe: () => dump([tab]) });
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      assert.equal(connections, 1, `one socket on the server (the dropped transport's auth call answered too sent a second CONNECT)\n${dump([tab])}`);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('the invalid-session policy against a server that keeps refusing', () => {
  test('onInvalid "reload" (the default): 3 reloads (maxReloads) then it stops in state "invalid": no loop', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext(); // never logged in: every handshake is refused with no-session-id
    try {
      handshakes = 0;
      const tab = await openTab(context, '?auto=reload');
      // Each load: one refused handshake, one fresh reconnect (also refused), then a reload; the 4th load stops.
      await waitUntil(() => stateOf(tab), (s) => s === 'invalid' && tab.rec.navigations === 4, { what: 'the 4th load to stop', describe: () => dump([tab]) });
      const stable = await settled(() => ({ handshakes, navigations: tab.rec.navigations }), 2000);
      assert.deepEqual(stable, { handshakes: 8, navigations: 4 }, dump([tab]));
      assert.deepEqual(await logOf(tab), ['state:connecting', 'invalid:no-session-id:reconnect', 'invalid:no-session-id:stop', 'state:invalid']);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });

  test('an onInvalid function that throws: its error is the page\'s uncaught error, the SDK stays "invalid" with no more attempts, and ctx.reconnect() still works', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    try {
      handshakes = 0;
      const tab = await openTab(context);
      await tab.page.evaluate(() => {
        const { io, record } = globalThis as unknown as PageGlobals;
        (globalThis as any).socket = io.connectWithSession({
          on: record,
          onInvalid: (ctx: { reconnect(): void }) => {
            (globalThis as any).again = ctx.reconnect;
            throw new Error('app bug in onInvalid');
          },
        });
      });
      await waitUntil(() => stateOf(tab), (s) => s === 'invalid', { what: 'state invalid', describe: () => dump([tab]) });
      assert.deepEqual(await settled(() => handshakes, 1500), 2, 'the refused handshake and one fresh reconnect, then nothing');
      assert.equal(tab.rec.navigations, 1);
      assert.deepEqual(tab.errors, ['pageerror: app bug in onInvalid'], 'the app sees its own error, once');
      // The app logs in and asks again: the SDK was not broken by the throw.
      await login(tab);
      await tab.page.evaluate(() => (globalThis as any).again());
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected after ctx.reconnect()', describe: () => dump([tab]) });
    } finally {
      await context.close();
    }
  });
});

describe('garbage on the shared tabs\' BroadcastChannel', () => {
  test('malformed, huge, fake acks, fake receipts, a fake holder: every tab keeps getting exactly its own acks, no exception in any page', { timeout: 40_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    const tabs: Tab[] = [];
    try {
      const shared = async () => {
        const tab = await openTab(context);
        tabs.push(tab);
        if (tabs.length === 1) await login(tab); // one cookie jar: the tabs share the session
        await tab.page.evaluate(() => {
          const { io, ioSessions, record } = globalThis as unknown as PageGlobals;
          (globalThis as any).socket = io.connectWithSession({ tabs: ioSessions.sharedTabs(), on: record });
        });
        await waitUntil(() => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).connected), Boolean, { what: 'connected', describe: () => dump(tabs) });
        return tab;
      };
      const holder = await shared();
      const follower = await shared();
      assert.equal(await holder.page.evaluate(() => ((globalThis as any).socket as PageSocket).leader), true);
      const attacker = await openTab(context);
      tabs.push(attacker);
      /** Posts `messages` on the tabs' channel from a third page of the same origin. */
      const post = (messages: unknown[]) =>
        attacker.page.evaluate(
          ([name, list]) => {
            const channel = new BroadcastChannel(name as string);
            for (const m of list as unknown[]) channel.postMessage(m);
            channel.close();
          },
          [tabsChannel(), messages] as const,
        );
      /** `count` acked emits of 'slow' (acked after 600 ms) from `tab`: resolves with what each ack carried (or its error), and how often each ack ran. */
      const slowEmits = (tab: Tab, label: string, count: number) =>
        tab.page.evaluate(
          ([label, count]) =>
            Promise.all(
              Array.from({ length: count as number }, (_, i) => {
                const value = `${label}-${i}`;
                let calls = 0;
                return new Promise((resolve) => {
                  ((globalThis as any).socket as PageSocket).emit('slow', value, (reply: unknown) => {
                    calls++;
                    setTimeout(() => resolve({ value, reply, calls }), 300); // wall clock: a window in which a second call would show
                  });
                });
              }),
            ),
          [label, count] as const,
        );
      const echoes = (tab: Tab, label: string) =>
        tab.page.evaluate(
          (label) => Promise.all([1, 2, 3].map((i) => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck('echo', `${label}-${i}`).catch((e: Error) => e.message))),
          label,
        );

      // 1. While each tab's emits wait for their acks: messages that are not the tabs' protocol, a huge one, and
      // acks and receipts ('d') for every emit number, addressed to no tab.
      const inFlight = [slowEmits(holder, 'holder', 5), slowEmits(follower, 'follower', 5)];
      const numbers = Array.from({ length: 20 }, (_, i) => i + 1);
      await post([
        null,
        42,
        'q',
        [],
        {},
        { type: 'zz' },
        { type: 'toString' },
        { type: '__proto__' },
        { type: 'ack' },
        { type: 'x', to: 0.5 },
        { type: 'event', event: 'news', args: ['x'.repeat(4 * 1024 * 1024)] },
        ...numbers.map((n) => ({ type: 'ack', n, args: ['FAKE'] })),
        ...numbers.map((n) => ({ type: 'ack', n, error: 'FAKE error' })),
        ...numbers.map((n) => ({ type: 'ack', to: 0.5, n, args: ['FAKE'] })),
        ...numbers.map((n) => ({ type: 'sent', n })),
      ]);
      const [holderAcks, followerAcks] = (await Promise.all(inFlight)) as Array<Array<{ value: string; reply: unknown; calls: number }>>;
      for (const acks of [holderAcks!, followerAcks!]) {
        for (const a of acks) assert.deepEqual({ reply: a.reply, calls: a.calls }, { reply: a.value, calls: 1 }, `each ack once, with its own value: ${JSON.stringify(acks)}\n${dump(tabs)}`);
      }
      assert.deepEqual(await echoes(holder, 'h1'), ['h1-1', 'h1-2', 'h1-3']);
      assert.deepEqual(await echoes(follower, 'f1'), ['f1-1', 'f1-2', 'f1-3']);

      // 2. A fake holder announces itself: the real holder answers, and the follower's emits still reach the server, acked once to it.
      await post([{ type: 'holder', from: 12345, locked: true, session: 0, connected: true, state: 'connected', id: 'fake-id' }, { type: 'holder' }]);
      assert.deepEqual(await echoes(follower, 'f2'), ['f2-1', 'f2-2', 'f2-3'], dump(tabs));
      assert.deepEqual(await echoes(holder, 'h2'), ['h2-1', 'h2-2', 'h2-3']);
      const ids = await Promise.all([follower, holder].map((tab) => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id)));
      assert.equal(ids[0], ids[1], 'the follower shows the real socket id again');
      assert.deepEqual(serverConnections(), { engine: 1, sockets: 1 }, 'still one connection for the browser');
      for (const tab of tabs) assert.deepEqual(tab.errors, [], `no exception in any page\n${dump(tabs)}`);

      // 3. Messages of the protocol's types with fields of the wrong shape (the holder's id as a tab
      // learns it from the channel): each is left alone by every tab, no exception, every tab keeps its acks.
      const holderId = await attacker.page.evaluate(
        (name) =>
          new Promise<number>((resolve) => {
            const channel = new BroadcastChannel(name);
            channel.onmessage = ({ data }) => data?.type === 'holder' && (channel.close(), resolve(data.from));
            channel.postMessage({ type: 'hello' });
          }),
        tabsChannel(),
      );
      await post([
        { type: 'event', event: 'news', args: null },
        { type: 'event', event: 'news', args: 'abc' },
        { type: 'sdk', event: 'invalid', payload: null },
        { type: 'holder', from: 'x', session: 'y', connected: 1, state: 5 },
        { type: 'holder', from: 7 },
        { type: 'emit', to: holderId, from: 1, n: 1, session: 0, event: 'connect', args: [], ack: false },
        { type: 'emit', to: holderId, from: 1, n: 2, session: 0, event: 42, args: [], ack: false },
        { type: 'emit', to: holderId, from: 1, n: 3, session: 0, event: 'echo', args: 5, ack: true },
        ...numbers.map((n) => ({ type: 'ack', to: holderId, n, notice: null })),
        ...numbers.map((n) => ({ type: 'ack', to: holderId, n, args: {} })),
      ]);
      assert.deepEqual(await echoes(follower, 'f3'), ['f3-1', 'f3-2', 'f3-3'], dump(tabs));
      assert.deepEqual(await echoes(holder, 'h3'), ['h3-1', 'h3-2', 'h3-3']);
      assert.deepEqual(await Promise.all(tabs.slice(0, 2).map((tab) => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).leader))), [true, false]);
      assert.deepEqual(serverConnections(), { engine: 1, sockets: 1 }, 'still one connection for the browser');
      for (const tab of tabs) assert.deepEqual(tab.errors, [], `no exception in any page: a wrong-shaped message is left alone\n${dump(tabs)}`);
    } finally {
      await context.close();
    }
  });
});

/** A heartbeat of 1 s + 1 s (default 25 s + 20 s): the server lets go of a connection the client left without a word within about 2 s. */
const SHORT_HEARTBEAT = { pingInterval: 1000, pingTimeout: 1000 };

/** Waits until the server has exactly `expected` connections, and still has them a second later. */
async function serverSettlesAt(expected: { engine: number; sockets: number }, tabs: Tab[]): Promise<void> {
  await waitUntil(() => Promise.resolve(serverConnections()), (c) => c.engine === expected.engine && c.sockets === expected.sockets, { timeout: 8000, what: `server connections ${JSON.stringify(expected)}`, describe: () => dump(tabs) });
  assert.deepEqual(await settled(serverConnections, 1000), expected, dump(tabs));
}

describe('quick sequences', () => {
  const flip = (tab: Tab, calls: number) =>
    tab.page.evaluate((calls) => {
      const socket = (globalThis as any).socket as PageSocket;
      for (let i = 0; i < calls; i++) {
        if (i % 2 === 0) socket.connect();
        else socket.disconnect();
      }
    }, calls);

  test('connect()/disconnect() 50 times in a row, in a tab of its own: ends as the last call says, with one connection on the server or none; disconnect() while connecting or waiting to retry stops the SDK too', { timeout: 30_000 }, async (t) => {
    await fresh(t, SHORT_HEARTBEAT);
    const context = await browser.newContext();
    // The pages' timers on a fake clock that flows as the real one, so the quiet windows below take no real time.
    await context.clock.install();
    try {
      const tab = await openTab(context);
      await login(tab);
      await tab.page.evaluate(() => {
        const { io, record } = globalThis as unknown as PageGlobals;
        (globalThis as any).socket = io.connectWithSession({ autoConnect: false, on: record });
      });
      await flip(tab, 50); // ends with disconnect()
      assert.equal(await settled(() => serverConnections().sockets, 1000), 0, dump([tab]));
      assert.equal(await stateOf(tab), 'disconnected', dump([tab]));
      // Each connect() that the next disconnect() cuts short leaves an engine.io connection on the server until
      // its heartbeat gives up (45 s by default; 2 s on this server): engine.io-client closes a polling
      // transport still in its handshake without telling the server (socketio/socket.io#5088).
      t.diagnostic(`engine.io connections left open by 25 connect()/disconnect() pairs: ${app.io.engine.clientsCount}`);
      await serverSettlesAt({ engine: 0, sockets: 0 }, [tab]);
      await flip(tab, 51); // ends with connect()
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected', describe: () => dump([tab]) });
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);

      // disconnect() at once after connectWithSession() (autoConnect): the SDK's state follows, and stays.
      const right = await tab.page.evaluate(() => {
        const { io } = globalThis as unknown as PageGlobals;
        const socket = ((globalThis as any).early = io.connectWithSession({ forceNew: true }) as PageSocket);
        socket.disconnect();
        return socket.sessions.state;
      });
      // Past the SDK's first retry (0.5-1 s) on the page's clock: a retry that fired would show as 'connecting'.
      await tab.page.clock.runFor(1500);
      const early = await tab.page.evaluate(() => {
        const socket = (globalThis as any).early as PageSocket;
        return [socket.sessions.state, socket.connected];
      });
      assert.deepEqual([right, ...early], ['disconnected', 'disconnected', false]);

      // After a server-side disconnect the SDK retries after a backoff (0.5-1 s); the app's disconnect() meanwhile stops that retry.
      const kicked = await tab.page.evaluate(async () => {
        const socket = (globalThis as any).socket as PageSocket;
        await new Promise((resolve) => {
          socket.on('disconnect', resolve);
          socket.emit('kick');
        });
        const waiting = socket.sessions.state;
        socket.disconnect();
        return waiting;
      });
      // Past the backoff retry on the page's clock.
      await tab.page.clock.runFor(2500);
      const after = await tab.page.evaluate(() => {
        const socket = (globalThis as any).socket as PageSocket;
        return [socket.sessions.state, socket.connected];
      });
      assert.deepEqual([kicked, ...after], ['connecting', 'disconnected', false], dump([tab]));
      await serverSettlesAt({ engine: 0, sockets: 0 }, [tab]);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });

  test('connect()/disconnect() 50 times in a row in shared tabs, in a follower and in the holder: ends as the last call says, one connection on the server', { timeout: 40_000 }, async (t) => {
    await fresh(t, SHORT_HEARTBEAT);
    const context = await browser.newContext();
    const tabs: Tab[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const tab = await openTab(context);
        tabs.push(tab);
        if (i === 0) await login(tab);
        await tab.page.evaluate(() => {
          const { io, ioSessions, record } = globalThis as unknown as PageGlobals;
          (globalThis as any).socket = io.connectWithSession({ tabs: ioSessions.sharedTabs(), on: record });
        });
        await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected', describe: () => dump(tabs) });
      }
      const [holder, follower] = tabs as [Tab, Tab];
      const connectedOf = (tab: Tab) => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).connected);

      await flip(follower, 50);
      assert.equal(await settled(() => stateOf(follower), 500), 'disconnected', dump(tabs));
      assert.equal(await connectedOf(holder), true);
      assert.deepEqual(await settled(serverConnections, 1000), { engine: 1, sockets: 1 }, dump(tabs));
      assert.equal(engineOpened, 1, 'a follower coming and going never opens a connection');
      await flip(follower, 51);
      await waitUntil(() => stateOf(follower), (s) => s === 'connected', { what: 'the follower connected', describe: () => dump(tabs) });
      assert.deepEqual(await settled(serverConnections, 1000), { engine: 1, sockets: 1 }, dump(tabs));
      assert.equal(engineOpened, 1);

      // The holder: each disconnect() hands the connection to the other tab, each connect() queues for it again.
      await flip(holder, 51);
      await waitUntil(() => Promise.all(tabs.map(stateOf)), (s) => s.every((x) => x === 'connected'), { what: 'both tabs connected', describe: () => dump(tabs) });
      t.diagnostic(`engine.io connections opened while the holder flipped 51 times: ${engineOpened - 1}`);
      await serverSettlesAt({ engine: 1, sockets: 1 }, tabs);
      const leaders = await Promise.all(tabs.map((t) => t.page.evaluate(() => ((globalThis as any).socket as PageSocket).leader)));
      assert.equal(leaders.filter(Boolean).length, 1, `one tab holds the connection: ${leaders}`);
      const reply = await Promise.all(tabs.map((t, i) => t.page.evaluate((i) => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck('echo', i), i)));
      assert.deepEqual(reply, [0, 1]);
      for (const tab of tabs) assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });

  test("shared tabs: the holder's app calls connect() while its handshake is under way: one socket on the server; an unset \"on\" listener is no error", { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    let hold = true;
    app.io.use((_socket, next) => (hold ? void setTimeout(next, 1000) : next())); // wall clock: a slow handshake
    let connections = 0;
    app.io.on('connection', () => connections++);
    try {
      const tab = await openTab(context);
      await login(tab);
      await tab.page.evaluate(() => {
        const { io, ioSessions, record } = globalThis as unknown as PageGlobals;
        (globalThis as any).socket = io.connectWithSession({ tabs: ioSessions.sharedTabs(), on: { ...record, fatal: undefined } });
      });
      await waitUntil(() => Promise.resolve(handshakes), (n) => n === 1, { what: 'the held handshake', describe: () => dump([tab]) });
      await tab.page.evaluate(() => void ((globalThis as any).socket as PageSocket).connect());
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected', describe: () => dump([tab]) });
      hold = false;
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      assert.equal(connections, 1, `one server socket for one tab (a second connect() while the handshake was under way sent a second CONNECT)\n${dump([tab])}`);
      assert.deepEqual(tab.errors, [], 'the unset listener was skipped (no "is not a function" at each state change)');
    } finally {
      await context.close();
    }
  });

  test('offline/online 20 times in 2 s: connected within 1.6 s of the last "online", after a handful of attempts', { timeout: 30_000 }, async (t) => {
    await fresh(t, SHORT_HEARTBEAT);
    const context = await browser.newContext();
    try {
      const tab = await connectedTab(context);
      const before = { handshakes, engineOpened };
      // offline, online, ... 20 switches 100 ms apart; the last one goes online.
      let online = 0;
      for (let i = 0; i < 20; i++) {
        await context.setOffline(i % 2 === 0);
        online = Date.now();
        if (i < 19) await sleep(100); // wall clock: the network flaps at a real pace
      }
      await waitUntil(() => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).connected), Boolean, { timeout: 5000, interval: 10, what: 'connected', describe: () => dump([tab]) });
      const took = Date.now() - online;
      // Usually well under 1 s, but not always: when the connection dropped while online (between two switches),
      // socket.io-client's own reconnection waits its first delay (1 s +-50%: up to 1.5 s) and `online` does not
      // cut that short. Cutting it short (+11 B in the core) made every one of the 10 "online" switches a new connection.
      assert.ok(took <= 1600, `connected ${took} ms after the last "online"\n${dump([tab])}`);
      const attempts = { handshakes: handshakes - before.handshakes, engine: engineOpened - before.engineOpened };
      t.diagnostic(`connected ${took} ms after the last "online"; during the flapping: ${attempts.engine} engine.io connections, ${attempts.handshakes} handshakes`);
      assert.ok(attempts.engine <= 6, `a handful of connection attempts: ${JSON.stringify(attempts)}\n${dump([tab])}`);
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });
});

describe("socket.io-client's own reconnection and the browser's \"online\"", () => {
  test('waiting out its backoff (20 s here): "online" connects at once; an attempt under way is left alone; after the app\'s disconnect() "online" connects nothing; a connected socket is left alone while an SDK retry is pending', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    try {
      // socket.io-client's backoff at 20 s, no jitter: without the SDK cutting it short, a dropped connection waits 20 s.
      const tab = await connectedTab(context, { reconnectionDelay: 20_000, reconnectionDelayMax: 20_000, randomizationFactor: 0 });
      const connected = (what: string, timeout = 3000) =>
        waitUntil(() => tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).connected), Boolean, { timeout, interval: 10, what, describe: () => dump([tab]) });
      const online = () => tab.page.evaluate(() => dispatchEvent(new Event('online')));

      // 1. The server drops the transport (the page stays online): socket.io-client waits out its 20 s.
      let before = { handshakes, engineOpened };
      for (const socket of app.io.of('/').sockets.values()) socket.conn.close();
      await waitUntil(() => stateOf(tab), (s) => s === 'connecting', { what: 'the drop seen', describe: () => dump([tab]) });
      const onlineAt = Date.now();
      await online();
      await connected('connected after "online", not after the backoff');
      const took = Date.now() - onlineAt;
      t.diagnostic(`connected ${took} ms after "online" (socket.io-client's backoff: 20 s)`);
      assert.deepEqual({ handshakes: handshakes - before.handshakes, engine: engineOpened - before.engineOpened }, { handshakes: 1, engine: 1 }, 'one new connection');
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);

      // 2. An attempt under way (its handshake held 1 s by the server) is not cut short by "online": no second connection.
      let hold = true;
      app.io.use((_socket, next) => (hold ? void setTimeout(next, 1000) : next())); // wall clock: a slow handshake
      before = { handshakes, engineOpened };
      await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).disconnect());
      await tab.page.evaluate(() => void ((globalThis as any).socket as PageSocket).connect());
      await waitUntil(() => Promise.resolve(handshakes - before.handshakes), (n) => n === 1, { what: 'the held handshake', describe: () => dump([tab]) });
      await online();
      await connected('connected once the held handshake is let go');
      hold = false;
      assert.deepEqual({ handshakes: handshakes - before.handshakes, engine: engineOpened - before.engineOpened }, { handshakes: 1, engine: 1 }, 'the attempt under way went on alone');
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);

      // 3. The app's disconnect(), then "online": nothing connects (serverSettlesAt holds the count for a second).
      before = { handshakes, engineOpened };
      await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).disconnect());
      await online();
      await serverSettlesAt({ engine: 0, sockets: 0 }, [tab]);
      assert.equal(await stateOf(tab), 'disconnected');
      assert.deepEqual({ handshakes: handshakes - before.handshakes, engine: engineOpened - before.engineOpened }, { handshakes: 0, engine: 0 });

      // 4. Connected while an SDK retry is still pending (the server kicked the socket: the SDK's retry waits its
      // 1-30 s backoff; the app reconnects at once, socket.io's documented pattern): "online" leaves the connection alone.
      await tab.page.evaluate(() => {
        const socket = (globalThis as any).socket as PageSocket;
        socket.on('disconnect', (reason: string) => reason === 'io server disconnect' && socket.connect());
        socket.connect();
      });
      await connected('connected again');
      await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).emit('kick'));
      await waitUntil(() => Promise.resolve(handshakes - before.handshakes), (n) => n === 2, { what: "the app's reconnect after the kick", describe: () => dump([tab]) });
      await connected('connected after the kick');
      const id = await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id);
      await online();
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      assert.equal(await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id), id, 'the same connection: not closed by "online"');
      assert.equal(handshakes - before.handshakes, 2);
      // The SDK's retry (0.5-1 s after the kick) was dropped at the app's connect: it did not move the state to 'connecting'.
      assert.equal(await stateOf(tab), 'connected');
      assert.equal((await logOf(tab)).at(-1), 'state:connected', (await logOf(tab)).join(' '));
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });
  test('socket.io-client gives up (reconnection: false; reconnectionAttempts used up): the SDK says "disconnected", "online" starts nothing; the app\'s connect() connects', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    // engine.io's allowRequest (test only: set on the running server) refuses new transports while `refusing`.
    let refusing = false;
    let requests = 0;
    (app.io.engine as unknown as { opts: { allowRequest?: unknown } }).opts.allowRequest = (_req: unknown, cb: (err: string | null, ok: boolean) => void) => (requests++, refusing ? cb('refused', false) : cb(null, true));
    const online = (tab: Tab) => tab.page.evaluate(() => dispatchEvent(new Event('online')));
    const drop = () => {
      for (const socket of app.io.of('/').sockets.values()) socket.conn.close();
    };
    try {
      // 1. reconnection: false, the server drops the transport: socket.io-client will not reconnect, and the SDK says so.
      const tab = await connectedTab(context, { reconnection: false });
      drop();
      await waitUntil(() => stateOf(tab), (s) => s === 'disconnected', { what: 'disconnected after the drop', describe: () => dump([tab]) });
      let before = { handshakes, engineOpened, requests };
      await online(tab);
      await serverSettlesAt({ engine: 0, sockets: 0 }, [tab]);
      assert.deepEqual({ state: await stateOf(tab), handshakes: handshakes - before.handshakes, requests: requests - before.requests }, { state: 'disconnected', handshakes: 0, requests: 0 }, '"online" started nothing');
      await tab.page.evaluate(() => void ((globalThis as any).socket as PageSocket).connect());
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: "connected by the app's connect()", describe: () => dump([tab]) });
      await serverSettlesAt({ engine: 1, sockets: 1 }, [tab]);
      await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).disconnect());
      await serverSettlesAt({ engine: 0, sockets: 0 }, [tab]);

      // 2. reconnectionAttempts: 2, every new transport refused: after its two attempts socket.io-client gives up.
      const limited = await connectedTab(context, { reconnectionAttempts: 2, reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
      refusing = true;
      before = { handshakes, engineOpened, requests };
      drop();
      await waitUntil(() => stateOf(limited), (s) => s === 'disconnected', { what: 'disconnected once the attempts are used up', describe: () => dump([limited]) });
      const attempts = requests - before.requests;
      assert.ok(attempts >= 2, `socket.io-client made its attempts (${attempts} requests)`);
      await online(limited);
      await settled(() => requests, 1000);
      assert.equal(requests - before.requests, attempts, '"online" started no attempt after socket.io-client gave up');
      assert.equal(await stateOf(limited), 'disconnected');
      refusing = false;
      await limited.page.evaluate(() => void ((globalThis as any).socket as PageSocket).connect());
      await waitUntil(() => stateOf(limited), (s) => s === 'connected', { what: "connected by the app's connect()", describe: () => dump([limited]) });
      await serverSettlesAt({ engine: 1, sockets: 1 }, [limited]);
      assert.deepEqual([...tab.errors, ...limited.errors], []);
    } finally {
      await context.close();
    }
  });
});

describe('notices with payloads the protocol does not have', () => {
  test('sio-sessions:invalid / sio-sessions:unavailable with null, a string, a number, an unknown code: ignored, the socket stays connected', { timeout: 30_000 }, async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    try {
      const tab = await connectedTab(context);
      const id = await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id);
      const poke = (event: string, payload: unknown) => tab.page.evaluate(([e, p]) => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck('poke', e, p), [event, payload] as const);
      for (const event of ['sio-sessions:invalid', 'sio-sessions:unavailable']) {
        for (const payload of [null, 'logout', 42, [], {}, { code: 'NOT_A_CODE', reason: 'destroyed' }, { reason: 'destroyed' }]) await poke(event, payload);
      }
      await settled(() => logOf(tab), 500);
      assert.deepEqual(await logOf(tab), ['state:connecting', 'state:connected'], 'no SDK event for any of them');
      assert.equal(await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id), id, 'the same connection');

      // A known code without a reason: an "unavailable" notice is passed on as such (reason undefined), the socket stays.
      await poke('sio-sessions:unavailable', { code: 'SESSION_UNAVAILABLE' });
      await waitUntil(() => logOf(tab), (l) => l.length === 3, { what: 'the unavailable event', describe: () => dump([tab]) });
      assert.deepEqual((await logOf(tab)).slice(2), ['unavailable:connected:undefined']);
      assert.equal(await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).id), id);
      assert.deepEqual(tab.errors, []);
    } finally {
      await context.close();
    }
  });
});

describe('the app\'s own listeners', () => {
  test('a state listener that throws at every change: the SDK still connects, acks, and follows a server kick back to connected; each throw is one uncaught page error, and the page\'s other listeners still hear every change', async (t) => {
    await fresh(t);
    const context = await browser.newContext();
    try {
      const tab = await openTab(context);
      await login(tab);
      await tab.page.evaluate(() => {
        const { io, record } = globalThis as unknown as PageGlobals;
        const socket = io.connectWithSession({
          on: {
            state: () => {
              throw new Error('app bug in state');
            },
          },
        });
        socket.sessions.on('state', (record as { state: (e: unknown) => void }).state);
        (globalThis as any).socket = socket;
      });
      await waitUntil(() => stateOf(tab), (s) => s === 'connected', { what: 'connected', describe: () => dump([tab]) });
      const echo = await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck('echo', 7));
      assert.equal(echo, 7);
      await tab.page.evaluate(() => ((globalThis as any).socket as PageSocket).emit('kick'));
      await waitUntil(() => logOf(tab), (l) => l.filter((s) => s === 'state:connected').length === 2, { what: 'connected again after the kick', describe: () => dump([tab]) });
      const log = await logOf(tab);
      // (The first change, 'connecting', happened inside connectWithSession(), before the recording listener was added.)
      assert.deepEqual(log, ['state:connected', 'state:connecting', 'state:connected'], dump([tab]));
      await waitUntil(async () => tab.errors.length, (n) => n === log.length + 1, { what: 'one page error per change', describe: () => dump([tab]) });
      assert.ok(tab.errors.every((e) => /pageerror: .*app bug in state/.test(e)), JSON.stringify(tab.errors));
    } finally {
      await context.close();
    }
  });
});
