// A store record that is not a session (not an object, no `cookie` object, or a cookie express-session's
// Cookie refuses: another program's write, a bad migration) is SESSION_INVALID with reason 'corrupt': refused at the handshake with
// `sinvalid` and `serror`; mid-connection (the next per-message event, a per-connection save, a
// revalidation) the client gets `sio-sessions:invalid` { reason: 'corrupt' } and a server
// disconnect. The library never destroys the record itself, and the server keeps serving others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket as ClientSocket } from 'socket.io-client';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, refused, eventually, sidOf, type TestServerOptions } from '../helpers/servers.js';

const CORRUPT = { code: 'SESSION_INVALID', reason: 'corrupt' };
const GARBAGE: Array<[string, unknown]> = [
  ['a string', 'a string'],
  ['a number', 42],
  ['an object without a cookie', { user: 'x' }],
  // (express-session's Cookie throws on it: its Session cannot be made from the record.)
  ['an object whose cookie express-session refuses (maxAge "abc")', { user: 'x', cookie: { maxAge: 'abc', path: '/', httpOnly: true } }],
];

async function corruptServer(t: { after(fn: () => unknown): void }, options: TestServerOptions = {}) {
  const store = new FaultyStore();
  const server = await startServer({ store, ...options });
  t.after(() => server.close());
  const sinvalid: string[] = [];
  const serror: Array<{ code?: unknown; reason?: unknown; message?: unknown }> = [];
  server.sio.on('sinvalid', (_socket, reason) => sinvalid.push(reason));
  server.sio.on('serror', (err) => {
    const e = err as { code?: unknown; reason?: unknown; message?: unknown };
    serror.push({ code: e?.code, reason: e?.reason, message: e?.message });
  });
  server.sio.on('sconnection', (socket) => {
    socket.on('who', (ack: (user: unknown) => void) => ack(socket.session.user));
    socket.on('set', (value: unknown, ack?: () => void) => {
      socket.session.note = value;
      ack?.();
    });
  });
  return { store, server, sinvalid, serror };
}

/** What a connected client hears: the invalid event and the disconnect, in order. */
function listen(client: ClientSocket) {
  const heard: Array<[string, unknown]> = [];
  client.on('sio-sessions:invalid', (data: unknown) => heard.push(['invalid', data]));
  client.on('sio-sessions:unavailable', (data: unknown) => heard.push(['unavailable', data]));
  client.on('disconnect', (reason: unknown) => heard.push(['disconnect', reason]));
  return heard;
}

/** Another user connects and is answered: the server keeps serving. */
async function stillServes(t: { after(fn: () => unknown): void }, server: Awaited<ReturnType<typeof corruptServer>>['server']) {
  const cookie = await server.login({ user: 'bob' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.timeout(2000).emitWithAck('who'), 'bob');
}

const CORRUPT_SEQUENCE = [
  ['invalid', CORRUPT],
  ['disconnect', 'io server disconnect'],
];

for (const [what, value] of GARBAGE) {
  test(`handshake on a record that is ${what}: refused SESSION_INVALID 'corrupt', sinvalid and serror fire, the record stays, others are served`, async (t) => {
    const { store, server, sinvalid, serror } = await corruptServer(t);
    const cookie = await server.login();
    store.putRaw(sidOf(cookie), value);
    const client = connectClient(server.url, cookie);
    t.after(() => client.close());
    const err = await refused(client);
    t.diagnostic(`refused with ${JSON.stringify({ message: err.message, data: err.data })}; sinvalid ${JSON.stringify(sinvalid)}; serror ${JSON.stringify(serror)}`);
    assert.deepEqual(err.data, CORRUPT);
    assert.deepEqual(sinvalid, ['corrupt']);
    assert.ok(serror.some((e) => e.code === 'SESSION_INVALID' && e.reason === 'corrupt'), `serror: ${JSON.stringify(serror)}`);
    assert.deepEqual(store.peek(sidOf(cookie)), value, 'the library does not destroy the record');
    await stillServes(t, server);
  });

  const midConnection: Array<[string, TestServerOptions, (client: ClientSocket) => void]> = [
    ['per-message: the next event', { perMessage: true }, (client) => client.emit('who', () => {})],
    ['per-connection: the next save', { saveDelay: 20 }, (client) => client.emit('set', 'changed')],
    ['per-connection: the next revalidation', { revalidateInterval: 50 }, () => {}],
  ];
  for (const [phase, options, trigger] of midConnection) {
    test(`${phase} on a record that became ${what}: the client hears 'corrupt' and is disconnected, serror fires, the record stays`, async (t) => {
      const { store, server, sinvalid, serror } = await corruptServer(t, options);
      const cookie = await server.login();
      const client = connectClient(server.url, cookie);
      t.after(() => client.close());
      await connected(client);
      const heard = listen(client);
      store.putRaw(sidOf(cookie), value);
      trigger(client);
      await eventually(() => heard.some(([event]) => event === 'disconnect'), 2000).catch(() => undefined);
      t.diagnostic(`heard ${JSON.stringify(heard)}; sinvalid ${JSON.stringify(sinvalid)}; serror ${JSON.stringify(serror)}; record ${JSON.stringify(store.peek(sidOf(cookie)))}`);
      assert.deepEqual(heard, CORRUPT_SEQUENCE);
      assert.deepEqual(sinvalid, ['corrupt']);
      assert.ok(serror.some((e) => e.code === 'SESSION_INVALID' && e.reason === 'corrupt'), `serror: ${JSON.stringify(serror)}`);
      assert.deepEqual(store.peek(sidOf(cookie)), value, 'the library does not destroy (or overwrite) the record');
      await stillServes(t, server);
    });
  }
}
