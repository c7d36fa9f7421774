// The app's listeners of the library's own events (`sconnection`, `sinvalid`, `serror`) are the
// app's code, like its handlers: what they throw must not break the library's promises (every emit
// answered once, a logout reaching every socket, the session's queue going on) nor reach socket.io
// or the process. A throw of an `sconnection` or `sinvalid` listener is reported through `serror`
// as a SessionHandlerError; a throw of an `serror` listener goes to console.error (nowhere else to
// go). Real socket.io server and client, express-session's MemoryStore (docs/architecture.md).
import { test, mock, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { SessionHandlerError } from '../../src/errors.js';
import { emit, wire } from '../helpers/acks.js';
import { connectClient, connected, eventually, startServer } from '../helpers/servers.js';
import { watchProcess } from '../helpers/crashes.js';

type Ack = (...args: unknown[]) => void;
type AppSocket = { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown };

/** A per-message server (closed after the test), what escapes to the process meanwhile, and console.error's calls (kept off the output). */
async function setUp(t: TestContext) {
  const escaped = watchProcess(t);
  const server = await startServer({ perMessage: true });
  t.after(() => server.close());
  const logged = mock.method(console, 'error', () => undefined);
  t.after(() => logged.mock.restore());
  return { escaped, server, logged };
}

function incOn(socket: AppSocket): void {
  socket.on('inc', (ack: Ack) => {
    socket.session.counter = ((socket.session.counter as number) ?? 0) + 1;
    ack(socket.session.counter);
  });
}

test('an sconnection listener that throws after setting up its handlers: reported through serror (SessionHandlerError, the throw as cause), the socket is served, nothing escapes', async (t) => {
  const { escaped, server, logged } = await setUp(t);
  const errors: unknown[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  const thrown = new Error('app bug in sconnection');
  server.sio.on('sconnection', (socket) => {
    incOn(socket as unknown as AppSocket);
    throw thrown;
  });
  const cookie = await server.login({ counter: 0 });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const got = [emit(client, 'inc'), emit(client, 'inc')];
  await eventually(() => got.every((a) => a.args !== undefined), 5000);
  assert.deepEqual(got.map((a) => a.args), [[1], [2]], 'its events run and are acked');
  assert.equal((await server.httpSession(cookie)).counter, 2);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof SessionHandlerError);
  assert.equal((errors[0] as SessionHandlerError).reason, 'handler-error');
  assert.match((errors[0] as Error).message, /sconnection listener threw: .*app bug in sconnection/);
  assert.equal((errors[0] as Error).cause, thrown);
  assert.equal(logged.mock.callCount(), 0, 'with an serror listener, nothing goes to console.error');
  assert.deepEqual(escaped, []);
});

test('an sinvalid listener that throws at a logout: every socket of the session is still told and disconnected, the throw is reported once per call, nothing escapes, the server keeps serving', async (t) => {
  const { escaped, server, logged } = await setUp(t);
  const errors: unknown[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  server.sio.on('sconnection', (socket) => incOn(socket as unknown as AppSocket));
  let calls = 0;
  server.sio.on('sinvalid', () => {
    calls++;
    throw new Error('app bug in sinvalid');
  });
  const cookie = await server.login({ counter: 0 });
  const clients = [connectClient(server.url, cookie), connectClient(server.url, cookie), connectClient(server.url, cookie)];
  t.after(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map(connected));
  const told: unknown[] = [];
  for (const c of clients) c.on('sio-sessions:invalid', (payload) => told.push(payload));
  await server.logout(cookie);
  await eventually(() => clients.every((c) => !c.connected), 5000);
  assert.equal(told.length, 3, 'each socket told invalid before the disconnect');
  assert.equal(calls, 3);
  assert.equal(errors.filter((e) => e instanceof SessionHandlerError && /sinvalid listener threw/.test(e.message)).length, 3);
  const other = await server.login({ counter: 5 });
  const next = connectClient(server.url, other);
  t.after(() => next.close());
  await connected(next);
  const answer = emit(next, 'inc');
  await eventually(() => answer.args !== undefined, 5000);
  assert.deepEqual(answer.args, [6], 'the server keeps serving');
  assert.equal(logged.mock.callCount(), 0, 'with an serror listener, nothing goes to console.error');
  assert.deepEqual(escaped, []);
});

test('an serror listener that throws when a handler fails: the emit still gets its handler-error notice, once; the listener\'s throw goes to console.error; the session\'s queue goes on; nothing escapes', async (t) => {
  const { escaped, server, logged } = await setUp(t);
  const listenerBug = new Error('app bug in serror');
  server.sio.on('serror', () => {
    throw listenerBug;
  });
  server.sio.on('sconnection', (socket) => {
    const s = socket as unknown as AppSocket;
    incOn(s);
    s.on('boom', () => {
      s.session.counter = -1;
      throw new Error('handler bug');
    });
  });
  const cookie = await server.login({ counter: 0 });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  const onWire = wire(client);
  await connected(client);
  const got = [emit(client, 'inc'), emit(client, 'boom'), emit(client, 'inc')];
  await eventually(() => got.every((a) => a.args !== undefined), 5000);
  assert.deepEqual(got[0].args, [1]);
  assert.deepEqual(got[1].notice, { code: 'EVENT_FAILED', reason: 'handler-error' });
  assert.deepEqual(got[2].args, [2], 'the failed handler\'s change is undone and the queue goes on');
  assert.equal((await server.httpSession(cookie)).counter, 2);
  assert.deepEqual(onWire.duplicates(), []);
  const lines = logged.mock.calls.map((c) => c.arguments);
  assert.ok(lines.some((args) => (args as unknown[]).includes(listenerBug)), `console.error got the listener's throw: ${lines.length} call(s)`);
  assert.deepEqual(escaped, []);
});

test('async listeners that reject (sconnection, sinvalid, serror) and a throwing listener before another: each rejection is reported like a throw, never an unhandled rejection; the listeners after a failing one still run', async (t) => {
  const { escaped, server, logged } = await setUp(t);
  const reported: unknown[] = [];
  server.sio.on('serror', (err) => void reported.push(err));
  const serrorBug = new Error('async app bug in serror');
  server.sio.on('serror', async () => {
    await Promise.resolve();
    throw serrorBug;
  });
  server.sio.on('sconnection', async (socket) => {
    await Promise.resolve();
    incOn(socket as unknown as AppSocket);
    throw new Error('async app bug in sconnection');
  });
  server.sio.on('sconnection', () => {
    throw new Error('sync app bug in sconnection');
  });
  let after = 0;
  server.sio.on('sconnection', () => void after++); // after a throwing one: still called
  server.sio.on('sinvalid', async () => {
    await Promise.resolve();
    throw new Error('async app bug in sinvalid');
  });
  const cookie = await server.login({ counter: 0 });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  await eventually(() => reported.length >= 2, 5000);
  const answer = emit(client, 'inc');
  await eventually(() => answer.args !== undefined, 5000);
  assert.deepEqual(answer.args, [1], 'the async listener\'s handler serves the socket');
  assert.equal(after, 1, 'the listener after the throwing one ran');
  await server.logout(cookie);
  await eventually(() => !client.connected && reported.length >= 3, 5000);
  const messages = reported.map((e) => (e as Error).message);
  for (const expected of [/listener threw: async app bug in sconnection$/, /listener threw: sync app bug in sconnection$/, /an sinvalid listener threw: async app bug in sinvalid$/]) {
    assert.equal(messages.filter((m) => expected.test(m)).length, 1, `${expected}: ${JSON.stringify(messages)}`);
  }
  assert.ok(reported.every((e) => e instanceof SessionHandlerError));
  await eventually(() => logged.mock.calls.filter((c) => (c.arguments as unknown[]).includes(serrorBug)).length === reported.length, 5000);
  assert.deepEqual(escaped, [], 'no unhandled rejection');
});
