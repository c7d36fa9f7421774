// express-session's own Session methods, called from socket handlers, behave as they do over HTTP,
// and none can hurt the server: save() persists, reload() takes in what HTTP wrote (into the same
// object every reference holds), regenerate() ends the session for its sockets without crashing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { randomUUID } from 'node:crypto';
import session from 'express-session';
import { startServer, connectClient, connected, once, eventually } from '../helpers/servers.js';
import { watchProcess } from '../helpers/crashes.js';
import { FaultyStore } from '../helpers/stores.js';

type Ack = (value?: unknown) => void;

test('session.save() and session.reload() from a handler: saved at once; reloads keep the object the handlers hold', async (t) => {
  const server = await startServer({ saveDelay: 60_000 });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket: Socket, session) => {
    socket.on('save', (value: unknown, ack: Ack) => {
      socket.session.note = value;
      socket.session.save((err) => ack(err ? String(err) : 'saved'));
    });
    socket.on('reload', (ack: Ack) => socket.session.reload((err) => ack(err ? String(err) : [session.theme, socket.session === session])));
  });
  const cookie = await server.login({ theme: 'light' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('save', 'hello'), 'saved');
  assert.equal((await server.httpSession(cookie)).note, 'hello', 'in the store at once (saveDelay is a minute)');
  await server.httpWrite(cookie, { theme: 'dark' });
  assert.deepEqual(await client.emitWithAck('reload'), ['dark', true]);
});

test("session.reload() from a handler drops that handler's own changes only: per-message, the acked increments of the events before it in its batch are stored; per-connection, another socket's acked write is saved", async (t) => {
  const server = await startServer({ perMessage: true });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket: Socket) => {
    const session = socket.session as unknown as Record<string, number | string>;
    socket.on('slow', async (ack: Ack) => {
      await new Promise((resolve) => setTimeout(resolve, 50)); // the events after it queue into one batch
      ack('slow');
    });
    socket.on('inc', (ack: Ack) => {
      session.counter = ((session.counter as number) ?? 0) + 1;
      ack(session.counter);
    });
    socket.on('reload', async (ack: Ack) => {
      session.mine = 'dropped by the reload';
      await new Promise<void>((resolve, reject) => socket.session.reload((err) => (err ? reject(err) : resolve())));
      ack([session.counter, session.mine ?? null]);
    });
  });
  const cookie = await server.login({ counter: 0 });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const answers = await Promise.all(['slow', 'inc', 'inc', 'reload', 'inc'].map((event) => client.timeout(3000).emitWithAck(event)));
  // Before: the reload dropped the batch's earlier increments (acked 1 and 2, never stored): counter 1.
  assert.deepEqual(answers, ['slow', 1, 2, [2, null], 3]);
  await server.sio.flush();
  const stored = await server.httpSession(cookie);
  assert.deepEqual([stored.counter, stored.mine], [3, undefined]);

  const pc = await startServer({ saveDelay: 300 });
  t.after(() => pc.close());
  pc.sio.on('sconnection', (socket: Socket) => {
    socket.on('write', (value: string, ack: Ack) => {
      socket.session.note = value;
      ack('written');
    });
    socket.on('reload', (ack: Ack) => socket.session.reload((err) => ack(err ? String(err) : socket.session.note)));
  });
  const pcCookie = await pc.login();
  const a = connectClient(pc.url, pcCookie);
  const b = connectClient(pc.url, pcCookie);
  t.after(() => (a.close(), b.close()));
  await Promise.all([connected(a), connected(b)]);
  assert.equal(await a.emitWithAck('write', 'from A'), 'written');
  assert.equal(await b.emitWithAck('reload'), 'from A', "A's write is not B's to drop");
  await eventually(async () => (await pc.httpSession(pcCookie)).note === 'from A', 3000);
});

test("session.regenerate() from a handler ends the session for its sockets, and the server keeps serving", async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const errors: unknown[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  server.sio.on('sconnection', (socket: Socket) => {
    socket.on('regenerate', (ack: Ack) => socket.session.regenerate((err) => ack(err ? String(err) : 'regenerated')));
    socket.on('who', (ack: Ack) => ack(socket.session.user));
  });
  const cookie = await server.login({ user: 'ria' });
  const a = connectClient(server.url, cookie);
  const b = connectClient(server.url, cookie);
  t.after(() => a.close());
  t.after(() => b.close());
  await Promise.all([connected(a), connected(b)]);
  const told = once<[{ reason: string }]>(b, 'sio-sessions:invalid');
  a.emit('regenerate', () => {});
  assert.equal((await told)[0].reason, 'destroyed');
  await eventually(async () => (await server.httpSession(cookie)).user === undefined);
  const other = await server.login({ user: 'other' });
  const c = connectClient(server.url, other);
  t.after(() => c.close());
  await connected(c);
  assert.equal(await c.emitWithAck('who'), 'other');
  assert.deepEqual(errors, []);
});

for (const perMessage of [false, true]) {
  test(`${perMessage ? 'per-message' : 'per-connection'}: session.regenerate() with express-session's proxy: true and a genid that reads req.headers ends the session for its sockets without crashing the process`, async (t) => {
    const crashes = watchProcess(t);
    const server = await startServer({ perMessage });
    t.after(() => server.close());
    // express-session configured as many apps behind a proxy are: its generate(req) reads req.headers.
    session({ store: server.store, secret: 'x', proxy: true, resave: false, saveUninitialized: false, genid: (req) => `${req.headers['x-request-id'] ?? ''}${randomUUID()}` });
    server.sio.on('sconnection', (socket: Socket) => {
      socket.on('regenerate', (ack: Ack) => socket.session.regenerate((err) => ack(err ? String(err) : 'regenerated')));
    });
    const cookie = await server.login({ user: 'ria' });
    const client = connectClient(server.url, cookie);
    t.after(() => client.close());
    await connected(client);
    const told = once<[{ reason: string }]>(client, 'sio-sessions:invalid');
    client.emit('regenerate', () => {});
    // Before: TypeError reading 'x-forwarded-proto' of undefined in express-session's issecure: the process ended.
    assert.equal((await told)[0].reason, 'destroyed');
    assert.equal((await server.httpSession(cookie)).user, undefined);
    assert.deepEqual(crashes, []);
  });
}

test("a store whose destroy throws: socket.session.destroy(cb) is told once, through its callback, and nothing escapes (per-connection: the throw ended the process); the session stays, as after any failed destroy", async (t) => {
  const crashes = watchProcess(t);
  const store = new FaultyStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  const told: string[] = [];
  server.sio.on('sconnection', (socket: Socket) =>
    socket.on('bye', (ack: Ack) =>
      socket.session.destroy((err) => {
        told.push(err ? `error: ${(err as Error).message}` : 'destroyed');
        ack(err ? 'failed' : 'destroyed');
      }),
    ),
  );
  const cookie = await server.login({ user: 'alice' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  store.fault = { op: 'destroy', kind: 'throw' };
  assert.equal(await client.emitWithAck('bye'), 'failed');
  store.fault = undefined;
  assert.equal(told.length, 1, told.join('; '));
  assert.deepEqual(crashes, []);
  assert.equal((await server.httpSession(cookie)).user, 'alice');
});
