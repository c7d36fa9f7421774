// The handshake: where the session id comes from, and the three outcomes (session, invalid,
// unavailable) kept apart, against a real socket.io server, socket.io-client and MemoryStore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { MemoryStore, type SessionData } from 'express-session';
import { Server, type Socket } from 'socket.io';
import { sessions, SessionOptionsError, type SessionServer } from '../../src/server/index.js';
import {
  startServer,
  connectClient,
  connected,
  refused,
  once,
  sidOf,
  signedCookie,
  tinyCookieParser,
  SECRET,
  type TestServer,
} from '../helpers/servers.js';

/**
 * A MemoryStore whose get() can be made to fail or to hang. A real store failing (Redis down, a
 * network partition) cannot be produced on demand in a test, so this fault is simulated: set() and
 * destroy() stay real, so HTTP logins keep working.
 */
class FaultyStore extends MemoryStore {
  fault: 'none' | 'error' | 'hang' = 'none';
  override get(sid: string, callback: (err: any, session?: SessionData | null) => void): void {
    if (this.fault === 'error') {
      setImmediate(() => callback(new Error('store is down')));
      return;
    }
    if (this.fault === 'hang') return; // never calls back
    super.get(sid, callback);
  }
}

/** Collects every `sinvalid` of the server. */
function invalids(server: TestServer): Array<{ socket: Socket; reason: string }> {
  const seen: Array<{ socket: Socket; reason: string }> = [];
  server.sio.on('sinvalid', (socket, reason) => seen.push({ socket, reason }));
  return seen;
}

test('a validly signed session cookie connects and socket.session holds the HTTP session data', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const seen: Array<{ user: unknown; plan: unknown; sameObject: boolean }> = [];
  server.sio.on('sconnection', (socket, session) => {
    seen.push({ user: socket.session.user, plan: socket.session.plan, sameObject: socket.session === session });
    socket.on('whoami', (ack: (u: unknown) => void) => ack({ user: socket.session.user, plan: socket.session.plan }));
  });
  const cookie = await server.login({ user: 'carol', plan: { tier: 'pro', seats: 3 } });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.deepEqual(seen, [{ user: 'carol', plan: { tier: 'pro', seats: 3 }, sameObject: true }]);
  assert.deepEqual(await client.emitWithAck('whoami'), { user: 'carol', plan: { tier: 'pro', seats: 3 } });
});

test('no cookie: refused with SESSION_INVALID "no-session-id", and sinvalid fires with (socket, reason)', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const sinvalid = once<[Socket, string]>(server.sio, 'sinvalid');
  const client = connectClient(server.url);
  t.after(() => client.close());
  const err = await refused(client);
  assert.equal(err.data?.code, 'SESSION_INVALID');
  assert.equal(err.data?.reason, 'no-session-id');
  const [socket, reason] = await sinvalid;
  assert.equal(reason, 'no-session-id');
  assert.equal(typeof socket.id, 'string');
  assert.equal(typeof socket.handshake, 'object');
});

test('a session cookie in double quotes (RFC 6265 allows them; express-session reads it without them) connects with its session, as it does over HTTP; a quote at one end only is refused as HTTP refuses it', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const seen = invalids(server);
  const cookie = await server.login({ user: 'alice' });
  const [name, value] = cookie.split('=') as [string, string];
  const quoted = `${name}="${value}"`;
  assert.equal((await server.httpSession(quoted)).user, 'alice', 'express-session takes it');
  const client = connectClient(server.url, quoted);
  t.after(() => client.close());
  await connected(client);
  // Before: cookie 1.x kept the quotes, and the signature check failed ('bad-signature').
  assert.equal(server.io.of('/').sockets.get(client.id!)!.session.user, 'alice');
  const half = connectClient(server.url, `${name}="${value}`);
  t.after(() => half.close());
  const err = await refused(half);
  assert.equal(err.data?.reason, 'bad-signature');
  assert.equal((await server.httpSession(`${name}="${value}`)).user, undefined, 'express-session does not take it either');
  assert.deepEqual(seen.map((s) => s.reason), ['bad-signature']);
});

test('an unsigned cookie (the raw session id) is refused as "bad-signature"', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const seen = invalids(server);
  const cookie = await server.login();
  const client = connectClient(server.url, `connect.sid=${sidOf(cookie)}`);
  t.after(() => client.close());
  const err = await refused(client);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'bad-signature' });
  assert.deepEqual(seen.map((s) => s.reason), ['bad-signature']);
});

test('a cookie with a tampered signature is refused as "bad-signature"', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  const sid = sidOf(cookie);
  const good = signedCookie(sid);
  assert.equal(good, cookie, 'the helper signs as express-session does');
  // Flip one character of the signature (after the last '.').
  const at = good.lastIndexOf('.') + 5;
  const tampered = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
  assert.notEqual(tampered, good);
  const client = connectClient(server.url, tampered);
  t.after(() => client.close());
  const err = await refused(client);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'bad-signature' });
});

test('a cookie signed with another secret is refused as "bad-signature"', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  const client = connectClient(server.url, signedCookie(sidOf(cookie), 'some other secret'));
  t.after(() => client.close());
  const err = await refused(client);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'bad-signature' });
});

test('secret rotation: a cookie signed while the server had only the old secret still connects with ["new", "old"]', async (t) => {
  const server = await startServer({ secret: ['new', 'old'] });
  t.after(() => server.close());
  // A session made before the rotation: stored, and its cookie signed with 'old' only.
  const sid = 'session-from-before-the-rotation';
  await new Promise<void>((resolve, reject) =>
    server.store.set(sid, { cookie: { originalMaxAge: null, path: '/', httpOnly: true }, user: 'olduser' } as unknown as SessionData, (err) => (err ? reject(err) : resolve())),
  );
  const oldCookie = signedCookie(sid, 'old');
  // express-session itself still accepts it (sanity: this is what rotation means over HTTP).
  assert.equal((await server.httpSession(oldCookie)).user, 'olduser');
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  const client = connectClient(server.url, oldCookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'olduser');
  // New logins are signed with the first secret, and connect too.
  const fresh = await server.login({ user: 'newuser' });
  assert.equal(fresh, signedCookie(sidOf(fresh, ['new']), 'new'));
  const client2 = connectClient(server.url, fresh);
  t.after(() => client2.close());
  await connected(client2);
  assert.equal(await client2.emitWithAck('whoami'), 'newuser');
});

test('a validly signed id the store does not know is refused as "not-found"', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const seen = invalids(server);
  const client = connectClient(server.url, signedCookie('no-such-session'));
  t.after(() => client.close());
  const err = await refused(client);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'not-found' });
  assert.deepEqual(seen.map((s) => s.reason), ['not-found']);
});

test('a session whose cookie expiry has passed is refused as SESSION_INVALID', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const seen = invalids(server);
  const sid = 'expired-session';
  const expired = { cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 60_000), path: '/', httpOnly: true }, user: 'ghost' };
  await new Promise<void>((resolve, reject) => server.store.set(sid, expired as unknown as SessionData, (err) => (err ? reject(err) : resolve())));
  const client = connectClient(server.url, signedCookie(sid));
  t.after(() => client.close());
  const err = await refused(client);
  assert.equal(err.data?.code, 'SESSION_INVALID');
  // MemoryStore drops expired sessions itself (→ not-found); a store that keeps them gives 'expired'.
  assert.ok(['expired', 'not-found'].includes(err.data?.reason), `reason ${err.data?.reason}`);
  assert.equal(seen.length, 1);
});

test('the store decides expiry, as express-session does: a session it still returns is used, over HTTP and on the socket', async (t) => {
  // connect-redis extends a session's TTL on touch without rewriting its stored cookie.expires,
  // so a live session can carry a past expiry. MemoryStore drops such rows on get and touch; this
  // subclass stands in for a store that expires keys itself (tested for real in redis.test.ts).
  class TtlStore extends MemoryStore {
    override get(sid: string, callback: (err: any, session?: SessionData | null) => void): void {
      const raw = (this as unknown as { sessions: Record<string, string> }).sessions[sid];
      setImmediate(() => callback(null, raw ? JSON.parse(raw) : null));
    }
    // Like connect-redis: touch extends the key's TTL and leaves the stored record as it is.
    override touch(_sid: string, _session: SessionData, callback?: () => void): void {
      setImmediate(() => callback?.());
    }
  }
  const store = new TtlStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => socket.on('who', (ack: (u: unknown) => void) => ack(socket.session.user)));
  const sid = 'stale-expiry-live-key';
  const stale = { cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 60_000), path: '/', httpOnly: true }, user: 'alive' };
  await new Promise<void>((resolve, reject) => store.set(sid, stale as unknown as SessionData, (err) => (err ? reject(err) : resolve())));
  const cookie = signedCookie(sid);
  assert.equal((await server.httpSession(cookie)).user, 'alive', 'express-session uses it');
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('who'), 'alive');
});

test('a store error is SESSION_UNAVAILABLE (retryable), reported as serror, never sinvalid', async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  const seen = invalids(server);
  const cookie = await server.login();
  store.fault = 'error';
  const serror = once<[unknown, Socket | undefined]>(server.sio, 'serror');
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  const err = await refused(client);
  assert.equal(err.data?.code, 'SESSION_UNAVAILABLE');
  assert.equal(err.data?.reason, 'store-error');
  assert.equal(typeof err.data?.retryAfter, 'number');
  const [error, socket] = await serror;
  assert.ok(error instanceof Error);
  assert.ok(socket, 'serror names the socket');
  assert.deepEqual(seen, [], 'a store failure is not an invalid session');
  // Once the store is back, the same cookie connects.
  store.fault = 'none';
  const client2 = connectClient(server.url, cookie);
  t.after(() => client2.close());
  await connected(client2);
  assert.deepEqual(seen, []);
});

test('a store that never answers is refused with SESSION_UNAVAILABLE "store-timeout" after storeTimeout', async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ store, storeTimeout: 200 });
  t.after(() => server.close());
  server.sio.on('serror', () => {}); // expected; keeps the report off stderr
  const seen = invalids(server);
  const cookie = await server.login();
  store.fault = 'hang';
  const started = Date.now();
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  const err = await refused(client, 2000);
  const elapsed = Date.now() - started;
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_UNAVAILABLE', reason: 'store-timeout' });
  assert.ok(elapsed >= 150 && elapsed < 1000, `refused after ${elapsed} ms`);
  assert.deepEqual(seen, []);
});

test('a custom cookie name is read, and the default name is then ignored', async (t) => {
  const server = await startServer({ name: 'app.sid' });
  t.after(() => server.close());
  const cookie = await server.login({ user: 'dora' });
  assert.ok(cookie.startsWith('app.sid='), cookie);
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'dora');
  const wrongName = connectClient(server.url, cookie.replace('app.sid=', 'connect.sid='));
  t.after(() => wrongName.close());
  const err = await refused(wrongName);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'no-session-id' });
});

test('a cutter that returns the raw session id connects', async (t) => {
  const server = await startServer({ cutter: (req) => req.headers['x-session-id'] as string | undefined });
  t.after(() => server.close());
  const cookie = await server.login({ user: 'erin' });
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  // No cookie at all: the id comes from the cutter only.
  const client = connectClient(server.url, undefined, { extraHeaders: { 'x-session-id': sidOf(cookie) } });
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'erin');
  const unknown = connectClient(server.url, undefined, { extraHeaders: { 'x-session-id': 'nope' } });
  t.after(() => unknown.close());
  const err = await refused(unknown);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'not-found' });
});

test('a seed-style cookie parser middleware connects (no secret given to the library)', async (t) => {
  const server = await startServer({
    attach: (io, store) => sessions(io, { store, parser: tinyCookieParser(SECRET) }),
  });
  t.after(() => server.close());
  const cookie = await server.login({ user: 'fred' });
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'fred');
  // The parser says the signature is bad (signedCookies[name] === false).
  const forged = connectClient(server.url, signedCookie(sidOf(cookie), 'wrong'));
  t.after(() => forged.close());
  const err = await refused(forged);
  assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'SESSION_INVALID', reason: 'bad-signature' });
  // An unsigned cookie holding the raw id (someone who learned it from a store key or a log): express-session ignores it.
  // Before: connected with fred's session.
  const unsigned = connectClient(server.url, `connect.sid=${sidOf(cookie)}`);
  t.after(() => unsigned.close());
  const unsignedErr = await refused(unsigned);
  assert.deepEqual({ code: unsignedErr.data?.code, reason: unsignedErr.data?.reason }, { code: 'SESSION_INVALID', reason: 'bad-signature' });
});

test('bad options throw SessionOptionsError synchronously and leave the server usable', async (t) => {
  let good: SessionServer | undefined;
  const server = await startServer({
    attach: (io, store) => {
      const bad: Array<[string, () => unknown]> = [
        ['no store', () => sessions(io, { secret: SECRET } as never)],
        ['store without createSession', () => sessions(io, { store: { get() {}, set() {}, destroy() {} } as never, secret: SECRET })],
        ['empty secret', () => sessions(io, { store, secret: '' })],
        ['empty secret in a list', () => sessions(io, { store, secret: ['ok', ''] })],
        ['non-function cutter', () => sessions(io, { store, cutter: 'connect.sid' as never })],
        ['negative saveDelay', () => sessions(io, { store, secret: SECRET, saveDelay: -1 })],
        // (Node's timers fire after 1 ms beyond 2^31 - 1 ms: "no timeout" would become an immediate one.)
        ['handlerTimeout over Node\'s timer limit', () => sessions(io, { store, secret: SECRET, handlerTimeout: 2 ** 31 })],
        ['storeTimeout of 30 days', () => sessions(io, { store, secret: SECRET, storeTimeout: 30 * 86_400_000 })],
      ];
      for (const [what, make] of bad) {
        assert.throws(make, (err: unknown) => err instanceof SessionOptionsError && (err as SessionOptionsError).code === 'INVALID_OPTIONS', what);
      }
      good = sessions(io, { store, secret: SECRET });
      return good;
    },
  });
  t.after(() => server.close());
  assert.ok(good);
  // None of the failed calls left a middleware behind: a valid cookie connects, a missing one is refused once.
  const seen = invalids(server);
  const cookie = await server.login();
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const anonymous = connectClient(server.url);
  t.after(() => anonymous.close());
  assert.equal((await refused(anonymous)).data?.reason, 'no-session-id');
  assert.deepEqual(seen.map((s) => s.reason), ['no-session-id']);
  // And a first argument that is not a socket.io server is an options error too.
  assert.throws(() => sessions({} as never, { store: new MemoryStore(), secret: SECRET }), SessionOptionsError);
  // An io without the library (bare Server, no HTTP server) is unaffected by a failed call.
  const bare = new Server(createServer());
  assert.throws(() => sessions(bare, { store: new MemoryStore() }), SessionOptionsError);
  bare.close();
});
