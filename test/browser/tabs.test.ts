/**
 * Shared tabs (`socket.io-sessions/tabs`) in real Chromium: several pages of one browser context
 * (one cookie jar, like the tabs of one browser) on the reference server's demo page, which
 * connects with `io.connectWithSession({ tabs: ioSessions.sharedTabs() })` from the served script.
 * One tab holds the connection (Web Locks), the others reach it over BroadcastChannel.
 *
 * The server's connection counts come from the demo's own `state` event (`connections: { open,
 * opened }`: engine.io clients now, Socket.IO connections since the start).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, PageRecorder, textOf, waitUntil } from '../helpers/browser.js';
import { startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';

interface Tab {
  page: Page;
  rec: PageRecorder;
}

interface DemoState {
  counter: number;
  connections: { open: number; opened: number };
}

let browser: Browser;

/** tsx compiles this file with esbuild's keepNames: functions handed to a page may call `__name`. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (f) => f;';

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** A reference server of its own (its connection counts start at 0) and a browser context: the "browser" whose tabs share. */
async function setup(env: Record<string, string> = {}): Promise<{ server: ReferenceServer; context: BrowserContext; teardown: () => Promise<void> }> {
  const server = await startReferenceServer({ env });
  const context = await browser.newContext();
  await context.addInitScript({ content: KEEP_NAMES_SHIM });
  return {
    server,
    context,
    teardown: async () => {
      await context.close();
      await server.dispose();
    },
  };
}

function dump(tabs: Tab[], server: ReferenceServer): string {
  return `${tabs.map((t, i) => `tab ${i}:\n${t.rec.dump()}`).join('\n')}\nserver output:\n${server.output()}`;
}

/** Opens `n` tabs of the demo page in `context`, one after the other, each connected. */
async function openTabs(context: BrowserContext, server: ReferenceServer, n: number): Promise<Tab[]> {
  const tabs: Tab[] = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    const tab = { page, rec: new PageRecorder(page) };
    tabs.push(tab);
    await page.goto(`${server.url}/`);
    await waitForState(tab, tabs, server, 'connected');
  }
  return tabs;
}

function waitForState(tab: Tab, tabs: Tab[], server: ReferenceServer, state: string, timeout = 10_000): Promise<unknown> {
  return waitUntil(() => textOf(tab.page, '#state'), (s) => s === state, { timeout, what: `#state to be ${state}`, describe: () => dump(tabs, server) });
}

/** The demo's `socket` (a global lexical binding of the page's script, not a window property). */
type PageSocket = {
  leader: boolean;
  connected: boolean;
  id?: string;
  sessions: { state: string; dispose(): void };
  on(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  disconnect(): unknown;
  connect(): unknown;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<any> };
};

/** The server's view, asked through `tab`'s socket (whichever tab holds the connection). */
function demoState(tab: Tab): Promise<DemoState> {
  return tab.page.evaluate(() => ((0, eval)('socket') as PageSocket).timeout(10_000).emitWithAck('state'));
}

function isLeader(tab: Tab): Promise<boolean> {
  return tab.page.evaluate(() => ((0, eval)('socket') as PageSocket).leader);
}

/** `count` acked increments sent at once from `tab`; resolves with the counter each ack carried. */
function increments(tab: Tab, count: number): Promise<number[]> {
  return tab.page.evaluate(
    (n) => Promise.all(Array.from({ length: n }, () => ((0, eval)('socket') as PageSocket).timeout(10_000).emitWithAck('increment').then((r: { counter: number }) => r.counter))),
    count,
  );
}

function httpCounter(tab: Tab): Promise<number> {
  return tab.page.evaluate(() => fetch('/api/session', { cache: 'no-store' }).then((r) => r.json()).then((b: { counter: number }) => b.counter));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sorted = (values: number[]) => [...values].sort((a, b) => a - b);

describe('shared tabs on the demo page (io.connectWithSession({ tabs: ioSessions.sharedTabs() }))', () => {
  test('three tabs: one engine.io client on the server, every tab gets its own acks, a broadcast reaches all three, the counter is exact', async () => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      tabs = await openTabs(context, server, 3);
      const leaders = await Promise.all(tabs.map(isLeader));
      assert.equal(leaders.filter(Boolean).length, 1, `exactly one tab holds the connection: ${leaders}`);
      assert.deepEqual((await demoState(tabs[2]!)).connections, { open: 1, opened: 1 }, 'the server has one connection, ever');
      const ids = await Promise.all(tabs.map((t) => t.page.evaluate(() => ((0, eval)('socket') as PageSocket).id)));
      assert.ok(ids[0] && ids.every((id) => id === ids[0]), `one socket.id for all tabs: ${ids}`);
      assert.deepEqual(await Promise.all(tabs.map((t) => textOf(t.page, '#connections'))), ['1', '1', '1']);

      // 20 acked increments from each tab at once: each ack reaches its own tab, once.
      const acked = await Promise.all(tabs.map((t) => increments(t, 20)));
      assert.deepEqual(acked.map((a) => a.length), [20, 20, 20]);
      assert.deepEqual(sorted(acked.flat()), range(1, 60), 'every increment ran once and each ack went to the tab that emitted it');
      assert.equal(await httpCounter(tabs[0]!), 60, 'the session counter is exact');

      // A server broadcast (the connection count, when another browser connects) reaches every tab.
      await Promise.all(
        tabs.map((t) =>
          t.page.evaluate(() => {
            const seen: unknown[] = ((window as unknown as { __broadcasts: unknown[] }).__broadcasts = []);
            ((0, eval)('socket') as PageSocket).on('connections', (c: unknown) => seen.push(c));
          }),
        ),
      );
      const otherBrowser = await browser.newContext();
      try {
        const other = { page: await otherBrowser.newPage(), rec: undefined as unknown as PageRecorder };
        other.rec = new PageRecorder(other.page);
        await other.page.goto(`${server.url}/`);
        await waitForState(other, [...tabs, other], server, 'connected');
        for (const t of tabs) {
          await waitUntil(
            () => t.page.evaluate(() => (window as unknown as { __broadcasts: Array<{ open: number }> }).__broadcasts),
            (seen) => seen.some((c) => c.open === 2),
            { what: 'the broadcast of the second browser connecting', describe: () => dump(tabs, server) },
          );
        }
        assert.deepEqual((await demoState(tabs[0]!)).connections, { open: 2, opened: 2 }, 'one connection per browser');
      } finally {
        await otherBrowser.close();
      }

      // timeout() in a tab that does not hold the connection: an event the server never acks fails as in socket.io-client.
      const follower = tabs[leaders.indexOf(false)]!;
      const outcome = await follower.page.evaluate(() =>
        ((0, eval)('socket') as PageSocket)
          .timeout(300)
          .emitWithAck('no-such-event')
          .then(
            () => 'acked',
            (err: Error) => err.message,
          ),
      );
      assert.equal(outcome, 'operation has timed out');
    } finally {
      await teardown();
    }
  });

  /** Ways a tab goes away: closed, crashed (no pagehide: the browser releases the lock of a dead page), navigated elsewhere. */
  const goAway: Record<string, (page: Page, server: ReferenceServer) => Promise<unknown>> = {
    closes: (page) => page.close(),
    crashes: async (page) => {
      const cdp = await page.context().newCDPSession(page);
      const crashed = new Promise((resolve) => page.once('crash', resolve));
      void cdp.send('Page.crash').catch(() => undefined); // never answered: the page is gone
      await crashed;
    },
    'navigates away': (page, server) => page.goto(`${server.url}/api/session`, { waitUntil: 'commit' }),
  };

  for (const [how, leave] of Object.entries(goAway)) test(`the tab holding the connection ${how}: another tab acks within 1 s, the server sees exactly one new connection, nothing runs twice or is lost`, { timeout: 60_000 }, async (t) => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      tabs = await openTabs(context, server, 3);
      const before = sorted((await Promise.all(tabs.map((t) => increments(t, 10)))).flat());
      assert.deepEqual(before, range(1, 30));
      const { opened } = (await demoState(tabs[0]!)).connections;

      const leaders = await Promise.all(tabs.map(isLeader));
      const holder = tabs[leaders.indexOf(true)]!;
      const survivors = tabs.filter((t) => t !== holder);

      const closedAt = Date.now();
      await leave(holder.page, server);
      // Emits made while the connection changes hands: buffered in their tab, sent once by the new holder.
      const during = await Promise.all(
        survivors.map((t) =>
          t.page.evaluate(() => {
            const socket = (0, eval)('socket') as PageSocket;
            const first = socket
              .timeout(10_000)
              .emitWithAck('increment')
              .then((r: { counter: number }) => ({ counter: r.counter, at: Date.now() }));
            const rest = Array.from({ length: 9 }, () => socket.timeout(10_000).emitWithAck('increment').then((r: { counter: number }) => r.counter));
            return Promise.all([first, Promise.all(rest)]);
          }),
        ),
      );
      const firstAck = Math.min(...during.map(([first]) => first.at)) - closedAt;
      t.diagnostic(`first ack in a remaining tab ${firstAck} ms after the holder ${how}`);
      assert.ok(firstAck <= 1000, `a remaining tab got an ack ${firstAck} ms after the holder ${how} (at most 1000):\n${dump(survivors, server)}`);

      const all = sorted([...before, ...during.flatMap(([first, rest]) => [first.counter, ...rest])]);
      assert.deepEqual(all, range(1, 50), 'every emit ran exactly once');
      assert.equal(await httpCounter(survivors[0]!), 50, 'the session counter is exact');

      const after = (await demoState(survivors[1]!)).connections;
      assert.deepEqual(after, { open: 1, opened: opened + 1 }, 'exactly one new connection, and the old one is gone');
      assert.equal((await Promise.all(survivors.map(isLeader))).filter(Boolean).length, 1, 'one of the remaining tabs holds it');
    } finally {
      await teardown();
    }
  });

  test('logout over HTTP in one tab: every tab hears the session is invalid, then all are connected with a fresh session', async () => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      tabs = await openTabs(context, server, 3);
      await increments(tabs[0]!, 1);
      const marks = tabs.map((t) => ({ events: t.rec.events.length, navigations: t.rec.navigations }));
      const leaders = await Promise.all(tabs.map(isLeader));
      const follower = tabs[leaders.indexOf(false)]!;
      await follower.page.click('#logout');

      for (const [i, t] of tabs.entries()) {
        await waitUntil(async () => t.rec.consoleLines(marks[i]!.events).some((l) => /^\[demo\] invalid: destroyed \(while connected\)/.test(l)), Boolean, {
          what: `tab ${i}'s invalid listener to see "destroyed"`,
          describe: () => dump(tabs, server),
        });
      }
      for (const t of tabs) await waitForState(t, tabs, server, 'connected', 30_000);
      for (const [i, t] of tabs.entries()) {
        const reloads = t.rec.navigations - marks[i]!.navigations;
        assert.ok(reloads <= 1, `tab ${i} reloaded at most once (its own guard), saw ${reloads}:\n${dump(tabs, server)}`);
      }
      // A fresh session: the counter starts again; the tabs still share one connection. (The server
      // may still count an engine.io client of a page that reloaded while its refused handshake was
      // closing, until its heartbeat times out: not asserted.)
      const counters = await increments(tabs[2]!, 1);
      assert.deepEqual(counters, [1]);
      assert.equal((await Promise.all(tabs.map(isLeader))).filter(Boolean).length, 1, 'one tab holds the connection');
      const ids = await Promise.all(tabs.map((t) => t.page.evaluate(() => ((0, eval)('socket') as PageSocket).id)));
      assert.ok(ids[0] && ids.every((id) => id === ids[0]), `one socket.id for all tabs: ${ids}`);
    } finally {
      await teardown();
    }
  });

  test("a tab's disconnect() releases that tab only; connect() joins again without a new connection", async () => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      tabs = await openTabs(context, server, 3);
      const leaders = await Promise.all(tabs.map(isLeader));
      const holder = tabs[leaders.indexOf(true)]!;
      const [follower, other] = tabs.filter((t) => t !== holder) as [Tab, Tab];
      const { opened } = (await demoState(holder)).connections;

      await follower.page.evaluate(() => ((0, eval)('socket') as PageSocket).disconnect());
      await waitForState(follower, tabs, server, 'disconnected');
      assert.equal(await follower.page.evaluate(() => ((0, eval)('socket') as PageSocket).connected), false);
      assert.deepEqual((await demoState(other)).connections, { open: 1, opened }, 'the connection is untouched');
      assert.deepEqual(await increments(other, 1), [1]);

      // The holder leaves: the remaining tab takes over with one new connection.
      await holder.page.evaluate(() => ((0, eval)('socket') as PageSocket).disconnect());
      await waitForState(holder, tabs, server, 'disconnected');
      await waitUntil(() => isLeader(other), Boolean, { what: 'the other tab to hold the connection', describe: () => dump(tabs, server) });
      await waitForState(other, tabs, server, 'connected');
      assert.deepEqual(await increments(other, 1), [2]);
      assert.deepEqual((await demoState(other)).connections, { open: 1, opened: opened + 1 });
      assert.equal(await isLeader(holder), false);

      // Joining again uses the connection there is.
      await follower.page.evaluate(() => ((0, eval)('socket') as PageSocket).connect());
      await waitForState(follower, tabs, server, 'connected');
      assert.deepEqual(await increments(follower, 1), [3]);
      assert.deepEqual((await demoState(follower)).connections, { open: 1, opened: opened + 1 });
    } finally {
      await teardown();
    }
  });

  test('without Web Locks each tab connects by itself, silently', async () => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      // A browser without the Web Locks API cannot be had for real here: hide it from the pages.
      await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true }));
      tabs = await openTabs(context, server, 2);
      assert.deepEqual(await Promise.all(tabs.map(isLeader)), [true, true], 'each tab holds a connection of its own');
      assert.deepEqual((await demoState(tabs[1]!)).connections, { open: 2, opened: 2 });
      assert.deepEqual(sorted((await Promise.all(tabs.map((t) => increments(t, 5)))).flat()), range(1, 10));
      assert.deepEqual(
        tabs.flatMap((t) => t.rec.consoleLines().filter((l) => /error|warn/i.test(l))),
        [],
        'no error or warning on the console',
      );
    } finally {
      await teardown();
    }
  });

  test('sessions.dispose() leaves nothing behind: no listener, channel, lock or timer of the SDK', async () => {
    const { server, context, teardown } = await setup();
    let tabs: Tab[] = [];
    try {
      // Counts what the page's code registers on window/document, BroadcastChannels open and intervals running.
      await context.addInitScript(() => {
        const live = new Set<unknown>();
        for (const target of [window, document] as EventTarget[]) {
          const add = target.addEventListener.bind(target);
          const remove = target.removeEventListener.bind(target);
          const key = (type: string, listener: unknown) => `${target === window ? 'window' : 'document'}:${type}:${String(listener)}:${(listener as { __id?: number }).__id ?? ((listener as { __id?: number }).__id = Math.random())}`;
          target.addEventListener = (type: string, listener: any, options?: any) => {
            const k = key(type, listener);
            live.add(k);
            (options?.signal as AbortSignal | undefined)?.addEventListener('abort', () => live.delete(k));
            add(type, listener, options);
          };
          target.removeEventListener = (type: string, listener: any, options?: any) => {
            live.delete(key(type, listener));
            remove(type, listener, options);
          };
        }
        const channels = new Set<unknown>();
        const Channel = BroadcastChannel;
        window.BroadcastChannel = class extends Channel {
          constructor(name: string) {
            super(name);
            channels.add(this);
          }
          override close() {
            channels.delete(this);
            super.close();
          }
        };
        const intervals = new Set<unknown>();
        const setI = window.setInterval.bind(window);
        const clearI = window.clearInterval.bind(window);
        window.setInterval = ((fn: () => void, ms?: number) => {
          const id = setI(fn, ms);
          intervals.add(id);
          return id;
        }) as typeof setInterval;
        window.clearInterval = ((id?: number) => {
          intervals.delete(id);
          clearI(id);
        }) as typeof clearInterval;
        (window as unknown as { __live: () => unknown }).__live = () => ({ listeners: [...live].sort(), channels: channels.size, intervals: intervals.size });
      });
      tabs = await openTabs(context, server, 1);
      const { page } = tabs[0]!;
      const result = await page.evaluate(async () => {
        type Live = { listeners: string[]; channels: number; intervals: number };
        const live = (window as unknown as { __live: () => Live }).__live;
        const g = globalThis as unknown as { io: { connectWithSession(o: object): PageSocket }; ioSessions: { sharedTabs(o: object): object } };
        const connected = (s: PageSocket) => new Promise((resolve) => (s.connected ? resolve(true) : s.on('connect', () => resolve(true))));
        const locks = async (name: string) => {
          const q = await navigator.locks.query();
          return [...(q.held ?? []), ...(q.pending ?? [])].filter((l) => l.name === name).length;
        };
        const before = live();
        // A second shared connection on this page (its own lock and channel): it holds it, so it has a real socket too.
        const shared = g.io.connectWithSession({ tabs: g.ioSessions.sharedTabs({ name: 'dispose-check' }) });
        await connected(shared);
        const whileShared = { ...live(), locks: await locks('dispose-check') };
        shared.sessions.dispose();
        const afterDispose = live();
        // Releasing a lock settles a promise: the lock manager lets go a moment later.
        const deadline = Date.now() + 2000;
        while ((await locks('dispose-check')) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        const afterShared = { ...afterDispose, locks: await locks('dispose-check') };
        // The core alone (no tabs): its listeners and its timer-gap interval go with dispose().
        const plain = g.io.connectWithSession({});
        await connected(plain);
        const whilePlain = live();
        plain.sessions.dispose();
        plain.disconnect();
        return { before, whileShared, afterShared, whilePlain, afterPlain: live(), sharedState: shared.sessions.state, sharedConnected: shared.connected };
      });
      // Its own channels: the tabs' one and, as a ticket socket (the served script's default), the page-loads one (tickets.md).
      assert.ok(result.whileShared.listeners.length > result.before.listeners.length && result.whileShared.channels === result.before.channels + 2, JSON.stringify(result));
      assert.equal(result.whileShared.locks, 1, 'the shared connection held its lock');
      assert.deepEqual({ ...result.afterShared, locks: undefined }, { ...result.before, locks: undefined }, 'dispose() of the shared socket removed everything it added');
      assert.equal(result.afterShared.locks, 0, 'and released its lock');
      assert.equal(result.sharedState, 'disconnected');
      assert.equal(result.sharedConnected, false);
      assert.ok(result.whilePlain.intervals > result.before.intervals, 'the core runs its timer-gap check');
      assert.deepEqual(result.afterPlain, result.before, 'dispose() of the core removed everything it added');
    } finally {
      await teardown();
    }
  });
});

describe('shared tabs with tickets (TICKET_TTL=2500)', () => {
  test('the tabs share one ticket renewal: only the tab holding the connection re-requests the served script', async () => {
    const { server, context, teardown } = await setup({ TICKET_TTL: '2500' });
    let tabs: Tab[] = [];
    try {
      const renewals: Page[] = [];
      context.on('request', (req) => {
        if (req.url().includes('/socket.io/socket.io-sessions.js?_=')) renewals.push(req.frame().page());
      });
      tabs = await openTabs(context, server, 3);
      const leaders = await Promise.all(tabs.map(isLeader));
      const holder = tabs[leaders.indexOf(true)]!;
      const start = renewals.length;
      await waitUntil(async () => renewals.length - start, (n) => n >= 3, { timeout: 15_000, what: '3 ticket renewals', describe: () => dump(tabs, server) });
      const fetchedBy = new Set(renewals.slice(start));
      assert.deepEqual([...fetchedBy], [holder.page], 'every renewal was fetched by the holder alone, once');
      assert.deepEqual(await Promise.all(tabs.map(isLeader)), leaders, 'the holder did not change');
      for (const t of tabs) assert.deepEqual(t.rec.consoleLines().filter((l) => /disconnect:|invalid:/.test(l)), [], 'no disconnect nor invalid session in any tab');
      assert.deepEqual(sorted((await Promise.all(tabs.map((t) => increments(t, 2)))).flat()), range(1, 6));
    } finally {
      await teardown();
    }
  });
});

describe('browser lifecycle (the core SDK, on the seed page /ping.html without tabs)', () => {
  test('offline for 15 s: no connection attempt; back online: connected again within 1 s', async () => {
    const { server, context, teardown } = await setup();
    try {
      const page = await context.newPage();
      const rec = new PageRecorder(page);
      // Connection attempts counted in the page as they are made (XHR sent, WebSocket created), and how many
      // are still in flight: an attempt fails in real time, and only then does the client schedule the next.
      await page.addInitScript(() => {
        const seen = ((globalThis as { seen?: { opened: string[]; pending: number } }).seen = { opened: [] as string[], pending: 0 });
        const settle = (target: EventTarget, events: string[]) => {
          let done = false;
          seen.pending++;
          for (const e of events) target.addEventListener(e, () => void (done || ((done = true), seen.pending--)));
        };
        const { open, send } = XMLHttpRequest.prototype as unknown as Record<string, (this: XMLHttpRequest, ...args: unknown[]) => void>;
        Object.assign(XMLHttpRequest.prototype, {
          open(this: XMLHttpRequest, ...args: unknown[]) {
            seen.opened.push(String(args[1]));
            return open!.apply(this, args);
          },
          send(this: XMLHttpRequest, ...args: unknown[]) {
            settle(this, ['loadend']);
            return send!.apply(this, args);
          },
        });
        const Native = WebSocket;
        globalThis.WebSocket = class extends Native {
          constructor(url: string | URL, protocols?: string | string[]) {
            seen.opened.push(String(url));
            super(url, protocols);
            settle(this, ['open', 'close']);
          }
        };
      });
      const attempts = () =>
        page.evaluate(() => (globalThis as unknown as { seen: { opened: string[] } }).seen.opened.filter((url) => /\/socket\.io\/\?EIO=4&transport=polling&t=[^&]+$/.test(url) || /transport=websocket(?!.*sid=)/.test(url)).length);
      // The page's timers run on a fake clock (flowing as the real one until runFor), so 15 s offline take no 15 s.
      await page.clock.install();
      await page.goto(`${server.url}/ping.html`);
      const socketState = () => page.evaluate(() => ((0, eval)('socket') as PageSocket).sessions.state);
      await waitUntil(socketState, (s) => s === 'connected', { what: 'connected', describe: () => rec.dump() });

      const before = await attempts();
      await context.setOffline(true);
      await waitUntil(socketState, (s) => s === 'connecting', { what: 'the socket to notice', describe: () => rec.dump() });
      // 15 s of the page's timers, half a second at a time, each step once the attempts it made have failed:
      // socket.io-client alone makes about 4 attempts in this time.
      const inFlight = () => page.evaluate(() => (globalThis as unknown as { seen: { pending: number } }).seen.pending);
      for (let ms = 0; ms < 15_000; ms += 500) {
        await page.clock.runFor(500);
        await waitUntil(inFlight, (n) => n === 0, { what: 'no connection attempt in flight', describe: () => rec.dump() });
      }
      const offlineAttempts = (await attempts()) - before;
      assert.ok(offlineAttempts <= 1, `at most one connection attempt while offline, saw ${offlineAttempts}:\n${rec.dump()}`);

      const online = Date.now();
      await context.setOffline(false);
      await waitUntil(socketState, (s) => s === 'connected', { timeout: 5000, interval: 10, what: 'connected again', describe: () => rec.dump() });
      const took = Date.now() - online;
      assert.ok(took <= 1000, `connected ${took} ms after going online (at most 1000):\n${rec.dump()}`);
      await page.click('#sendmsg');
      await waitUntil(() => textOf(page, '#msgbox'), (t) => !!t?.includes('(msg sent)'), { what: 'the ping acked', describe: () => rec.dump() });
    } finally {
      await teardown();
    }
  });

  test('a long gap in timers (the machine slept): the SDK checks the connection at once and reconnects with its session', async () => {
    const { server, context, teardown } = await setup();
    try {
      const page = await context.newPage();
      const rec = new PageRecorder(page);
      // A laptop's sleep cannot be had here: Playwright's clock moves the page's wall clock forward
      // by two minutes without running its timers, which is what a machine waking up sees.
      await page.clock.install();
      await page.goto(`${server.url}/ping.html`);
      await waitUntil(() => page.evaluate(() => ((0, eval)('socket') as PageSocket).connected), Boolean, { what: 'connected', describe: () => rec.dump() });
      await page.evaluate(() => {
        const seen: string[] = ((window as unknown as { __seen: string[] }).__seen = []);
        const socket = (0, eval)('socket') as PageSocket;
        socket.on('disconnect', (reason: string) => seen.push(`disconnect: ${reason}`));
        socket.on('connect', () => seen.push('connect'));
      });
      const pageNow = await page.evaluate(() => Date.now());
      const woke = Date.now();
      await page.clock.setSystemTime(pageNow + 120_000);
      const seen = await waitUntil(
        () => page.evaluate(() => (window as unknown as { __seen: string[] }).__seen),
        (s) => s.includes('connect'),
        { timeout: 10_000, what: 'a reconnect after the gap', describe: () => rec.dump() },
      );
      const took = Date.now() - woke;
      // No ping for two ping periods: the SDK closes the engine (public `engine.close()`, reason 'forced close').
      assert.deepEqual(seen, ['disconnect: forced close', 'connect'], 'the expired heartbeat was noticed, and the socket came back');
      // The check runs every 3 s; the reconnect is socket.io-client's own (its first delay is up to 1.5 s).
      assert.ok(took <= 6000, `reconnected ${took} ms after waking up (a heartbeat would have waited up to 45 s)`);
      await page.click('#sendmsg');
      await waitUntil(() => textOf(page, '#msgbox'), (t) => !!t?.includes('(msg sent)'), { what: 'the ping acked', describe: () => rec.dump() });
    } finally {
      await teardown();
    }
  });

  test('back/forward cache: a page with a live connection is restored (pageshow persisted) and reconnects with its session', async () => {
    const bfBrowser = await launchBrowser({ bfcache: true });
    const server = await startReferenceServer();
    try {
      for (const path of ['/ping.html', '/']) {
        const context = await bfBrowser.newContext();
        await context.addInitScript({ content: KEEP_NAMES_SHIM });
        const page = await context.newPage();
        const rec = new PageRecorder(page);
        await page.addInitScript(() => addEventListener('pageshow', (e) => console.log(`pageshow persisted=${(e as PageTransitionEvent).persisted}`)));
        await page.goto(`${server.url}${path}`);
        const state = () => page.evaluate(() => ((0, eval)('socket') as PageSocket).sessions.state);
        await waitUntil(state, (s) => s === 'connected', { what: `${path} connected`, describe: () => rec.dump() });
        await page.evaluate(() => ((0, eval)('socket') as PageSocket).timeout(5000).emitWithAck('increment'));
        const before = await page.evaluate(() => ((0, eval)('socket') as PageSocket).timeout(5000).emitWithAck('state'));
        assert.equal(before.counter, 1);
        await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

        await page.goto(`${server.url}/api/session`);
        const mark = rec.events.length;
        await page.goBack({ waitUntil: 'commit' });
        await waitUntil(async () => rec.consoleLines(mark), (lines) => lines.includes('pageshow persisted=true'), { what: `${path} restored from the cache`, describe: () => rec.dump() });
        assert.equal(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument), true, 'the same document, restored');
        await waitUntil(state, (s) => s === 'connected', { what: `${path} connected again`, describe: () => rec.dump() });
        const after = await page.evaluate(() => ((0, eval)('socket') as PageSocket).timeout(5000).emitWithAck('state'));
        assert.equal(after.counter, 1, `${path}: the same session`);
        await context.close();
      }
    } finally {
      await bfBrowser.close();
      await server.dispose();
    }
  });
});
