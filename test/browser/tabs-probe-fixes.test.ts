/**
 * Shared tabs (`socket.io-sessions/tabs`) in real Chromium, for what a probe found (.probe-k): after a
 * logout a tab's emits never reach the next user's session; a tab's `disconnect()`/`dispose()` ends its
 * pending acks; an emit is handed to a connection once, also when a busy holder wakes after a tab took
 * over; a timed-out emit is not sent later; a refused "unavailable" handshake fails what waits; each tab
 * applies its own invalid policy (and a `disconnect()` in its listener is final); arguments that cannot
 * be cloned throw at emit time; `ackTimeout` works; tabs with another identity never share.
 * Then what a later probe (.probe-n) found: a tab that joins after a logout learns the session ended;
 * the holder refuses an emit counted otherwise than it counts; a BigInt throws at the emit and does not
 * hang the holder; the holder's ackTimeout is its own; `toJSON()` applies across tabs.
 *
 * A session server of the tests (express-session + Socket.IO + this library, in this process), pages
 * loading the SDK the seed's way (`/socket.io/socket.io.js`, then the served script); the tabs of one
 * browser context share its cookie jar, as the tabs of a browser do.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import session from 'express-session';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchBrowser, openTab as openTabAt, waitUntil, type Tab } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/servers.js';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tabs</title>
<script src="/socket.io/socket.io.js"></script>
<script src="/socket.io/socket.io-sessions.js"></script>
<script>
  window.log = [];
  window.failure = (err) => (err && err.name === 'SessionEmitError' ? err.code + ':' + err.reason : 'error:' + (err && err.message));
  // o.inv: 'fn' (the app's onInvalid, it logs), 'none', or the default; o.dis: disconnect() in an invalid listener once the policy acts.
  window.make = (o = {}) => {
    const options = { tabs: ioSessions.sharedTabs(o.name ? { name: o.name } : undefined), on: { invalid: (c) => log.push('invalid:' + c.action) } };
    if (o.inv === 'fn') options.onInvalid = (c) => log.push('onInvalid:' + c.action);
    if (o.inv === 'none') options.onInvalid = 'none';
    if (o.ackTimeout) options.ackTimeout = o.ackTimeout;
    if (o.auth) options.auth = o.auth;
    if (o.ticket) options.credential = ioSessions.tickets({ source: async () => o.ticket });
    window.socket = io.connectWithSession(options);
    if (o.dis) socket.sessions.on('invalid', (c) => c.action !== 'reconnect' && (socket.disconnect(), log.push('disconnected')));
  };
</script>`;

/** tsx compiles this file with esbuild's keepNames: functions handed to a page may call `__name`. */
const KEEP_NAMES_SHIM = 'globalThis.__name ??= (f) => f;';

interface MakeOptions {
  inv?: 'fn' | 'none';
  dis?: boolean;
  ackTimeout?: number;
  auth?: object;
  name?: string;
  ticket?: unknown;
}

let browser: Browser;
let app: TestServer;
/** What the server's handlers received: `event:value:user`. */
let received: string[] = [];
/** Whether engine.io accepts new connections (closed: every handshake is refused, as when the server is unreachable). */
let gateOpen = true;
/** Whether the session store fails its reads (a handshake is then refused "unavailable"). */
let storeDown = false;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

let store: session.MemoryStore;

async function fresh(t: TestContext): Promise<BrowserContext> {
  received = [];
  gateOpen = true;
  storeDown = false;
  store = new session.MemoryStore();
  const get = store.get.bind(store);
  store.get = (sid, cb) => (storeDown ? setTimeout(() => cb(new Error('store down'))) : get(sid, cb));
  app = await serve();
  const context = await browser.newContext();
  await context.addInitScript({ content: KEEP_NAMES_SHIM });
  t.after(async () => {
    await context.close();
    await app.close();
  });
  return context;
}

/** The test server on `store` (on `port`: started again where it was). */
async function serve(port?: number): Promise<TestServer> {
  const app = await startServer({
    store,
    port,
    ioOptions: { allowRequest: (_req, callback) => callback(null, gateOpen) },
    routes(expressApp) {
      expressApp.get('/tabs.html', (_req, res) => res.type('html').set('cache-control', 'no-store').send(PAGE));
    },
  });
  app.sio.on('sconnection', (socket, data) => {
    const user = () => (data as { user?: unknown }).user;
    socket.on('echo', (value: unknown, ack?: (v: unknown) => void) => (received.push(`echo:${value}:${user()}`), ack?.(value)));
    socket.on('note', (value: unknown) => received.push(`note:${value}:${user()}`));
    socket.on('slow', (value: unknown, ms: number, ack: (v: unknown) => void) => (received.push(`slow:${value}:${user()}`), setTimeout(() => ack(value), ms)));
    socket.on('who', (ack: (v: unknown) => void) => ack(user()));
    socket.on('join', () => void socket.join('room'));
  });
  return app;
}

const openTab = (context: BrowserContext, tabs: Tab[]): Promise<Tab> => openTabAt(context, tabs, `${app.url}/tabs.html`);

const run = <T>(tab: Tab, code: string) => tab.page.evaluate(code) as Promise<T>;
const make = (tab: Tab, options: MakeOptions = {}) => tab.page.evaluate((o) => (globalThis as any).make(o), options);
const login = (tab: Tab, user: string) =>
  tab.page.evaluate((user) => fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) }).then((r) => r.ok), user);
const logout = (tab: Tab) => tab.page.evaluate(() => fetch('/logout', { method: 'POST' }).then((r) => r.ok));
const dump = (tabs: Tab[]) => `${tabs.map((t, i) => `tab ${i}:\n${t.rec.dump()}\n  errors: ${JSON.stringify(t.errors)}`).join('\n')}\nserver: ${JSON.stringify(received)}`;
const waitFor = (tab: Tab, code: string, tabs: Tab[], timeout = 10_000) => waitUntil(() => run<unknown>(tab, code), Boolean, { timeout, what: code, describe: () => dump(tabs) });
const waitConnected = (tab: Tab, tabs: Tab[], timeout = 10_000) => waitFor(tab, 'socket.connected', tabs, timeout);
/** A fresh server and browser context: a tab logged in as ann that holds the connection, then followers, all connected. */
async function sharedTabs(t: TestContext, options: MakeOptions[]): Promise<Tab[]> {
  const context = await fresh(t);
  const tabs: Tab[] = [];
  for (const [i, each] of options.entries()) {
    const tab = await openTab(context, tabs);
    if (i === 0) await login(tab, 'ann');
    await make(tab, each);
    await waitConnected(tab, tabs);
  }
  assert.deepEqual(await Promise.all(tabs.map((tab) => run(tab, 'socket.leader'))), options.map((_, i) => i === 0), 'the first tab holds the connection');
  return tabs;
}
/** The connection drops and cannot come back until the gate opens (every handshake refused). */
async function cutConnection(tabs: Tab[]) {
  gateOpen = false;
  for (const socket of app.io.of('/').sockets.values()) socket.conn.close();
  for (const tab of tabs) await waitFor(tab, '!socket.connected', tabs);
}

describe('shared tabs: what the probe of 2026-12-07 found', () => {
  test('after a logout, an emit in any tab ends at once with session-ended and never reaches the next session (invariant 10)', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ inv: 'none' }, { inv: 'none' }]);
    const [holder, follower] = tabs as [Tab, Tab];
    assert.equal(await run(follower, `socket.emitWithAck('who')`), 'ann');
    await logout(follower);
    for (const tab of tabs) await waitFor(tab, `socket.sessions.state === 'invalid'`, tabs);
    for (const tab of tabs) {
      const outcome = await run<string[]>(
        tab,
        `new Promise((resolve) => {
          const seen = [];
          const done = () => seen.length === 2 && resolve(seen);
          socket.emit('note', 'after-logout');
          socket.emit('who', (u) => (seen.push('callback ' + failure(u)), done()));
          socket.emitWithAck('who').then((u) => seen.push('acked ' + u), (e) => seen.push('rejected ' + failure(e))).then(done);
        })`,
      );
      assert.deepEqual(outcome.sort(), ['callback SESSION_INVALID:session-ended', 'rejected SESSION_INVALID:session-ended']);
    }
    await login(holder, 'bob');
    await run(holder, 'socket.connect()');
    for (const tab of tabs) await waitConnected(tab, tabs);
    assert.equal(await run(follower, `socket.emitWithAck('who')`), 'bob');
    assert.equal(await run(holder, `socket.emitWithAck('echo', 'bob-here')`), 'bob-here');
    assert.deepEqual(received, ['echo:bob-here:bob'], `nothing emitted after the logout ran, under any session\n${dump(tabs)}`);
    for (const tab of tabs) assert.deepEqual(tab.errors, []);
  });

  test("a tab's disconnect() or dispose() ends its pending acks at once ('socket has been disconnected'), as on a plain socket", { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    const [, follower] = tabs as [Tab, Tab];
    for (const [i, how] of ['socket.disconnect()', 'socket.sessions.dispose()'].entries()) {
      const outcome = run<string[]>(
        follower,
        `Promise.all([
          socket.emitWithAck('slow', 'a${i}', 3000).then((v) => 'acked ' + v, (e) => failure(e)),
          new Promise((resolve) => socket.timeout(5000).emit('slow', 'b${i}', 3000, (e, v) => resolve(e ? failure(e) : 'acked ' + v))),
        ])`,
      );
      await waitUntil(async () => received, (r) => r.includes(`slow:a${i}:ann`) && r.includes(`slow:b${i}:ann`), { what: 'the server to run both', describe: () => dump(tabs) });
      const started = Date.now();
      await run(follower, `${how}, 0`);
      assert.deepEqual(await outcome, ['error:socket has been disconnected', 'error:socket has been disconnected'], dump(tabs));
      assert.ok(Date.now() - started < 1000, `answered at once, not when the server acks (${Date.now() - started} ms)`);
      if (i === 0) {
        await run(follower, 'socket.connect()');
        await waitConnected(follower, tabs);
      }
    }
  });

  test('a holder busy for 3 s: the follower takes over meanwhile, and an emit it had posted to the holder still runs once, not twice', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    const [holder, follower] = tabs as [Tab, Tab];
    // A long task in the holder (its page is busy: it reads nothing from the channel meanwhile).
    await run(holder, 'setTimeout(() => { const t = Date.now(); while (Date.now() - t < 3000); }), 0');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the long task has begun
    await run(follower, `window.r = []; socket.emitWithAck('echo', 'e1').then((v) => r.push('acked ' + v), (e) => r.push(failure(e))); socket.emit('note', 'n1'); 0`);
    await waitUntil(async () => received, (r) => r.includes('echo:e1:ann') && r.includes('note:n1:ann'), { timeout: 15_000, what: 'both emits to run', describe: () => dump(tabs) });
    await waitUntil(() => Promise.all(tabs.map((tab) => run<boolean>(tab, 'socket.leader'))), (l) => l.filter(Boolean).length === 1, { timeout: 15_000, what: 'one holder again' });
    // Wall clock: time for a second run of either emit, had one been handed to two connections.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(received.filter((r) => /e1|n1/.test(r)).sort(), ['echo:e1:ann', 'note:n1:ann'], `each ran once\n${dump(tabs)}`);
    assert.equal((await run<string[]>(follower, 'r')).length, 1, 'the emitWithAck ended once');
  });

  test('an emit that timed out in its tab while the connection was down is never sent, in the holder or a follower', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    await cutConnection(tabs);
    for (const [i, tab] of tabs.entries()) {
      const outcome = await run<string>(tab, `new Promise((resolve) => socket.timeout(200).emit('echo', 'timed-${i}', (e, v) => resolve(e ? failure(e) : 'acked ' + v)))`);
      assert.equal(outcome, 'error:operation has timed out');
    }
    gateOpen = true;
    for (const tab of tabs) await waitConnected(tab, tabs);
    for (const [i, tab] of tabs.entries()) assert.equal(await run(tab, `socket.emitWithAck('echo', 'after-${i}')`), `after-${i}`);
    assert.deepEqual(received, ['echo:after-0:ann', 'echo:after-1:ann'], `no timed-out emit was sent\n${dump(tabs)}`);
  });

  test('a handshake refused "unavailable" fails the emits waiting in every tab with SESSION_UNAVAILABLE, as without tabs', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    // The server goes away, and comes back with its store failing.
    await app.close();
    for (const tab of tabs) await waitFor(tab, '!socket.connected', tabs);
    for (const [i, tab] of tabs.entries()) await run(tab, `window.w = socket.emitWithAck('echo', 'waiting-${i}').then((v) => 'acked ' + v, (e) => failure(e)), 0`);
    const outcomes = tabs.map((tab) => run<string>(tab, 'w'));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the follower's emit reaches the holder's queue
    storeDown = true;
    app = await serve(app.port);
    assert.deepEqual(await Promise.race([Promise.all(outcomes), new Promise((resolve) => setTimeout(resolve, 8000, 'still waiting after 8 s'))]), [
      'SESSION_UNAVAILABLE:store-error',
      'SESSION_UNAVAILABLE:store-error',
    ]);
    storeDown = false;
    assert.deepEqual(received, []);
  });

  test('each tab applies its own invalid policy, and disconnect() in its invalid listener is final', { timeout: 40_000 }, async (t) => {
    // The holder: its onInvalid function; followers: 'none', the default (reload) with disconnect() in a listener,
    // a function with disconnect() in a listener, the default.
    const tabs = await sharedTabs(t, [{ inv: 'fn' }, { inv: 'none' }, { dis: true }, { inv: 'fn', dis: true }, {}]);
    const [holder, none, reloadStopped, handlerStopped, reloads] = tabs as [Tab, Tab, Tab, Tab, Tab];
    await logout(holder);
    await waitFor(holder, `log.includes('onInvalid:handler')`, tabs);
    await waitUntil(async () => reloads.rec.navigations, (n) => n >= 2, { what: 'the default tab to reload', describe: () => dump(tabs) });
    for (const tab of [reloadStopped, handlerStopped]) await waitFor(tab, `log.includes('disconnected')`, tabs);
    await waitFor(none, `log.includes('invalid:stop')`, tabs);
    // Wall clock: time for a reload or an onInvalid call that should not come.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual([none, reloadStopped, handlerStopped].map((tab) => tab.rec.navigations), [1, 1, 1], `no reload there\n${dump(tabs)}`);
    assert.deepEqual(await run(none, 'log'), ['invalid:reconnect', 'invalid:reconnect', 'invalid:stop']);
    assert.deepEqual(await run(reloadStopped, 'log'), ['invalid:reconnect', 'invalid:reconnect', 'invalid:reload', 'disconnected']);
    assert.deepEqual(await run(handlerStopped, 'log'), ['invalid:reconnect', 'invalid:reconnect', 'invalid:handler', 'disconnected']);
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test('arguments that cannot be cloned throw at emit time in every tab, and later emits still go', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    const context = tabs[0]!.page.context();
    const early = await openTab(context, tabs); // emits before it heard the holder
    const attempt = `(() => { try { socket.emit('note', { f: () => 1 }); return 'sent'; } catch (e) { return e.name; } })()`;
    const outcome = await run<string>(early, `make(), ${attempt}`);
    assert.equal(outcome, 'DataCloneError');
    for (const tab of tabs.slice(0, 2)) assert.equal(await run(tab, attempt), 'DataCloneError');
    for (const [i, tab] of tabs.entries()) assert.equal(await run(tab, `socket.timeout(5000).emitWithAck('echo', 'next-${i}')`), `next-${i}`);
    assert.deepEqual(received.sort(), ['echo:next-0:ann', 'echo:next-1:ann', 'echo:next-2:ann'], 'nothing of the refused emits reached the server');
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test('the ackTimeout option: acks are error-first and time out, in the holder and a follower', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ ackTimeout: 400 }, { ackTimeout: 400 }]);
    for (const tab of tabs) assert.deepEqual(await run(tab, `new Promise((resolve) => socket.emit('echo', 'x', (...args) => resolve(args)))`), [null, 'x']);
    await cutConnection(tabs);
    for (const tab of tabs) {
      const started = Date.now();
      assert.equal(await run(tab, `new Promise((resolve) => socket.emit('echo', 'y', (e, v) => resolve(e ? failure(e) : 'acked ' + v)))`), 'error:operation has timed out');
      assert.ok(Date.now() - started < 2000, `timed out after ${Date.now() - started} ms`);
    }
  });

  test("tabs with another user's credential or other auth never share a connection; a name the app gives makes them share", { timeout: 30_000 }, async (t) => {
    const context = await fresh(t);
    const tabs: Tab[] = [];
    const ann = await app.ticket(await app.login({ user: 'ann' }), app.url);
    const bob = await app.ticket(await app.login({ user: 'bob' }), app.url);
    const users: Array<[MakeOptions, string]> = [
      [{ ticket: ann }, 'ann'],
      [{ ticket: bob }, 'bob'],
    ];
    for (const [options, user] of users) {
      const tab = await openTab(context, tabs);
      await make(tab, options);
      await waitConnected(tab, tabs);
      assert.equal(await run(tab, `socket.emitWithAck('who')`), user, dump(tabs));
      assert.equal(await run(tab, 'socket.leader'), true, 'a connection of its own');
    }
    assert.equal(app.io.of('/').sockets.size, 2);

    // auth objects that differ: two connections; the same: one.
    await login(tabs[0]!, 'cy');
    for (const auth of [{ room: 1 }, { room: 2 }, { room: 1 }]) {
      const tab = await openTab(context, tabs);
      await make(tab, { auth });
      await waitConnected(tab, tabs);
    }
    assert.deepEqual(await Promise.all(tabs.slice(2).map((tab) => run(tab, 'socket.leader'))), [true, true, false]);
    // A name: the app says these tabs are one user.
    for (let i = 0; i < 2; i++) {
      const tab = await openTab(context, tabs);
      await make(tab, { ticket: ann, name: 'ann' });
      await waitConnected(tab, tabs);
    }
    assert.deepEqual(await Promise.all(tabs.slice(5).map((tab) => run(tab, 'socket.leader'))), [true, false]);
  });
});

/** Posts `messages` on the channel named `name` from `tab`, as a tab would, to the holder (its `from`, asked with `hello`); resolves to the `ack` messages addressed to tab 1. */
const craft = (tab: Tab, name: string, messages: object[], acks: number) =>
  run<any[]>(
    tab,
    `new Promise((resolve) => {
      const channel = new BroadcastChannel(${JSON.stringify(name)});
      const seen = [];
      let sent = false;
      channel.onmessage = ({ data }) => {
        if (data.type === 'holder' && !sent) {
          sent = true;
          for (const m of ${JSON.stringify(messages)}) channel.postMessage({ ...m, to: data.from, from: 1, session: data.session + (m.session || 0), args: m.big ? [BigInt(m.big)] : m.args });
        }
        if (data.type === 'ack' && data.to === 1 && seen.push(data) === ${acks}) (channel.close(), resolve(seen));
      };
      channel.postMessage({ type: 'hello' });
      // Wall clock: the bound of the wait (an emit that hangs ends the test), not a sleep.
      setTimeout(() => (channel.close(), resolve(seen)), 3000);
    })`,
  );
const settled = (tab: Tab, code: string) => run<string>(tab, `Promise.race([${code}.then((v) => 'acked ' + JSON.stringify(v), failure), new Promise((r) => setTimeout(r, 3000, 'still waiting after 3 s'))])`);

describe('shared tabs: what the probe of 2026-12-07 (n) found', () => {
  test('a tab that rejoins, or opens, after a logout learns from the holder that the session ended: its emits end session-ended, never run under the next user', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ inv: 'none' }, { inv: 'none' }]);
    const [holder, follower] = tabs as [Tab, Tab];
    await run(follower, 'socket.disconnect(), 0');
    await logout(holder);
    await waitFor(holder, `log.includes('invalid:stop')`, tabs);
    await run(follower, 'socket.connect(), 0');
    await waitFor(follower, `socket.sessions.state === 'invalid'`, tabs);
    const late = await openTab(holder.page.context(), tabs);
    // The new tab emits before it heard the holder: its emit waits in its outbox, then the holder refuses it.
    const early = run<string>(late, `make({ inv: 'none' }), Promise.race([socket.emitWithAck('echo', 'late').then((v) => 'acked ' + v, failure), new Promise((r) => setTimeout(r, 3000, 'still waiting after 3 s'))])`);
    assert.equal(await settled(follower, `socket.emitWithAck('echo', 'rejoined')`), 'SESSION_INVALID:session-ended', dump(tabs));
    assert.equal(await early, 'SESSION_INVALID:session-ended', dump(tabs));
    assert.equal(await settled(late, `socket.emitWithAck('echo', 'late-2')`), 'SESSION_INVALID:session-ended', dump(tabs));
    await login(holder, 'bob');
    await run(holder, 'socket.connect()');
    for (const tab of tabs) await waitConnected(tab, tabs);
    assert.equal(await run(late, `socket.emitWithAck('who')`), 'bob');
    assert.deepEqual(received, [], `nothing emitted after the logout ran under bob\n${dump(tabs)}`);
  });

  test('the holder refuses (session-ended) an emit counted under another number of ended sessions than its own, also a higher one', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ name: 'n6' }, { name: 'n6' }]);
    const emit = { type: 'emit', n: 1, event: 'echo', args: ['counted-more'], ack: true };
    const acks = await craft(tabs[1]!, 'n6', [{ ...emit, session: 1 }, { ...emit, n: 2, args: ['counted-less'], session: -1 }, { ...emit, n: 3, args: ['counted-same'] }], 3);
    assert.deepEqual(
      acks.map((a) => [a.n, a.notice?.reason ?? a.args]),
      [
        [1, 'session-ended'],
        [2, 'session-ended'],
        [3, ['counted-same']],
      ],
      dump(tabs),
    );
    assert.deepEqual(received, ['echo:counted-same:ann']);
  });

  test('an argument socket.io-client cannot send (a BigInt) throws at the emit in every tab; one that reaches the holder ends in an error, and the next still runs', { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ name: 'n11' }, { name: 'n11' }]);
    for (const tab of tabs) assert.equal(await run(tab, `(() => { try { socket.emit('echo', { n: 1n }); return 'sent'; } catch (e) { return e.name; } })()`), 'TypeError');
    const emit = { type: 'emit', event: 'echo', ack: true };
    const acks = await craft(tabs[1]!, 'n11', [{ ...emit, n: 1, big: 5 }, { ...emit, n: 2, args: ['next'] }], 2);
    assert.deepEqual(acks.map((a) => [a.n, a.error ? 'error' : a.args]), [[1, 'error'], [2, ['next']]], dump(tabs));
    for (const [i, tab] of tabs.entries()) assert.equal(await run(tab, `socket.emitWithAck('echo', 'after-${i}')`), `after-${i}`);
    assert.deepEqual(received, ['echo:next:ann', 'echo:after-0:ann', 'echo:after-1:ann']);
    for (const tab of tabs) assert.deepEqual(tab.errors, [], dump(tabs));
  });

  test("the holder's ackTimeout applies to its own emits only: another tab's plain callback and a tab's timeout(ms) count as that tab says", { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{ ackTimeout: 300 }, {}]);
    const [holder, follower] = tabs as [Tab, Tab];
    const plain = run<unknown[]>(follower, `new Promise((resolve) => socket.emit('slow', 'p', 700, (...args) => resolve(args)))`);
    const timed = settled(follower, `socket.timeout(2000).emitWithAck('slow', 'q', 700)`);
    const own = settled(holder, `socket.timeout(2000).emitWithAck('slow', 'h', 700)`);
    const ownDefault = settled(holder, `socket.emitWithAck('slow', 'd', 700)`);
    assert.deepEqual(await Promise.all([plain, timed, own, ownDefault]), [['p'], 'acked "q"', 'acked "h"', 'error:operation has timed out'], dump(tabs));
  });

  test("an object's toJSON() is what the server gets, from the holder and a follower, as from a plain socket", { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}]);
    for (const tab of tabs) {
      const code = `(() => { class Money { constructor(c) { this.cents = c; } toJSON() { return this.cents / 100 + ' EUR'; } } return socket.emitWithAck('echo', { price: new Money(500), list: [new Money(250)], at: new Date(0) }); })()`;
      assert.deepEqual(await run(tab, code), { price: '5 EUR', list: ['2.5 EUR'], at: '1970-01-01T00:00:00.000Z' });
    }
  });
  test("the holder tab closes: the other tabs see disconnect, then connect, so the app's join-on-connect runs again on the new connection", { timeout: 30_000 }, async (t) => {
    const tabs = await sharedTabs(t, [{}, {}, {}]);
    const watch = "socket.on('connect', () => (log.push('connect'), socket.emit('join'))); socket.on('disconnect', () => log.push('disconnect')); socket.on('room', () => log.push('room')); socket.emit('join');";
    for (const tab of tabs) await run(tab, watch);
    await waitUntil(async () => (await app.io.in('room').fetchSockets()).length, (n) => n === 1, { what: 'the joined socket', describe: () => dump(tabs) });
    await tabs[0]!.page.close();
    const followers = tabs.slice(1);
    for (const tab of followers) await waitFor(tab, "socket.connected && log.includes('connect')", tabs, 15_000);
    for (const tab of followers) assert.deepEqual(await run(tab, "log.filter((e) => e === 'disconnect' || e === 'connect')"), ['disconnect', 'connect'], dump(tabs));
    // The new connection joined the room (before: no tab heard connect, so none joined, and the room was empty).
    await waitUntil(async () => (await app.io.in('room').fetchSockets()).length, (n) => n === 1, { what: 'the new connection in the room', describe: () => dump(tabs) });
    app.io.to('room').emit('room');
    for (const tab of followers) await waitFor(tab, "log.includes('room')", tabs);
  });
});
