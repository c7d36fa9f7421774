/**
 * The SDK against a real server, for what a probe found (.probe-f): every waiting emit is answered even
 * when an app ack throws; `retries` is refused; two users' cookies in one process never share a Manager;
 * the app's disconnect() or dispose() in an SDK listener is final; a plain callback socket.io-client gave
 * up at a disconnect, or whose emit it refused, is never answered later by the SDK. And (found in review
 * of the recovery refusal): server events socket.io-client buffered from a refused handshake never reach
 * the page (another user's, after 'session-changed'; twice, after 'unavailable'); timeout() called while
 * the session is ended stays out of the next session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectWithSession, SessionOptionsError, takeReload, type ConnectWithSessionOptions, type UnavailableContext } from '../../src/client/index.js';
import { sessions } from '../../src/server/index.js';
import { SessionEmitError } from '../../src/errors.js';
import { startServer, once, eventually, delay, SECRET, type TestServer } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';

const fast = { retry: { min: 50, max: 200 }, forceNew: true, transports: ['websocket'] as string[], reconnectionDelay: 50, reconnectionDelayMax: 200 };

/** A server whose sockets' `slow` is never answered, and a logged-in SDK socket on it (connecting; `onInvalid: 'none'`). */
async function sdkOn(t: { after(fn: () => unknown): void }) {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sconnection', (s) => s.on('slow', () => {}));
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, onInvalid: 'none' });
  t.after(() => socket.disconnect());
  return { server, cookie, socket };
}

/** What is thrown on a later task while the test runs (Node's test runner would fail the test on it). */
function uncaughtDuring(t: { after(fn: () => unknown): void }): Error[] {
  const seen: Error[] = [];
  process.setUncaughtExceptionCaptureCallback((err) => seen.push(err as Error));
  t.after(() => process.setUncaughtExceptionCaptureCallback(null));
  return seen;
}

const throwing = (calls: unknown[][]) => (...args: unknown[]) => {
  calls.push(args);
  throw new Error('app ack throws');
};

test('an ack callback that throws while the session ends: every other waiting emit is still answered, the invalid policy runs, the throw surfaces once', { timeout: 15_000 }, async (t) => {
  const thrown = uncaughtDuring(t);
  const { server, cookie, socket } = await sdkOn(t);
  const actions: string[] = [];
  socket.sessions.on('invalid', (ctx) => actions.push(ctx.action));
  await once(socket, 'connect');
  const first: unknown[][] = [];
  const others: unknown[][] = [];
  socket.emit('slow', throwing(first));
  for (let i = 0; i < 3; i++) socket.emit('slow', (...a: unknown[]) => others.push(a));
  const withAck = socket.emitWithAck('slow').catch((err: unknown) => err);
  await delay(50);
  await server.logout(cookie);
  await eventually(() => socket.sessions.state === 'invalid');
  assert.equal(first.length, 1);
  assert.equal(others.length, 3, 'the callbacks after the throwing one were answered');
  for (const [err] of others) assert.ok(err instanceof SessionEmitError && err.reason === 'session-ended');
  assert.ok((await withAck) instanceof SessionEmitError);
  assert.deepEqual(actions, ['reconnect', 'reconnect', 'stop'], 'the invalid policy ran to its end');
  await eventually(() => thrown.length === 1);
  assert.equal(thrown[0]!.message, 'app ack throws');
});

test('an ack callback that throws when a handshake is refused unavailable: the others are answered, `unavailable` is told and the SDK retries', { timeout: 15_000 }, async (t) => {
  const thrown = uncaughtDuring(t);
  const store = new FaultyStore();
  const server = await startServer({ store, storeTimeout: 200 });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  server.sio.on('sconnection', (s) => s.on('inc', (ack: (v: string) => void) => ack('ok')));
  const cookie = await server.login();
  store.fault = { op: 'get', kind: 'hang' };
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, onInvalid: 'none' });
  t.after(() => socket.disconnect());
  const told = new Promise<UnavailableContext>((resolve) => socket.sessions.once('unavailable', resolve));
  const first: unknown[][] = [];
  socket.emit('inc', throwing(first));
  const other = new Promise<unknown[]>((resolve) => socket.emit('inc', (...a: unknown[]) => resolve(a)));
  const [err] = await other;
  assert.ok(err instanceof SessionEmitError && err.code === 'SESSION_UNAVAILABLE', String(err));
  assert.equal((await told).phase, 'handshake');
  store.fault = undefined;
  await once(socket, 'connect', 5000);
  assert.equal(await socket.emitWithAck('inc'), 'ok');
  assert.equal(first.length, 1);
  assert.deepEqual(thrown.map((e) => e.message), ['app ack throws']);
});

test("socket.io-client's `retries` is refused: its private queue would resend an emit the SDK answered session-ended under the next session", () => {
  assert.throws(() => connectWithSession('http://127.0.0.1:9', { retries: 3, autoConnect: false }), (err: unknown) => err instanceof SessionOptionsError && /retries: 3 .*session-ended/.test(err.message));
  const socket = connectWithSession('http://127.0.0.1:9', { retries: 0, autoConnect: false });
  socket.sessions.dispose();
});

test("two users' cookies in one process (extraHeaders) on two namespaces of one URL: each socket runs in its own user's session", { timeout: 15_000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const b = sessions(server.io.of('/b'), { store: server.store, secret: SECRET });
  for (const s of [server.sio, b]) s.on('sconnection', (sock) => sock.on('whoami', (ack: (u: unknown) => void) => ack(sock.session.user)));
  const ann = await server.login({ user: 'ann' });
  const bob = await server.login({ user: 'bob' });
  // No forceNew: socket.io-client's default would hand bob's /b socket the Manager cached with ann's cookie.
  const opts = { transports: ['websocket'], onInvalid: 'none' as const };
  const annSocket = connectWithSession(server.url, { ...opts, extraHeaders: { cookie: ann } });
  const bobSocket = connectWithSession(`${server.url}/b`, { ...opts, extraHeaders: { cookie: bob } });
  t.after(() => (annSocket.disconnect(), bobSocket.disconnect()));
  await Promise.all([once(annSocket, 'connect'), once(bobSocket, 'connect')]);
  assert.equal(await annSocket.emitWithAck('whoami'), 'ann');
  assert.equal(await bobSocket.emitWithAck('whoami'), 'bob');
  assert.notEqual(annSocket.io, bobSocket.io);
});

/** A connected SDK socket whose app stops it from a listener; `attempts()`: connection attempts after the stop (the manager's transports opened). */
async function stoppedInListener(t: { after(fn: () => unknown): void }, stop: (socket: ReturnType<typeof connectWithSession>) => void) {
  const { server, cookie, socket } = await sdkOn(t);
  await once(socket, 'connect');
  stop(socket);
  let attempts = 0;
  socket.io.on('open', () => attempts++);
  return { server, socket, cookie, attempts: () => attempts };
}

for (const [what, stop] of [
  ['disconnect() in an `invalid` listener', (s: any) => s.sessions.on('invalid', () => s.disconnect())],
  ['dispose() then disconnect() in an `invalid` listener', (s: any) => s.sessions.on('invalid', () => (s.sessions.dispose(), s.disconnect()))],
] as const) {
  test(`the app's ${what} is final: the SDK's reconnect after a logout does not run`, { timeout: 15_000 }, async (t) => {
    const { server, socket, cookie, attempts } = await stoppedInListener(t, stop);
    await server.logout(cookie);
    await delay(800); // the SDK's reconnect would come 250 ms after the invalid notice (wall clock: an absence)
    assert.equal(attempts(), 0);
    assert.equal(socket.active, false);
  });
}

test("the app's disconnect() in a `state` listener when the SDK starts a retry (server-side disconnect) is final", { timeout: 15_000 }, async (t) => {
  let stopped = false;
  const { server, socket, attempts } = await stoppedInListener(t, (s) =>
    s.sessions.on('state', ({ newState }) => newState === 'connecting' && !stopped && ((stopped = true), s.disconnect())),
  );
  server.io.of('/').sockets.forEach((s) => s.disconnect(true));
  await delay(800); // the retry would come within 200 ms (wall clock: an absence)
  assert.ok(stopped);
  assert.equal(attempts(), 0);
  assert.equal(socket.sessions.state, 'disconnected');
  assert.equal(socket.connected, false);
});

test('a plain callback whose emit was in flight when the transport dropped is forgotten, as socket.io-client does: no false session-ended at a later logout', { timeout: 15_000 }, async (t) => {
  const { server, cookie, socket } = await sdkOn(t);
  await once(socket, 'connect');
  const plain: unknown[][] = [];
  socket.emit('slow', (...a: unknown[]) => plain.push(a));
  const timed = new Promise<unknown[]>((resolve) => socket.timeout(10_000).emit('slow', (...a: unknown[]) => resolve(a)));
  await delay(50);
  server.io.of('/').sockets.forEach((s) => s.conn.close()); // the transport drops; socket.io-client reconnects
  const [err] = await timed;
  assert.equal((err as Error).message, 'socket has been disconnected', 'an error-first ack is answered by socket.io-client');
  await once(socket, 'connect');
  await server.logout(cookie);
  await eventually(() => socket.sessions.state === 'invalid');
  await delay(50);
  assert.deepEqual(plain, [], 'the plain callback is never called, as without the SDK');
});

test('an emit with a reserved name and an ack throws, and its callback is never answered later', { timeout: 15_000 }, async (t) => {
  const { server, cookie, socket } = await sdkOn(t);
  await once(socket, 'connect');
  const calls: unknown[][] = [];
  assert.throws(() => socket.emit('disconnect' as never, (...a: unknown[]) => calls.push(a)), /reserved event name/);
  await server.logout(cookie);
  await eventually(() => socket.sessions.state === 'invalid');
  await delay(50);
  assert.deepEqual(calls, []);
});

/**
 * Alice's SDK socket in her room `user:alice` (joined at her first connect), one broadcast received (an
 * offset to recover from), then its transport dropped and seen gone on both sides; socket.io-client's own
 * reconnection is kept out of the way: the test chooses when the socket comes back (`socket.connect()`).
 */
async function aliceAway(t: { after(fn: () => unknown): void }, server: TestServer, onInvalid: ConnectWithSessionOptions['onInvalid']) {
  server.sio.on('sconnection', (socket, session) => {
    if (!socket.recovered) void socket.join(`user:${session.user as string}`);
  });
  const alice = await server.login({ user: 'alice' });
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie: alice }, onInvalid });
  t.after(() => socket.disconnect());
  const got: string[] = [];
  socket.on('private' as never, (message: string) => void got.push(message));
  await once(socket, 'connect');
  server.io.to('user:alice').emit('private', 'first');
  await eventually(() => got.length === 1);
  const dropped = Promise.all([once(socket, 'disconnect'), once(server.io.of('/').sockets.get(socket.id!)!, 'disconnect')]);
  socket.io.reconnection(false);
  socket.io.engine.close();
  await dropped;
  return { socket, got, alice };
}

test("the SDK drops what socket.io-client buffered from a refused attempt: alice's missed broadcasts never reach the page after the browser became bob's (connection state recovery, 'session-changed')", { timeout: 20_000 }, async (t) => {
  const server = await startServer({ ioOptions: { connectionStateRecovery: { skipMiddlewares: false, maxDisconnectionDuration: 60_000 } } });
  t.after(() => server.close());
  server.sio.on('sinvalid', () => {});
  const reasons: string[] = [];
  const { socket, got } = await aliceAway(t, server, 'none');
  socket.sessions.on('invalid', (ctx) => reasons.push(`${ctx.phase} ${ctx.reason} ${ctx.action}`));
  server.io.to('user:alice').emit('private', 'missed by alice');
  // Alice's session stays (no logout): only the credential says the browser is bob's now.
  const bob = await server.login({ user: 'bob' });
  (socket.io.opts.extraHeaders as Record<string, string>).cookie = bob;
  // Recovered, so socket.io writes alice's missed broadcast before the handshake refuses it
  // 'session-changed'; the SDK reconnects, and that attempt is a new socket (not recovered again).
  socket.connect();
  await once(socket, 'connect');
  assert.deepEqual(reasons, ['handshake session-changed reconnect']);
  assert.equal(socket.recovered, false);
  server.io.to('user:bob').emit('private', 'for bob');
  await eventually(() => got.includes('for bob'));
  // Before: socket.io-client handed the broadcast to alice it had buffered at the refused attempt to bob's page.
  assert.deepEqual(got, ['first', 'for bob']);
});

test("skipMiddlewares true, the browser became bob's while away (alice's session alive): the SDK's socket is recovered and refused 'session-changed' once, then connects as bob; no loop of recoveries", { timeout: 20_000 }, async (t) => {
  const server = await startServer({ ioOptions: { connectionStateRecovery: { skipMiddlewares: true, maxDisconnectionDuration: 60_000 } } });
  t.after(() => server.close());
  server.sio.on('sinvalid', () => {});
  const { socket, got } = await aliceAway(t, server, 'none');
  const reasons: string[] = [];
  socket.sessions.on('invalid', (ctx) => reasons.push(`${ctx.phase} ${ctx.reason} ${ctx.action}`));
  let attempts = 0;
  server.io.engine.on('connection', () => (attempts += 1));
  (socket.io.opts.extraHeaders as Record<string, string>).cookie = await server.login({ user: 'bob' });
  socket.connect();
  await eventually(() => socket.connected && !socket.recovered, 5000);
  server.io.to('user:alice').emit('private', 'for alice');
  server.io.to('user:bob').emit('private', 'for bob');
  await eventually(() => got.includes('for bob'));
  await server.sio.flush();
  // Before: recovered into alice's rooms and refused again about 4 times a second until
  // maxDisconnectionDuration (each recovery resets the SDK's count of failures, so its policy never
  // escalated), and alice's broadcasts reached the page in each window.
  assert.deepEqual(reasons, ['connected session-changed reconnect']);
  assert.equal(attempts, 2);
  assert.deepEqual(got, ['first', 'for bob']);
});

test('timeout() called while the session is ended does not carry over to the first emit of the next session (a plain callback there is answered, not left waiting)', { timeout: 15_000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sinvalid', () => {});
  server.sio.on('sconnection', (s) => s.on('slow', (ack: (v: string) => void) => void setTimeout(ack, 400, 'done')));
  const alice = await server.login({ user: 'alice' });
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie: alice }, onInvalid: 'none' });
  t.after(() => socket.disconnect());
  await once(socket, 'connect');
  await server.logout(alice);
  await eventually(() => socket.sessions.state === 'invalid');
  const ended = await new Promise<unknown>((resolve) => socket.timeout(100).emit('slow', resolve));
  assert.ok(ended instanceof SessionEmitError && ended.reason === 'session-ended', String(ended));
  (socket.io.opts.extraHeaders as Record<string, string>).cookie = await server.login({ user: 'bob' });
  socket.connect();
  await once(socket, 'connect');
  // Before: socket.io-client still held the 100 ms timeout: it gave this emit up, and its plain callback was never called.
  const reply = await new Promise<unknown[]>((resolve, reject) => {
    socket.emit('slow', (...args: unknown[]) => resolve(args));
    setTimeout(reject, 3000, new Error('the plain callback was never called'));
  });
  assert.deepEqual(reply, ['done']);
});

test("a recovered socket's missed broadcast reaches the page once when its first handshake was refused unavailable (socket.io sends it again with the next attempt)", { timeout: 20_000 }, async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ store, storeTimeout: 200, ioOptions: { connectionStateRecovery: { skipMiddlewares: false, maxDisconnectionDuration: 60_000 } } });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  const { socket, got } = await aliceAway(t, server, 'none');
  server.io.to('user:alice').emit('private', 'missed');
  store.fault = { op: 'get', kind: 'hang' };
  socket.sessions.once('unavailable', () => (store.fault = undefined)); // the SDK's retry finds the store back
  socket.connect();
  await once(socket, 'connect');
  assert.equal(socket.recovered, true);
  server.io.to('user:alice').emit('private', 'last');
  await eventually(() => got.includes('last'));
  // Before: 'missed' twice, buffered by socket.io-client from the refused attempt and sent again with the recovered one.
  assert.deepEqual(got, ['first', 'missed', 'last']);
});

test('a reloadWindow of 0 (or shorter than the time between reloads) never lets reloads loop: the window counts as at least 10 s', (t) => {
  // Node has no sessionStorage: a Map-backed stand-in with its API (the browser's is used in test/browser).
  const backing = new Map<string, string>();
  const global = globalThis as { sessionStorage?: unknown };
  global.sessionStorage = { getItem: (k: string) => backing.get(k) ?? null, setItem: (k: string, v: string) => void backing.set(k, v) };
  t.after(() => delete global.sessionStorage);
  for (const windowMs of [0, 500]) {
    backing.clear();
    const now = Date.now();
    // One reload a second, as a page that reloads, connects and is refused again would.
    const taken = [0, 1, 2, 3, 4, 5].map((i) => takeReload(3, windowMs, now + i * 1000));
    assert.deepEqual(taken, [true, true, true, false, false, false], `reloadWindow ${windowMs}`);
  }
  backing.clear();
  assert.deepEqual([0, 1, 2].map(() => takeReload(1, 20_000)), [true, false, false], 'a longer window is kept as given');
});
