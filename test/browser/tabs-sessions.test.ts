/**
 * Shared tabs (`socket.io-sessions/tabs`) against a stuck lock holder and an ended session, in real
 * Chromium against a real session server (express-session + Socket.IO + this library, in this
 * process). Pages load the SDK the seed's way (`/socket.io/socket.io.js` then the served
 * `/socket.io/socket.io-sessions.js`) from the server's origin; the tabs of one browser context
 * share its cookie jar, as the tabs of a browser do.
 *
 * - Issue 15, case 10: a same-origin page that holds the tabs' Web Lock and never answers must not
 *   keep the other tabs from connecting.
 * - Issue 15, case 7 / invariant 10: emits buffered in any tab under a session that ended are never
 *   delivered under the next one; they fail with `SessionEmitError` 'session-ended'. A server notice
 *   (invariant 7) reaches the tab that emitted as a `SessionEmitError`.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchBrowser, openTab as openTabAt, waitUntil, type Tab } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/servers.js';
import { NOTICE_FIELD } from '../../src/protocol.js';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tabs</title>
<script src="/socket.io/socket.io.js"></script>
<script src="/socket.io/socket.io-sessions.js"></script>
<script>
  window.log = [];
  // What the test reads of an emit's error (a SessionEmitError of the core entry, or another).
  window.failure = (err) => ({ name: err.name, code: err.code, reason: err.reason, isClass: err instanceof ioSessions.SessionEmitError });
  // { handler: true }: the app's own onInvalid (it logs; the test logs in again and reconnects).
  window.share = (options = {}) => (window.socket = io.connectWithSession({
    tabs: ioSessions.sharedTabs(),
    on: { invalid: (c) => log.push('invalid:' + c.reason + ':' + c.action) },
    ...(options.handler ? { onInvalid: () => log.push('handler') } : {}),
  }));
</script>`;

/** tsx compiles this file with esbuild's keepNames: functions handed to a page may call `__name`. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (f) => f;';

type PageSocket = {
  connected: boolean;
  leader: boolean;
  id?: string;
  connect(): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<any> };
};

let browser: Browser;
let app: TestServer;
/** What the server's `echo` handler received, with the session's user. */
let received: Array<{ value: unknown; user: unknown }> = [];
/** Whether engine.io accepts new connections (closed: every handshake is refused, as when the server is unreachable). */
let gateOpen = true;
/** Socket.IO connections the server made since the test started. */
let opened = 0;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function fresh(t: TestContext): Promise<BrowserContext> {
  received = [];
  gateOpen = true;
  opened = 0;
  app = await startServer({
    ioOptions: { allowRequest: (_req, callback) => callback(null, gateOpen) },
    routes(expressApp) {
      expressApp.get('/tabs.html', (_req, res) => res.type('html').set('cache-control', 'no-store').send(PAGE));
    },
  });
  app.sio.on('sconnection', (socket, session) => {
    opened++;
    socket.on('echo', (value: unknown, ack?: (v: unknown) => void) => (received.push({ value, user: (session as { user?: unknown }).user }), ack?.(value)));
    // Stands in for the library's per-event notices (invariant 7): the ack's only argument, in the protocol's format.
    socket.on('fails', (ack: (v: unknown) => void) => ack({ [NOTICE_FIELD]: { code: 'EVENT_FAILED', reason: 'handler-error' } }));
  });
  const context = await browser.newContext();
  await context.addInitScript({ content: KEEP_NAMES_SHIM });
  t.after(async () => {
    await context.close();
    await app.close();
  });
  return context;
}

const openTab = (context: BrowserContext, tabs: Tab[]): Promise<Tab> => openTabAt(context, tabs, `${app.url}/tabs.html`);

const login = (tab: Tab, user: string) =>
  tab.page.evaluate((user) => fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) }).then((r) => r.ok), user);
const share = (tab: Tab, options: { handler?: boolean } = {}) => tab.page.evaluate((options) => void (globalThis as any).share(options), options);
const socketOf = (tab: Tab) => tab.page.evaluate(() => ({ connected: ((globalThis as any).socket as PageSocket).connected, leader: ((globalThis as any).socket as PageSocket).leader }));
const dump = (tabs: Tab[]) => tabs.map((t, i) => `tab ${i}:\n${t.rec.dump()}\n  errors: ${JSON.stringify(t.errors)}`).join('\n');
const waitConnected = (tab: Tab, tabs: Tab[], timeout = 10_000) =>
  waitUntil(() => socketOf(tab), (s) => s.connected, { timeout, what: 'the tab to be connected', describe: () => dump(tabs) });
/** A fresh server and browser context: a logged-in tab that holds the connection, then `followers` more tabs, all connected. */
async function sharedTabs(t: TestContext, followers: number, options: { handler?: boolean } = {}): Promise<Tab[]> {
  const context = await fresh(t);
  const tabs: Tab[] = [];
  for (let i = 0; i <= followers; i++) {
    const tab = await openTab(context, tabs);
    if (i === 0) await login(tab, 'ann');
    await share(tab, options);
    await waitConnected(tab, tabs);
  }
  return tabs;
}
const serverSockets = () => app.io.of('/').sockets.size;
/** The tabs' lock and channel name for `connectWithSession()` without url or path on the server's origin. */
const lockName = () => `socket.io-sessions ${app.url}/ /socket.io`;
/** A page of the same origin that takes the tabs' lock and never lets go nor says a word on the channel. */
async function stuckPage(context: BrowserContext, tabs: Tab[]): Promise<Tab> {
  const stuck = await openTab(context, tabs);
  await stuck.page.evaluate((name) => new Promise<void>((held) => void navigator.locks.request(name, () => (held(), new Promise(() => {})))), lockName());
  return stuck;
}
const echo = (tab: Tab, value: string) => tab.page.evaluate((value) => ((globalThis as any).socket as PageSocket).timeout(5000).emitWithAck('echo', value), value);

describe('shared tabs: a page that holds the lock and never answers (issue 15, case 10)', () => {
  test('another tab connects by itself within 3 s, later tabs share its connection, and the lock holder takes over once the stuck page goes', { timeout: 60_000 }, async (t) => {
    const context = await fresh(t);
    const tabs: Tab[] = [];
    const stuck = await stuckPage(context, tabs);

    const first = await openTab(context, tabs);
    await login(first, 'ann');
    const start = Date.now();
    await share(first);
    await waitConnected(first, tabs, 8000);
    const elapsed = Date.now() - start;
    t.diagnostic(`connected ${elapsed} ms after connectWithSession, with the lock held by a page that never answers`);
    assert.ok(elapsed <= 3500, `connected after ${elapsed} ms (at most about 3 s)`);
    // It waited for the very lock the stuck page holds (the name comes from the resolved URL), and still waits in its queue.
    const { pending } = await first.page.evaluate(() => navigator.locks.query());
    assert.ok(
      pending!.some((l) => l.name === lockName()),
      `the tab waits for the lock "${lockName()}": ${JSON.stringify(pending)}`,
    );
    assert.equal((await socketOf(first)).leader, true, 'the tab holds the connection without the lock');

    // Tabs that come later hear the live holder and share its connection.
    const more = [await openTab(context, tabs), await openTab(context, tabs)];
    for (const tab of more) await share(tab);
    for (const tab of more) await waitConnected(tab, tabs);
    assert.deepEqual(await Promise.all(more.map((tab) => socketOf(tab).then((s) => s.leader))), [false, false], 'the later tabs follow the holder');
    assert.deepEqual(await Promise.all([first, ...more].map((tab, i) => echo(tab, `e${i}`))), ['e0', 'e1', 'e2']);
    assert.equal(serverSockets(), 1, 'one server connection for the three tabs');

    // The stuck page goes: the tab the browser gives the lock to holds the connection; the lockless holder yields to it.
    await stuck.page.close();
    tabs.splice(tabs.indexOf(stuck), 1);
    await waitUntil(() => Promise.resolve(serverSockets()), (n) => n === 1, { what: 'one server connection' });
    for (const tab of tabs) await waitConnected(tab, tabs);
    assert.deepEqual(await Promise.all(tabs.map((tab, i) => echo(tab, `f${i}`))), ['f0', 'f1', 'f2']);
    assert.equal((await Promise.all(tabs.map((tab) => socketOf(tab).then((s) => s.leader)))).filter(Boolean).length, 1, 'one tab holds the connection');
    assert.equal(serverSockets(), 1);
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test('two tabs that join together while the lock is stuck: each may connect by itself, they settle on one connection', { timeout: 60_000 }, async (t) => {
    const context = await fresh(t);
    const tabs: Tab[] = [];
    await stuckPage(context, tabs);
    const pair = [await openTab(context, tabs), await openTab(context, tabs)];
    await login(pair[0]!, 'ann');
    await Promise.all(pair.map((tab) => share(tab)));
    for (const tab of pair) await waitConnected(tab, tabs);
    await waitUntil(() => Promise.resolve(serverSockets()), (n) => n === 1, { what: 'one server connection', describe: () => dump(tabs) });
    assert.equal((await Promise.all(pair.map((tab) => socketOf(tab).then((s) => s.leader)))).filter(Boolean).length, 1, 'one of them holds the connection');
    assert.deepEqual(await Promise.all(pair.map((tab, i) => echo(tab, `p${i}`))), ['p0', 'p1']);
    t.diagnostic(`server connections opened by the two tabs: ${opened}`);
    assert.equal(serverSockets(), 1);
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test('with a live holder, a tab that joins never connects by itself: one server connection after 3 s', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, 2);
    const holder = tabs[0]!;
    // Past the liveness window: the followers' probes are answered, so none takes over.
    await holder.page.waitForTimeout(3000); // wall clock: the liveness window spans several pages, each with its own clock
    assert.equal(serverSockets(), 1, dump(tabs));
    assert.deepEqual(await Promise.all(tabs.map((tab) => socketOf(tab).then((s) => s.leader))), [true, false, false]);
  });
});

describe('shared tabs: emits buffered under a session that ended (issue 15, case 7; invariant 10)', () => {
  test('emits buffered in every tab while the connection is down fail with session-ended when the session ended meanwhile; none reaches the next session', { timeout: 60_000 }, async (t) => {
    const tabs = await sharedTabs(t, 1, { handler: true });
    const [holder, follower] = tabs as [Tab, Tab];
    assert.equal(await echo(follower, 'before'), 'before');

    // The connection drops and cannot come back for now (the server refuses every handshake).
    gateOpen = false;
    for (const socket of app.io.of('/').sockets.values()) socket.conn.close();
    await waitUntil(() => socketOf(follower), (s) => !s.connected, { what: 'the follower to see the disconnect', describe: () => dump(tabs) });

    // Emits made now are buffered: in the holder's queue (its own and the follower's) or in the follower's outbox.
    const outcomes = [holder, follower].map((tab, i) =>
      tab.page.evaluate(
        (i) =>
          Promise.all(
            [1, 2, 3].map((k) =>
              ((globalThis as any).socket as PageSocket)
                .timeout(30_000)
                .emitWithAck('echo', `buffered-${i}-${k}`)
                .then(
                  (value: unknown) => ({ acked: value }),
                  (err: unknown) => (globalThis as any).failure(err),
                ),
            ),
          ),
        i,
      ),
    );
    // A plain callback too: it gets the SessionEmitError as its only argument, as on the core SDK's socket.
    const plain = follower.page.evaluate(() => new Promise((resolve) => ((globalThis as any).socket as PageSocket).emit('echo', 'buffered-plain', (...args: unknown[]) => resolve(args.map((globalThis as any).failure)))));

    // The session ends meanwhile (logout over HTTP in a tab), then the server is reachable again.
    await follower.page.evaluate(() => fetch('/logout', { method: 'POST' }));
    gateOpen = true;
    const ended = { name: 'SessionEmitError', code: 'SESSION_INVALID', reason: 'session-ended', isClass: true };
    const results = await Promise.all(outcomes);
    assert.deepEqual(results, [Array(3).fill(ended), Array(3).fill(ended)], `every buffered emit failed with session-ended\n${dump(tabs)}`);
    assert.deepEqual(await plain, [ended]);

    // Another user logs in in this browser and the tabs connect again: nothing buffered reaches that session.
    await waitUntil(() => follower.page.evaluate(() => (globalThis as any).log as string[]), (log) => log.includes('handler'), { what: "the follower's onInvalid", describe: () => dump(tabs) });
    await login(follower, 'bob');
    await follower.page.evaluate(() => ((globalThis as any).socket as PageSocket).connect());
    await waitConnected(holder, tabs, 15_000);
    await waitConnected(follower, tabs, 15_000);
    assert.equal(await echo(follower, 'after'), 'after');
    assert.deepEqual(
      received.map((r) => `${r.user}:${r.value}`),
      ['ann:before', 'bob:after'],
      'the server got no buffered emit, under any session',
    );

    // An emit posted to the holder under the session that ended (a tab that had not heard yet) is refused, not run.
    const stale = await follower.page.evaluate(
      ({ name }) =>
        new Promise((resolve) => {
          const channel = new BroadcastChannel(name);
          const from = Math.random() + 1;
          channel.onmessage = ({ data }) => {
            if (data?.type === 'holder' && data.from !== from) channel.postMessage({ type: 'emit', to: data.from, from, n: 1, session: data.session - 1, event: 'echo', args: ['stale'], ack: true });
            if (data?.type === 'ack' && data.to === from) resolve((channel.close(), data));
          };
          channel.postMessage({ type: 'hello' });
        }),
      { name: lockName() },
    );
    assert.deepEqual(stale, { type: 'ack', to: (stale as { to: number }).to, n: 1, notice: { code: 'SESSION_INVALID', reason: 'session-ended' } });
    assert.deepEqual(
      received.map((r) => r.value),
      ['before', 'after'],
      'the stale emit never ran',
    );
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test('a server notice on a relayed emit reaches the tab that emitted as a SessionEmitError, also a plain callback (its only argument, as without tabs)', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, 1);
    const [holder, follower] = tabs as [Tab, Tab];
    for (const tab of [holder, follower]) {
      const outcome = await tab.page.evaluate(() =>
        ((globalThis as any).socket as PageSocket)
          .timeout(5000)
          .emitWithAck('fails')
          .then(
            () => 'acked',
            (err: unknown) => (globalThis as any).failure(err),
          ),
      );
      assert.deepEqual(outcome, { name: 'SessionEmitError', code: 'EVENT_FAILED', reason: 'handler-error', isClass: true });
      const plain = await tab.page.evaluate(() => new Promise((resolve) => ((globalThis as any).socket as PageSocket).emit('fails', (...args: unknown[]) => resolve(args.map((globalThis as any).failure)))));
      assert.deepEqual(plain, [{ name: 'SessionEmitError', code: 'EVENT_FAILED', reason: 'handler-error', isClass: true }]);
    }
  });
});
