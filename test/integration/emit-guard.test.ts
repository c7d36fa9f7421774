/**
 * The SDK's emit guard against a real server, with Node's socket.io-client: an ack answered by the
 * server's notice (invariant 7) becomes a SessionEmitError on that emit, whichever way the app asked
 * for the ack; what was emitted under a session that ended never reaches the next one (invariant 10);
 * a ticket refresh that finds the page's session changed reconnects at once (issue 15 case 11); a
 * logged-out ticket page from another origin gets the invalid policy, not a fatal refusal (case 12);
 * emits made while a handshake is refused "unavailable" are answered then, never run later (case 9).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectWithSession, type InvalidContext, type UnavailableContext } from '../../src/client/index.js';
import { tickets } from '../../src/client/tickets.js';
import { SessionEmitError } from '../../src/errors.js';
import { CredentialEvents, Events, NOTICE_FIELD, type EmitNotice } from '../../src/protocol.js';
import { io as ioClient, Socket as ClientSocket } from 'socket.io-client';
import { startServer, once, eventually, type TestServer } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';

const fast = { retry: { min: 50, max: 200 }, forceNew: true, transports: ['websocket'] as string[], reconnectionDelay: 50, reconnectionDelayMax: 200 };
const failed: EmitNotice = { code: 'EVENT_FAILED', reason: 'handler-error' };

/** The README's handlers: a visit counter in the session, and who the session is. */
function visits(server: TestServer) {
  server.sio.on('sconnection', (socket) => {
    socket.on('whoami', (ack: (user: unknown) => void) => ack(socket.session.user));
    socket.on('visit', (ack: (n: number) => void) => {
      socket.session.visits = ((socket.session.visits as number | undefined) ?? 0) + 1;
      ack(socket.session.visits as number);
    });
  });
}

test('an ack answered by a notice is a SessionEmitError on that emit: emitWithAck rejects, timeout().emit and a plain callback get it first; other answers pass through', async () => {
  const server = await startServer();
  // The notice as the server sends it (src/protocol.ts): this handler answers with one, as the server does for a failed event.
  server.sio.on('sconnection', (socket) => {
    socket.on('fail', (ack: (a: unknown) => void) => ack({ [NOTICE_FIELD]: failed }));
    socket.on('ok', (ack: (...a: unknown[]) => void) => ack('fine', 2));
  });
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie } });
  await once(socket, 'connect');

  const rejected = await socket.emitWithAck('fail').then(() => assert.fail('resolved'), (err: unknown) => err);
  assert.ok(rejected instanceof SessionEmitError, 'emitWithAck rejects with a SessionEmitError');
  assert.deepEqual([rejected.code, rejected.reason, rejected.event], ['EVENT_FAILED', 'handler-error', 'fail']);
  const timedRejected = await socket.timeout(2000).emitWithAck('fail').catch((err: unknown) => err);
  assert.ok(timedRejected instanceof SessionEmitError, 'timeout().emitWithAck rejects with it too');

  const timed = await new Promise<unknown[]>((resolve) => socket.timeout(2000).emit('fail', (...args: unknown[]) => resolve(args)));
  assert.equal(timed.length, 1);
  assert.ok(timed[0] instanceof SessionEmitError, 'timeout().emit: the error is `err`');
  const plain = await new Promise<unknown[]>((resolve) => socket.emit('fail', (...args: unknown[]) => resolve(args)));
  assert.equal(plain.length, 1);
  assert.ok(plain[0] instanceof SessionEmitError, 'a plain callback gets the error as its only argument');

  assert.equal(await socket.emitWithAck('ok'), 'fine');
  assert.deepEqual(await new Promise((resolve) => socket.timeout(2000).emit('ok', (...args: unknown[]) => resolve(args))), [null, 'fine', 2]);
  assert.deepEqual(await new Promise((resolve) => socket.emit('ok', (...args: unknown[]) => resolve(args))), ['fine', 2]);
  socket.disconnect();
  await server.close();
});

test('with the ackTimeout option every ack is error-first, and a notice is the error', async () => {
  const server = await startServer();
  server.sio.on('sconnection', (socket) => socket.on('fail', (ack: (a: unknown) => void) => ack({ [NOTICE_FIELD]: failed })));
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, ackTimeout: 2000, extraHeaders: { cookie } });
  await once(socket, 'connect');
  const args = await new Promise<unknown[]>((resolve) => socket.emit('fail', (...a: unknown[]) => resolve(a)));
  assert.ok(args[0] instanceof SessionEmitError && args.length === 1);
  await assert.rejects(socket.emitWithAck('fail'), SessionEmitError);
  socket.disconnect();
  await server.close();
});

/**
 * A server counting visits, ann logged in (a cookie jar the test changes) and connected with the SDK;
 * `toldInvalid()`: the SDK handed the app an invalid context; `retry()`: its reconnect.
 */
async function annConnected() {
  const server = await startServer();
  visits(server);
  const headers = { cookie: await server.login({ user: 'ann' }) };
  let reconnect: (() => void) | undefined;
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: headers, onInvalid: (ctx) => (reconnect = ctx.reconnect) });
  await once(socket, 'connect');
  return { server, headers, socket, toldInvalid: () => reconnect !== undefined, retry: () => reconnect!() };
}

test('README scenario: ann logs out, 3 visits while logged out, bob logs in: the 3 fail with session-ended and bob counts from nothing', async () => {
  const { server, headers, socket, retry } = await annConnected();
  assert.equal(await socket.emitWithAck('visit'), 1);
  const ann = headers.cookie;
  await server.logout(ann);
  await eventually(() => socket.sessions.state === 'invalid');
  const answers = await Promise.all([1, 2, 3].map(() => new Promise<unknown[]>((resolve) => socket.emit('visit', (...a: unknown[]) => resolve(a)))));
  for (const [err] of answers) assert.ok(err instanceof SessionEmitError && err.reason === 'session-ended' && err.code === 'SESSION_INVALID', String(err));
  headers.cookie = await server.login({ user: 'bob' });
  retry();
  await once(socket, 'connect');
  assert.equal(await socket.emitWithAck('whoami'), 'bob');
  await server.sio.flush();
  assert.equal((await server.httpSession(headers.cookie)).visits, undefined, "none of the 3 reached bob's session");
  assert.equal(await socket.emitWithAck('visit'), 1);
  socket.disconnect();
  await server.close();
});

test("emits buffered while the transport was down are dropped when the reconnect finds the session ended; they fail with session-ended and never reach the next session", async () => {
  const { server, headers, socket, toldInvalid, retry } = await annConnected();
  // The network goes away (socket.io-client's reconnection held off until the logout is done).
  socket.io.reconnection(false);
  socket.io.engine.close();
  await eventually(() => !socket.connected);
  // Many (an offline page that kept emitting): each is answered once, the whole list failed at once.
  const BUFFERED = 2000;
  const answered: unknown[][] = [];
  const answers = new Array<number>(BUFFERED).fill(0);
  for (let i = 0; i < BUFFERED; i++) socket.emit('visit', (...a: unknown[]) => (answers[i]!++, answered.push(a)));
  socket.emit('visit'); // without an ack: dropped as well
  assert.equal(socket.sendBuffer.length, BUFFERED + 1, 'socket.io-client buffered them');
  await server.logout(headers.cookie);
  socket.io.reconnection(true);
  socket.connect();
  await eventually(() => answered.length === BUFFERED);
  for (const [err] of answered) assert.ok(err instanceof SessionEmitError && err.reason === 'session-ended', String(err));
  assert.equal(socket.sendBuffer.length, 0);
  headers.cookie = await server.login({ user: 'bob' });
  await eventually(toldInvalid);
  retry();
  await once(socket, 'connect');
  assert.equal(await socket.emitWithAck('whoami'), 'bob');
  await server.sio.flush();
  assert.equal((await server.httpSession(headers.cookie)).visits, undefined, "nothing of ann's reached bob's session");
  assert.deepEqual(new Set(answers), new Set([1]), 'every buffered emit answered exactly once');
  socket.disconnect();
  await server.close();
});

test('an acked emit still waiting for its answer when the session ends fails with session-ended, once', async () => {
  const server = await startServer();
  const cookie = await server.login();
  let answer: ((v: string) => void) | undefined;
  server.sio.on('sconnection', (socket) => socket.on('slow', (ack: (v: string) => void) => (answer = ack)));
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, onInvalid: 'none' });
  await once(socket, 'connect');
  const calls: unknown[][] = [];
  socket.emit('slow', (...a: unknown[]) => calls.push(a));
  await eventually(() => answer);
  await server.logout(cookie);
  await eventually(() => calls.length === 1);
  assert.ok(calls[0]![0] instanceof SessionEmitError && (calls[0]![0] as SessionEmitError).reason === 'session-ended');
  answer!('late'); // the ended session's late answer is not delivered: an emit is answered once
  await eventually(() => socket.sessions.state === 'invalid');
  assert.equal(calls.length, 1);
  socket.disconnect();
  await server.close();
});

test('emits made while the store hangs during the handshake fail SESSION_UNAVAILABLE with the refusal, never run later; emits made after it wait for the next attempt', { timeout: 15_000 }, async () => {
  const store = new FaultyStore();
  const server = await startServer({ store, storeTimeout: 200 });
  server.sio.on('serror', () => {}); // the refusals, expected
  let ran = 0;
  server.sio.on('sconnection', (socket) => socket.on('inc', (ack: (n: number) => void) => ack(++ran)));
  const cookie = await server.login();
  store.fault = { op: 'get', kind: 'hang' }; // the handshake's read never answers (a frozen Redis)
  const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, onInvalid: 'none' });
  const refused = new Promise<UnavailableContext>((resolve) => socket.sessions.once('unavailable', resolve));
  // Made while the handshake is under way, so socket.io-client buffers them; the last one asks for no ack.
  const answers = Promise.all([
    new Promise<unknown[]>((resolve) => socket.emit('inc', (...a: unknown[]) => resolve(a))),
    new Promise<unknown[]>((resolve) => socket.timeout(5000).emit('inc', (...a: unknown[]) => resolve(a))),
    socket.emitWithAck('inc').then((v: unknown) => [v], (err: unknown) => [err]),
  ]);
  socket.emit('inc');
  assert.equal(socket.sendBuffer.length, 4, 'socket.io-client buffered them');
  const ctx = await refused;
  assert.equal(socket.sendBuffer.length, 0, 'the refusal dropped what was buffered');
  for (const args of await answers) {
    const [err] = args as [SessionEmitError];
    assert.ok(err instanceof SessionEmitError && args.length === 1, String(err));
    assert.deepEqual([err.code, err.reason, err.event], ['SESSION_UNAVAILABLE', ctx.reason, 'inc']);
    const { retryAfter } = err.notice;
    assert.ok(typeof retryAfter === 'number' && retryAfter <= ctx.retryIn!, `the refusal's retryAfter (${retryAfter}), which the retry waits out (${ctx.retryIn} ms)`);
  }
  assert.equal(ctx.reason, 'store-timeout');
  assert.equal(store.fault?.kind, 'hang', 'answered while the store still hangs, not when it comes back');
  const later = socket.emitWithAck('inc'); // made after the refusal: waits for the next attempt
  store.fault = undefined;
  assert.equal(await later, 1, 'the emit made after the refusal ran, alone');
  await server.sio.flush();
  assert.equal(ran, 1, 'none of the refused emits ran when the store came back');
  socket.disconnect();
  await server.close();
});

/** Every event the SDK (core and tickets) listens to on a socket and on its manager (docs/architecture.md, the client's paths). */
const SOCKET_EVENTS = ['connect', 'connect_error', 'disconnect', ...Object.values(Events), ...Object.values(CredentialEvents)];
const MANAGER_EVENTS = ['open', 'ping', 'reconnect_attempt', 'reconnect', 'close', 'error', 'packet'];

/** How many listeners each of those events has, on the socket and on its manager (socket.io-client's public `listeners()`). */
function listenerCounts(socket: ClientSocket) {
  const count = (target: { listeners(event: string): unknown[] }, events: string[]) => Object.fromEntries(events.map((e) => [e, target.listeners(e).length]));
  return { socket: count(socket, SOCKET_EVENTS), manager: count(socket.io as never, MANAGER_EVENTS) };
}

test("dispose() leaves the socket as socket.io-client made it: the prototype's emit, timeout and disconnect, the listeners of a plain socket, and no SDK reaction (cookie and tickets)", async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  // The reference: a plain socket.io-client socket, connected, with no listener of the app.
  const plain = ioClient(server.url, { forceNew: true, transports: ['websocket'], extraHeaders: { cookie } });
  t.after(() => plain.disconnect());
  await once(plain, 'connect');
  for (const credential of [undefined, tickets({ source: async () => server.ticket(cookie) })]) {
    const socket = connectWithSession(server.url, { ...fast, extraHeaders: { cookie }, credential });
    t.after(() => socket.disconnect());
    await once(socket, 'connect');
    const own = Object.keys(socket).filter((k) => ['emit', 'timeout', 'disconnect'].includes(k));
    assert.deepEqual(own.sort(), ['disconnect', 'emit', 'timeout'], 'the SDK wraps these three while it runs');
    assert.notDeepEqual(listenerCounts(socket), listenerCounts(plain), 'the SDK listens while it runs');
    socket.sessions.dispose();
    for (const name of own) assert.equal((socket as unknown as Record<string, unknown>)[name], (ClientSocket.prototype as unknown as Record<string, unknown>)[name], `${name} is socket.io-client's again`);
    assert.deepEqual(listenerCounts(socket), listenerCounts(plain), `no listener of the SDK is left (${credential ? 'tickets' : 'cookie'})`);
    // Nothing of the SDK reacts any more: the server-side disconnect of a logout stays a disconnect, as in plain socket.io-client.
    const states: unknown[] = [];
    socket.sessions.on('state', (change) => states.push(change));
    const gone = once(socket, 'disconnect');
    for (const s of server.io.of('/').sockets.values()) if (s.id === socket.id) s.disconnect(true);
    assert.equal((await gone)[0], 'io server disconnect');
    assert.equal(socket.active, false, 'no reconnection of the SDK is under way');
    assert.deepEqual(states, [], 'the disposed SDK tells nothing');
  }
});

test('dispose() cancels a pending retry: the timer of its backoff is cleared', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  const socket = connectWithSession(server.url, { ...fast, retry: { min: 60_000, max: 60_000 }, extraHeaders: { cookie } });
  t.after(() => socket.disconnect());
  await once(socket, 'connect');
  const gone = once(socket, 'disconnect');
  for (const s of server.io.of('/').sockets.values()) s.disconnect(true);
  await gone;
  assert.equal(socket.sessions.state, 'connecting', 'after a server-side disconnect the SDK waits out its backoff (30-60 s here)');
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const pending = timers();
  socket.sessions.dispose();
  assert.equal(timers(), pending - 1, 'the retry timer went with dispose()');
});

test("ticket refresh answered ticket-session-mismatch (the page's session changed): the SDK reconnects at once with the new ticket, no invalid", async () => {
  const server = await startServer({ ticketTtl: 2000 });
  visits(server);
  let cookie = await server.login({ user: 'ann' });
  const socket = connectWithSession(server.url, {
    ...fast,
    credential: tickets({ source: async () => server.ticket(cookie) }),
  });
  const invalid: InvalidContext[] = [];
  socket.sessions.on('invalid', (ctx) => invalid.push(ctx));
  await once(socket, 'connect');
  assert.equal(await socket.emitWithAck('whoami'), 'ann');
  cookie = await server.login({ user: 'bob' }); // another session for the page (ann's stays valid)
  const started = Date.now();
  await once(socket, 'connect', 4000); // the refresh runs 1.5 s in; the old ticket would last until 2 s + 2 s grace
  const took = Date.now() - started;
  assert.equal(await socket.emitWithAck('whoami'), 'bob');
  assert.deepEqual(invalid, [], 'no invalid: the SDK moved to the new session by itself');
  assert.ok(took < 3000, `reconnected ${took} ms after the login`);
  socket.disconnect();
  await server.close();
});

test('a logged-out ticket page of another origin (docs/tickets.md set-up) gets the invalid policy (no-session-id), not ORIGIN_NOT_ALLOWED, and connects after a login', async () => {
  // The page and its token endpoint on one server, the Socket.IO server on another (default origins: its own only).
  const page = await startServer();
  const rt = await startServer({ store: page.store });
  let cookie: string | undefined;
  const fatal: unknown[] = [];
  const contexts: InvalidContext[] = [];
  const socket = connectWithSession(rt.url, {
    ...fast,
    extraHeaders: { origin: page.url },
    credential: tickets({
      // A same-origin fetch of the page's token endpoint (no Origin header): 401 without a session.
      source: async () => {
        const res = await page.tokenResponse(cookie);
        if (res.status === 401) throw Object.assign(new Error('no session'), { code: 'SESSION_INVALID' });
        return res.json();
      },
    }),
    onInvalid: (ctx) => contexts.push(ctx),
    on: { fatal: (err) => fatal.push(err) },
  });
  await eventually(() => contexts.length === 1 || fatal.length === 1);
  assert.deepEqual(fatal, [], 'not refused as ORIGIN_NOT_ALLOWED');
  assert.equal(contexts[0]!.reason, 'no-session-id');
  assert.equal(socket.sessions.state, 'invalid');
  cookie = await page.login({ user: 'ann' });
  contexts[0]!.reconnect();
  await once(socket, 'connect');
  assert.equal(socket.sessions.state, 'connected');
  socket.disconnect();
  await rt.close();
  await page.close();
});
