/**
 * connectWithSession in Node against a real server: the SDK's state, its reconnects where
 * socket.io-client stops by itself, and its invalid-session policy. (The page-reload part of the
 * policy runs in Chromium: test/browser.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from 'express-session';
import { connectWithSession, SessionOptionsError, type SessionState } from '../../src/client/index.js';
import { sharedTabs } from '../../src/client/tabs.js';
import { io } from 'socket.io-client';
import { startServer, once, eventually } from '../helpers/servers.js';

const fast = { retry: { min: 50, max: 200 }, forceNew: true, transports: ['websocket'] as string[], reconnectionDelay: 50, reconnectionDelayMax: 200 };

function states(socket: { sessions: { on(e: 'state', l: (c: { newState: SessionState }) => void): () => void } }): SessionState[] {
  const seen: SessionState[] = [];
  socket.sessions.on('state', ({ newState }) => seen.push(newState));
  return seen;
}

test('connects with the session cookie and reports connecting -> connected', async () => {
  const server = await startServer();
  const cookie = await server.login({ user: 'ann' });
  const seen: SessionState[] = [];
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, on: { state: ({ newState }) => seen.push(newState) } });
  await once(socket, 'connect');
  assert.deepEqual(seen, ['connecting', 'connected']);
  assert.equal(socket.sessions.state, 'connected');
  socket.disconnect();
  assert.equal(socket.sessions.state, 'disconnected');
  await server.close();
});

test('comes back by itself after the server restarts, with the same session', async () => {
  const store = new MemoryStore();
  let server = await startServer({ store });
  const cookie = await server.login({ user: 'ann' });
  const { port } = server;
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie } });
  await once(socket, 'connect');
  await server.close();
  await eventually(() => socket.sessions.state === 'connecting');
  server = await startServer({ store, port });
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  await once(socket, 'connect', 5000);
  assert.equal(await socket.emitWithAck('who'), 'ann');
  socket.disconnect();
  await server.close();
});

test('SESSION_UNAVAILABLE at the handshake is retried with backoff until the store is back', async () => {
  // A store outage cannot be produced on MemoryStore for real: this subclass fails on demand.
  class FlakyStore extends MemoryStore {
    down = false;
    override get(sid: string, cb: (err: unknown, s?: any) => void) {
      if (this.down) return cb(new Error('store down'));
      super.get(sid, cb);
    }
  }
  const store = new FlakyStore();
  const server = await startServer({ store });
  server.sio.on('serror', () => {});
  const cookie = await server.login();
  store.down = true;
  const socket = connectWithSession(server.url, { ...fast, retry: { min: 20, max: 40 }, extraHeaders: { cookie } });
  const invalid: unknown[] = [];
  socket.sessions.on('invalid', (ctx) => invalid.push(ctx));
  const [first] = await once<[{ code: string; phase: string; retryIn: number }]>(socket.sessions, 'unavailable');
  assert.equal(first.code, 'SESSION_UNAVAILABLE');
  assert.equal(first.phase, 'handshake');
  assert.ok(first.retryIn >= 10 && first.retryIn <= 1000, `retryIn ${first.retryIn}`);
  await once(socket.sessions, 'unavailable', 3000); // it keeps trying
  store.down = false;
  await once(socket, 'connect', 5000);
  assert.equal(socket.sessions.state, 'connected');
  assert.deepEqual(invalid, [], 'a store outage is never an invalid session');
  socket.disconnect();
  await server.close();
});

test('a server-side disconnect that is not about the session is followed by a reconnect', async () => {
  const server = await startServer();
  server.sio.on('sconnection', (s) => s.on('kick', () => s.disconnect()));
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie } });
  await once(socket, 'connect');
  socket.emit('kick');
  const [reason] = await once<[string]>(socket, 'disconnect');
  assert.equal(reason, 'io server disconnect');
  await once(socket, 'connect', 3000);
  assert.equal(socket.sessions.state, 'connected');
  socket.disconnect();
  await server.close();
});

test('logout mid-connection: one listener hears it, the SDK retries twice (a login may be in flight), then stops (no page to reload in Node)', async () => {
  const server = await startServer();
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie } });
  const seen = states(socket);
  const invalid: Array<{ phase: string; action: string; reason: string }> = [];
  socket.sessions.on('invalid', ({ phase, action, reason }) => invalid.push({ phase, action, reason }));
  await once(socket, 'connect');
  await server.logout(cookie);
  await eventually(() => socket.sessions.state === 'invalid', 5000);
  assert.deepEqual(invalid, [
    { phase: 'connected', action: 'reconnect', reason: 'destroyed' },
    { phase: 'handshake', action: 'reconnect', reason: 'destroyed' },
    { phase: 'handshake', action: 'stop', reason: 'destroyed' },
  ]);
  assert.deepEqual(seen.slice(-2), ['connecting', 'invalid']);
  // Stopped means stopped: no further attempts. (wall clock: an absence over a real window)
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(invalid.length, 3);
  await server.close();
});

test('an onInvalid function takes over and can reconnect after the app logs in again', async () => {
  const server = await startServer();
  const stale = await server.login();
  await server.logout(stale);
  let fresh = '';
  const socket = connectWithSession(server.url, {
    ...fast,
    extraHeaders: { cookie: stale },
    onInvalid: async (ctx) => {
      fresh = await server.login({ user: 'again' });
      (socket.io.opts.extraHeaders as Record<string, string>).cookie = fresh;
      ctx.reconnect();
    },
  });
  const actions: string[] = [];
  socket.sessions.on('invalid', (ctx) => actions.push(ctx.action));
  await once(socket, 'connect', 5000);
  assert.deepEqual(actions, ['reconnect', 'handler']);
  assert.equal(socket.sessions.state, 'connected');
  socket.disconnect();
  await server.close();
});

test('bad options throw a typed error at once', () => {
  assert.throws(() => connectWithSession('http://127.0.0.1:9', { onInvalid: 'explode' as never, autoConnect: false }), { name: 'SessionOptionsError' });
  assert.throws(() => connectWithSession('http://127.0.0.1:9', { maxReloads: -1, autoConnect: false }), { name: 'SessionOptionsError' });
});

test('bad options of shared tabs throw SessionOptionsError at once, those of connectWithSession too', () => {
  assert.throws(() => sharedTabs({ name: 42 as never }), SessionOptionsError);
  assert.throws(() => sharedTabs('chat' as never), SessionOptionsError);
  assert.throws(() => connectWithSession('http://127.0.0.1:9', { tabs: sharedTabs(), retry: { min: -5 }, autoConnect: false }), SessionOptionsError);
});

test('shared tabs without Web Locks (Node has none): the socket is this process\'s own and works as usual', async () => {
  const server = await startServer();
  const cookie = await server.login({ user: 'ann' });
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  const seen: SessionState[] = [];
  const socket = connectWithSession(server.url, { ...fast, tabs: sharedTabs(), extraHeaders: { cookie }, on: { state: ({ newState }) => seen.push(newState) } });
  await once(socket, 'connect');
  assert.equal(socket.leader, true);
  assert.equal(await socket.emitWithAck('who'), 'ann');
  assert.deepEqual(seen, ['connecting', 'connected']);
  socket.disconnect();
  await server.close();
});

/**
 * What the SDK's listeners (`state`, `invalid`, `unavailable`) throw: thrown again on a later task,
 * where Node (or the page's `onerror`) sees an uncaught exception, after the SDK did its own work.
 * Node's test runner fails a test on an uncaught exception, so this test takes them itself while it
 * runs (`process.setUncaughtExceptionCaptureCallback`, released after).
 */
function uncaughtDuring(t: { after(fn: () => unknown): void }): Error[] {
  const seen: Error[] = [];
  process.setUncaughtExceptionCaptureCallback((err) => seen.push(err as Error));
  t.after(() => process.setUncaughtExceptionCaptureCallback(null));
  return seen;
}

test('listeners that throw (state, invalid, unavailable) do not stop the SDK: it connects, follows a logout through its reconnects to its documented end, retries a store outage; each throw surfaces as an uncaught exception, the other listeners still run', async (t) => {
  const thrown = uncaughtDuring(t);
  class FlakyStore extends MemoryStore {
    down = false;
    override get(sid: string, cb: (err: unknown, s?: any) => void) {
      if (this.down) return cb(new Error('store down')); // a store outage on demand (MemoryStore cannot fail for real)
      super.get(sid, cb);
    }
  }
  const store = new FlakyStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  const cookie = await server.login();
  store.down = true;
  const calls: Record<string, number> = { state: 0, invalid: 0, unavailable: 0 };
  const bug = (where: string) => () => {
    calls[where]!++;
    throw new Error(`app bug in ${where}`);
  };
  const socket = connectWithSession(server.url, { ...fast, retry: { min: 20, max: 40 }, extraHeaders: { cookie }, on: { state: bug('state'), invalid: bug('invalid'), unavailable: bug('unavailable') } });
  const seen = states(socket); // a second listener, after the throwing one
  const invalid: string[] = [];
  socket.sessions.on('invalid', (ctx) => invalid.push(ctx.action));
  await once(socket.sessions, 'unavailable', 3000);
  await once(socket.sessions, 'unavailable', 3000); // retried after the throwing listener
  store.down = false;
  await once(socket, 'connect', 5000);
  assert.equal(socket.sessions.state, 'connected');
  await server.logout(cookie);
  await eventually(() => socket.sessions.state === 'invalid', 5000);
  assert.deepEqual(invalid, ['reconnect', 'reconnect', 'stop'], 'the invalid policy ran to its end');
  assert.deepEqual(seen.slice(-2), ['connecting', 'invalid']);
  assert.ok(seen.includes('connected'));
  await eventually(() => thrown.some((e) => /app bug in invalid/.test(e.message)), 2000);
  const where = new Set(thrown.map((e) => e.message));
  assert.deepEqual([...where].sort(), ['app bug in invalid', 'app bug in state', 'app bug in unavailable'], 'each throw surfaced, none was swallowed');
  socket.sessions.dispose();
  socket.disconnect();
  await eventually(() => thrown.length === calls.state! + calls.invalid! + calls.unavailable!, 2000);
  for (const where of Object.keys(calls)) assert.equal(thrown.filter((e) => e.message === `app bug in ${where}`).length, calls[where], `each ${where} throw surfaced once`);
  assert.equal(calls.state, seen.length + 1, 'the throwing state listener heard every change (and the first, before the second listener was added)');
});

test("another namespace on the SDK's Manager (multiplex) does not connect by itself (the Manager's autoConnect is the SDK's false, docs/browser.md): its connect() connects it, on the same connection", async () => {
  const server = await startServer();
  const cookie = await server.login({ user: 'ann' });
  let others = 0;
  server.io.of('/other').on('connection', () => others++);
  const socket = connectWithSession(server.url, { extraHeaders: { cookie }, multiplex: true, transports: ['websocket'] });
  const other = io(`${server.url}/other`, { extraHeaders: { cookie }, transports: ['websocket'] });
  try {
    await once(socket, 'connect');
    assert.equal(other.io, socket.io, 'one Manager');
    assert.equal(other.active, false, 'not started by itself');
    other.connect();
    await once(other, 'connect');
    assert.deepEqual({ others, engine: server.io.engine.clientsCount, state: socket.sessions.state }, { others: 1, engine: 1, state: 'connected' });
  } finally {
    other.disconnect();
    socket.disconnect();
    await server.close();
  }
});

/** engine.io's allowRequest set on the running server (test only): new transports are refused while `refusing()`. */
function refuseTransports(server: { io: { engine: unknown } }, refusing: () => boolean): void {
  (server.io.engine as { opts: { allowRequest?: unknown } }).opts.allowRequest = (_req: unknown, cb: (err: string | null, ok: boolean) => void) => (refusing() ? cb('refused', false) : cb(null, true));
}

test("reconnection: false and a transport error (socket.io-client will not retry): the SDK says 'disconnected', not 'connecting' for good; connect() connects", async () => {
  const server = await startServer();
  const cookie = await server.login();
  let refusing = true;
  refuseTransports(server, () => refusing);
  const seen: SessionState[] = [];
  const socket = connectWithSession(server.url, { forceNew: true, transports: ['websocket'], reconnection: false, extraHeaders: { cookie }, on: { state: ({ newState }) => seen.push(newState) } });
  try {
    await once(socket, 'connect_error');
    assert.deepEqual(seen, ['connecting', 'disconnected']);
    refusing = false;
    socket.connect();
    await once(socket, 'connect');
    assert.equal(socket.sessions.state, 'connected');
  } finally {
    socket.disconnect();
    await server.close();
  }
});

test("reconnection: false, kicked by the server, the app's connect() fails on the transport: the state stays 'connecting' and the SDK's own retry still connects (an active socket whose transport closed is connected again)", async () => {
  const server = await startServer();
  server.sio.on('sconnection', (s) => s.on('kick', () => s.disconnect()));
  const cookie = await server.login();
  let refusing = false;
  refuseTransports(server, () => refusing);
  const seen: SessionState[] = [];
  const socket = connectWithSession(server.url, { forceNew: true, transports: ['websocket'], reconnection: false, retry: { min: 1000, max: 1000 }, extraHeaders: { cookie }, on: { state: ({ newState }) => seen.push(newState) } });
  try {
    await once(socket, 'connect');
    refusing = true;
    socket.emit('kick');
    await once(socket, 'disconnect');
    socket.connect(); // the app's own reconnect: refused at the transport
    await once(socket, 'connect_error');
    // socket.io-client gave up on the app's attempt, the SDK's retry is still pending: 'connecting', not 'disconnected'.
    assert.equal(socket.sessions.state, 'connecting');
    refusing = false;
    // The SDK's retry (0.5-1 s after the kick, after the app's attempt failed) connects the socket that attempt left active.
    await once(socket, 'connect', 5000);
    assert.equal(socket.sessions.state, 'connected');
    assert.deepEqual(seen, ['connecting', 'connected', 'connecting', 'connected'], 'never said disconnected while its retry was pending');
    await eventually(() => server.io.of('/').sockets.size === 1);
  } finally {
    socket.disconnect();
    await server.close();
  }
});

test("the page's origin refused while the SDK's own retry is pending (the app's connect() in its backoff): 'disconnected' at once, 'fatal', and the retry is cancelled", async () => {
  let allowed = true;
  const server = await startServer({ origins: () => allowed });
  server.sio.on('sconnection', (s) => s.on('kick', () => s.disconnect()));
  const cookie = await server.login();
  const seen: SessionState[] = [];
  const fatal: unknown[] = [];
  const socket = connectWithSession(server.url, { forceNew: true, transports: ['websocket'], retry: { min: 1000, max: 1000 }, extraHeaders: { cookie, origin: 'http://app.example' }, on: { state: ({ newState }) => seen.push(newState), fatal: (err) => fatal.push(err) } });
  let refusals = 0;
  socket.on('connect_error', () => refusals++);
  try {
    await once(socket, 'connect');
    socket.emit('kick'); // a server-side disconnect: the SDK's own retry comes back after its backoff (1 s)
    await once(socket, 'disconnect');
    assert.equal(socket.sessions.state, 'connecting');
    allowed = false; // the app's origins changed meanwhile
    socket.connect(); // the app's own attempt during the backoff: refused, origin-not-allowed
    await once(socket, 'connect_error');
    assert.equal(socket.sessions.state, 'disconnected', 'no retry can help: said at once');
    assert.equal(fatal.length, 1);
    assert.equal((fatal[0] as Error).name, 'OriginNotAllowedError');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // wall clock: past the retry's backoff, nothing tries again
    assert.equal(refusals, 1, 'the pending retry was cancelled');
    assert.deepEqual(seen, ['connecting', 'connected', 'connecting', 'disconnected']);
  } finally {
    socket.disconnect();
    await server.close();
  }
});

test("the app's socket on another namespace made the Manager (autoConnect on): the SDK's socket opens at once, says 'connecting' then 'connected', and sends one CONNECT", async () => {
  const server = await startServer();
  const cookie = await server.login();
  let connects = 0;
  server.io.on('connection', () => connects++);
  server.io.of('/other');
  const other = io(`${server.url}/other`, { extraHeaders: { cookie }, transports: ['websocket'] });
  await once(other, 'connect');
  const seen: SessionState[] = [];
  const socket = connectWithSession(server.url, { extraHeaders: { cookie }, multiplex: true, transports: ['websocket'], on: { state: ({ newState }) => seen.push(newState) } });
  try {
    assert.equal(socket.io, other.io, 'one Manager');
    await once(socket, 'connect');
    assert.deepEqual(seen, ['connecting', 'connected']);
    // A second CONNECT would make a second server socket for the same client a moment later.
    await new Promise((resolve) => setTimeout(resolve, 300)); // wall clock: the absence of a second connection
    assert.deepEqual({ connects, sockets: server.io.of('/').sockets.size }, { connects: 1, sockets: 1 });
  } finally {
    socket.disconnect();
    other.disconnect();
    await server.close();
  }
});
