// A destroyed session never exists again, whatever write races the destroy: the token endpoint's
// and the served script's `?renew=1` (cookie renewal writes the record), socket saves in both
// modes, and revalidation touches. Each race is run 10 times (each on its own session) with the two sides offset by different amounts, on a store with 20 ms per read or
// destroy and 60 ms per write (slow writes: an fsync, a remote Redis), so the calls interleave.
// After both sides answered and a short settle, the store has no record and HTTP shows no user for
// the old cookie. The offsets are densest where a renewal's re-read and its write (~60 and ~120 ms
// after it starts) straddle the logout's destroy (~40 ms after the logout starts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, sidOf, delay, eventually, type TestServer, type TestServerOptions } from '../helpers/servers.js';
import { StoreHub } from '../../src/server/store.js';

const TRIES = 10;
/** Start of the racing write relative to the logout, ms (negative: the write starts first). */
const offsetOf = (i: number) => [-70, -60, -55, -50, -45, -40, -30, -20, 0, 20][i % 10]!;
/** Runs the tries one after the other (HTTP races: parallel tries would blur each other's offsets) or side by side. */
async function tries(run: (i: number) => Promise<void>, sideBySide = false): Promise<void> {
  if (sideBySide) await Promise.all(Array.from({ length: TRIES }, (_, i) => run(i)));
  else for (let i = 0; i < TRIES; i++) await run(i);
}
const SETTLE_MS = 200;

async function raceServer(t: { after(fn: () => unknown): void }, options: TestServerOptions = {}) {
  const store = new FaultyStore({ latency: (op) => (op === 'set' ? 60 : 20) });
  const server = await startServer({ store, sessionCookie: { maxAge: 60_000 }, ...options });
  t.after(() => server.close());
  server.sio.on('serror', () => {}); // store races may be reported; not what is asserted here
  return { store, server };
}

async function logout(server: TestServer, cookie: string): Promise<number> {
  const res = await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' });
  await res.arrayBuffer();
  return res.status;
}

/** Runs `write` and a logout `offset` ms apart; resolves when both answered. */
async function race(offset: number, doLogout: () => Promise<unknown>, write: () => Promise<unknown>): Promise<void> {
  await Promise.all([delay(Math.max(0, -offset)).then(doLogout), delay(Math.max(0, offset)).then(write)]);
}

/** After the settle: whether the destroyed session came back (in the store, or for HTTP). */
/**
 * Try `i`: a socket of a new session emits `event` (with a counter) every 5 ms, and the session is
 * logged out `offsetOf(i)` + 50 ms later, while that traffic goes on. What came back, if anything.
 */
async function socketRacingLogout(t: { after(fn: () => unknown): void }, store: FaultyStore, server: TestServer, i: number, event: string): Promise<string | undefined> {
  const cookie = await server.login({ user: `user-${i}` });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  let n = 0;
  const traffic = setInterval(() => client.connected && client.emit(event, ++n), 5);
  await delay(offsetOf(i) + 50);
  await logout(server, cookie);
  await delay(100); // wall clock: the traffic goes on for a while after the logout
  clearInterval(traffic);
  client.close();
  return resurrected(store, server, cookie);
}

async function resurrected(store: FaultyStore, server: TestServer, cookie: string): Promise<string | undefined> {
  await delay(SETTLE_MS);
  const record = store.peek(sidOf(cookie));
  if (record !== undefined) return `store has ${JSON.stringify(record).slice(0, 120)}`;
  const seen = await server.httpSession(cookie);
  if (seen.user !== undefined) return `HTTP sees user ${String(seen.user)}`;
  return undefined;
}

function report(t: { diagnostic(msg: string): void }, what: string, failures: string[]) {
  t.diagnostic(`${what}: ${failures.length}/${TRIES} tries brought the session back${failures.length ? `: ${failures.join('; ')}` : ''}`);
  assert.deepEqual(failures, [], `${what}: a destroyed session came back`);
}

test('GET /socket.io-sessions/token?renew=1 racing a logout never writes the destroyed session back', async (t) => {
  const { store, server } = await raceServer(t);
  const failures: string[] = [];
  await tries(async (i) => {
    const cookie = await server.login({ user: `user-${i}` });
    const renew = async () => (await fetch(`${server.url}/socket.io-sessions/token?renew=1`, { headers: { cookie } })).arrayBuffer();
    await race(offsetOf(i), () => logout(server, cookie), renew);
    const back = await resurrected(store, server, cookie);
    if (back) failures.push(`offset ${offsetOf(i)} ms: ${back}`);
  });
  report(t, 'token endpoint ?renew=1', failures);
});

test('the served script with ?renew=1 (same-origin) racing a logout never writes the destroyed session back', async (t) => {
  const { store, server } = await raceServer(t);
  const failures: string[] = [];
  await tries(async (i) => {
    const cookie = await server.login({ user: `user-${i}` });
    const renew = async () =>
      (await fetch(`${server.url}/socket.io/socket.io-sessions.js?renew=1`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } })).arrayBuffer();
    await race(offsetOf(i), () => logout(server, cookie), renew);
    const back = await resurrected(store, server, cookie);
    if (back) failures.push(`offset ${offsetOf(i)} ms: ${back}`);
  });
  report(t, 'served script ?renew=1', failures);
});

for (const perMessage of [false, true]) {
  const mode = perMessage ? 'per-message' : 'per-connection (saveDelay 0)';
  test(`${mode}: socket saves racing a logout never write the destroyed session back`, async (t) => {
    const { store, server } = await raceServer(t, { perMessage, saveDelay: 0 });
    server.sio.on('sconnection', (socket) => {
      socket.on('note', (value: number) => {
        socket.session.note = value;
      });
    });
    const failures: string[] = [];
    await tries(async (i) => {
      // A steady stream of changes, so a save is under way whenever the logout lands.
      const back = await socketRacingLogout(t, store, server, i, 'note');
      if (back) failures.push(`offset ${offsetOf(i)} ms: ${back}`);
    }, true);
    report(t, `${mode} saves`, failures);
  });
}

test('revalidation touches racing a logout never write the destroyed session back', async (t) => {
  const { store, server } = await raceServer(t, { revalidateInterval: 20 });
  server.sio.on('sconnection', (socket) => socket.on('ping', () => {}));
  const failures: string[] = [];
  await tries(async (i) => {
    // An active socket: every revalidation touches the session.
    const back = await socketRacingLogout(t, store, server, i, 'ping');
    if (back) failures.push(`offset ${offsetOf(i)} ms: ${back}`);
  }, true);
  report(t, 'revalidation', failures);
});

/** A server on `store` whose sockets' `set` assigns a key (acked 'ok'), ann logged in with a socket connected; `invalid` lists sinvalid's reasons. */
async function annWithSocket(t: { after(fn: () => unknown): void }, store: FaultyStore, options: TestServerOptions) {
  const server = await startServer({ store, storeTimeout: 2000, ...options });
  t.after(() => server.close());
  const invalid: string[] = [];
  server.sio.on('sinvalid', (_socket, reason) => invalid.push(reason));
  server.sio.on('sconnection', (socket) => socket.on('set', (key: string, value: string, ack: (r: string) => void) => {
    socket.session[key] = value;
    ack('ok');
  }));
  const cookie = await server.login({ user: 'ann' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return { server, cookie, client, invalid };
}

for (const perMessage of [false, true]) {
  test(`${perMessage ? 'per-message' : 'per-connection'}: a logout whose store destroy fails is not a logout: a socket write and an HTTP write made while it was under way are stored, the socket is not told its session ended`, async (t) => {
    const store = new FaultyStore({ latency: (op) => (op === 'destroy' ? 300 : 0) });
    const { server, cookie, client, invalid } = await annWithSocket(t, store, { perMessage, saveDelay: 0 });
    store.fault = { op: 'destroy', kind: 'error' }; // answered after 300 ms, with an error
    const loggingOut = logout(server, cookie);
    await delay(50); // the destroy is under way
    const [acked] = await Promise.all([client.timeout(3000).emitWithAck('set', 'fromSocket', 'kept'), server.httpWrite(cookie, { fromHttp: 'kept' })]);
    assert.equal(await loggingOut, 500);
    store.fault = undefined;
    await server.sio.flush();
    // Before: both writes were dropped as the destroyed session's (the HTTP one answered 200), and the socket was told `destroyed`.
    assert.equal(acked, 'ok');
    const record = store.peek(sidOf(cookie)) as Record<string, unknown>;
    assert.deepEqual([record.user, record.fromSocket, record.fromHttp], ['ann', 'kept', 'kept']);
    assert.deepEqual([invalid, client.connected], [[], true]);
  });
}

test('a write under way when a destroy starts that then fails: no second destroy follows the write (the session lives on with the acked write)', async (t) => {
  const store = new FaultyStore({ latency: (op) => (op === 'set' ? 200 : op === 'destroy' ? 400 : 0) });
  const { server, cookie, client, invalid } = await annWithSocket(t, store, { perMessage: true });
  store.resetCalls();
  const acked = client.timeout(3000).emitWithAck('set', 'fromSocket', 'kept'); // its write takes 200 ms
  await eventually(() => store.calls.set === 1);
  store.fault = { op: 'destroy', kind: 'error' }; // the logout's destroy fails after 400 ms; later ones would succeed
  const loggingOut = logout(server, cookie);
  await eventually(() => store.calls.destroy === 1);
  store.fault = undefined;
  assert.equal(await acked, 'ok');
  assert.equal(await loggingOut, 500);
  await server.sio.flush();
  // Before: the write's end (at 200 ms, the destroy still under way) ran a second destroy, which succeeded: the session was gone, no socket told.
  assert.equal(store.calls.destroy, 1);
  assert.deepEqual(pickUser(store.peek(sidOf(cookie))), { user: 'ann', fromSocket: 'kept' });
  assert.deepEqual([invalid, client.connected], [[], true]);
});

test('writes waiting for a destroy that never answers are let go at destroyWaitMs: told as failed, nothing held', async (t) => {
  const wait = StoreHub.destroyWaitMs;
  StoreHub.destroyWaitMs = 300;
  t.after(() => (StoreHub.destroyWaitMs = wait));
  // (Hooks run in the order added: the hung logout request is let go first, or the server's close waits for it.)
  const controller = new AbortController();
  t.after(() => controller.abort());
  const store = new FaultyStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  const cookie = await server.login({ user: 'ann' });
  store.fault = { op: 'destroy', kind: 'hang' };
  store.resetCalls();
  void fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie }, signal: controller.signal }).catch(() => undefined); // never answered (its destroy hangs)
  await eventually(() => store.calls.destroy === 1);
  for (let i = 0; i < 3; i++) await assert.rejects(server.httpWrite(cookie, { [`w${i}`]: 'x'.repeat(10_000) }), /HTTP 500/, 'told its write failed');
  // Before: the waiting writes (each holding its record, and the request and response through its callback) stayed for good.
  await eventually(() => StoreHub.of(store)!.sizes().destroyWaiters === 0, 2000);
  assert.equal(Object.hasOwn(store.peek(sidOf(cookie)) as object, 'w0'), false);
});

const pickUser = (record: unknown) => {
  const { user, fromSocket } = (record ?? {}) as Record<string, unknown>;
  return { user, fromSocket };
};
