// Invalidation: a logout (or regenerate, or a session that disappears from the store) reaches
// every open socket of that session: the client is told why, then disconnected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from 'express-session';
import type { Socket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { Events } from '../../src/protocol.js';
import { startServer, connectClient, connected, once, sidOf, type TestServer } from '../helpers/servers.js';

type Ack = (value?: unknown) => void;

/** What one client hears, in order: the invalid event (with its payload) and the disconnect (with its reason). */
function record(client: ClientSocket): Array<[string, unknown]> {
  const heard: Array<[string, unknown]> = [];
  client.on(Events.INVALID, (data: unknown) => heard.push(['invalid', data]));
  client.on('disconnect', (reason) => heard.push(['disconnect', reason]));
  return heard;
}

/** Every server `sinvalid`, as (socket id, reason). */
function invalids(server: TestServer): Array<[string, string]> {
  const seen: Array<[string, string]> = [];
  server.sio.on('sinvalid', (socket, reason) => seen.push([socket.id, reason]));
  return seen;
}

async function open(server: TestServer, cookie: string, t: { after(fn: () => unknown): void }): Promise<ClientSocket> {
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return client;
}

const INVALID_DESTROYED = { code: 'SESSION_INVALID', reason: 'destroyed' };

test('logout over HTTP tells every socket of that session, then disconnects it; other sessions are untouched', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => socket.on('ping', (ack: Ack) => ack('pong')));
  const seen = invalids(server);
  const cookie = await server.login({ user: 'alice' });
  const otherCookie = await server.login({ user: 'bob' });
  const mine = [await open(server, cookie, t), await open(server, cookie, t), await open(server, cookie, t)];
  const other = await open(server, otherCookie, t);
  const heard = mine.map(record);
  const heardByOther = record(other);
  const myIds = mine.map((c) => c.id!);
  const disconnects = Promise.all(mine.map((c) => once(c, 'disconnect', 1000)));
  const started = Date.now();
  await server.logout(cookie);
  await disconnects;
  assert.ok(Date.now() - started < 1000);
  for (const h of heard) assert.deepEqual(h, [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(
    seen.sort(),
    myIds.map((id) => [id, 'destroyed']).sort(),
  );
  // The other session's socket is still connected and working, and heard nothing.
  assert.equal(await other.emitWithAck('ping'), 'pong');
  assert.equal(other.connected, true);
  assert.deepEqual(heardByOther, []);
  assert.equal(seen.length, 3);
  // And the logged-out cookie cannot come back.
  const again = connectClient(server.url, cookie);
  t.after(() => again.close());
  const err = await new Promise<any>((resolve) => again.once('connect_error', resolve));
  assert.equal(err.data?.code, 'SESSION_INVALID');
});

test('socket.session.destroy() in a handler invalidates every socket of the session', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => {
    socket.on('logout', (ack: Ack) => socket.session.destroy((err) => ack(err ? String(err) : 'ok')));
  });
  const seen = invalids(server);
  const cookie = await server.login();
  const a = await open(server, cookie, t);
  const b = await open(server, cookie, t);
  const heardA = record(a);
  const heardB = record(b);
  const ids = [a.id!, b.id!];
  const bGone = once(b, 'disconnect', 1000);
  a.emit('logout', () => {});
  await Promise.all([once(a, 'disconnect', 1000), bGone]);
  for (const h of [heardA, heardB]) assert.deepEqual(h, [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(seen.sort(), ids.map((id) => [id, 'destroyed']).sort());
  // Gone over HTTP too.
  assert.equal((await server.httpSession(cookie)).user, undefined);
});

test('regenerate() (logging in again over HTTP) invalidates the sockets of the old session only', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: Ack) => ack(socket.session.user)));
  const seen = invalids(server);
  const oldCookie = await server.login({ user: 'alice' });
  const client = await open(server, oldCookie, t);
  const heard = record(client);
  const id = client.id;
  const gone = once(client, 'disconnect', 1000);
  // POST /login with the current cookie: express-session's regenerate destroys the old session.
  const res = await fetch(`${server.url}/login`, {
    method: 'POST',
    headers: { cookie: oldCookie, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'alice2' }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  const newCookie = res.headers.get('set-cookie')!.split(';')[0];
  assert.notEqual(sidOf(newCookie), sidOf(oldCookie));
  await gone;
  assert.deepEqual(heard, [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(seen, [[id, 'destroyed']]);
  // The new session connects.
  const fresh = await open(server, newCookie, t);
  assert.equal(await fresh.emitWithAck('whoami'), 'alice2');
  assert.equal(seen.length, 1);
});

test('revalidation notices a session deleted behind the library\'s back', async (t) => {
  const server = await startServer({ revalidateInterval: 200 });
  t.after(() => server.close());
  let serverSocket: Socket | undefined;
  server.sio.on('sconnection', (socket) => (serverSocket = socket));
  const sinvalid = once<[Socket, string]>(server.sio, 'sinvalid', 1500);
  const cookie = await server.login();
  const client = await open(server, cookie, t);
  const heard = record(client);
  const gone = once(client, 'disconnect', 1500);
  // Another process (or the store's own expiry) removes it: the library's destroy hook does not run.
  const started = Date.now();
  MemoryStore.prototype.destroy.call(server.store as MemoryStore, sidOf(cookie));
  const [socket, reason] = await sinvalid;
  await gone;
  const elapsed = Date.now() - started;
  assert.equal(socket, serverSocket);
  assert.equal(reason, 'not-found');
  assert.ok(elapsed < 700, `noticed after ${elapsed} ms`);
  assert.deepEqual(heard, [['invalid', { code: 'SESSION_INVALID', reason: 'not-found' }], ['disconnect', 'io server disconnect']]);
});

test('store.clear() ends every live session: their sockets are told "destroyed" and disconnected, and a pending socket change does not write them back', async (t) => {
  const server = await startServer({ saveDelay: 60_000 });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => {
    socket.on('set', (value: unknown, ack: Ack) => {
      socket.session.value = value;
      ack();
    });
  });
  const seen = invalids(server);
  const cookies = [await server.login({ user: 'alice' }), await server.login({ user: 'bob' })];
  const clients = [await open(server, cookies[0], t), await open(server, cookies[1], t)];
  const heard = clients.map(record);
  await clients[0].emitWithAck('set', 'pending'); // unsaved for a minute
  const disconnects = Promise.all(clients.map((c) => once(c, 'disconnect', 2000)));
  await new Promise<void>((resolve, reject) => server.store.clear!((err?: unknown) => (err ? reject(err) : resolve())));
  await disconnects;
  for (const h of heard) assert.deepEqual(h, [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(seen.map(([, reason]) => reason), ['destroyed', 'destroyed']);
  await server.sio.flush();
  for (const cookie of cookies) {
    const stored = await new Promise((resolve, reject) => server.store.get(sidOf(cookie), (err, s) => (err ? reject(err) : resolve(s))));
    assert.equal(stored ?? undefined, undefined, 'nothing written back');
  }
});

test('close() while sockets stay connected: they keep their session (socket.session, saves), a logout still reaches them and nothing writes the session back; the store is given back once the last one is gone', async (t) => {
  for (const perMessage of [true, false]) {
    const store = new MemoryStore();
    const server = await startServer({ store, perMessage, saveDelay: 20 });
    t.after(() => server.close());
    server.sio.on('sconnection', (socket, session) =>
      socket.on('inc', (ack: (n: unknown) => void) => {
        session.counter = ((session.counter as number | undefined) ?? 0) + 1;
        ack([session.counter, socket.session?.counter]);
      }),
    );
    const cookie = await server.login({ counter: 0 });
    const client = connectClient(server.url, cookie);
    t.after(() => client.close());
    await connected(client);
    server.sio.close();
    assert.deepEqual(await client.timeout(2000).emitWithAck('inc'), [1, 1], 'socket.session still there after close()');
    assert.notEqual(store.set, MemoryStore.prototype.set, 'the store is still guarded while a socket is connected');
    const told = once<[{ reason: string }]>(client, Events.INVALID, 3000);
    const gone = once(client, 'disconnect', 3000);
    await server.logout(cookie);
    assert.equal((await told)[0].reason, 'destroyed', 'the logout reaches it');
    await gone;
    await server.sio.flush();
    // Before: not told, the next event (or save) wrote the destroyed session back, and HTTP served it again.
    await new Promise<void>((resolve) => store.get(sidOf(cookie), (_err, record) => (assert.equal(record ?? null, null, perMessage ? 'per-message' : 'per-connection'), resolve())));
    assert.equal(store.set, MemoryStore.prototype.set, "the store's own set again, once its last socket is gone");
  }
});
