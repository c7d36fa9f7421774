// The `session` an smessage handler receives is the server's, never something a client sent:
// a client that emits an event named 'smessage' itself (with its own "session" object) reaches no
// smessage listener, in either mode; `send(msg, cb)` does, with `socket.session`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, sidOf } from '../helpers/servers.js';
import { NOTICE_FIELD } from '../../src/protocol.js';

interface Call {
  message: unknown;
  /** The session argument was the socket's own session object. */
  isServerSession: boolean;
  user: unknown;
  role: unknown;
}

async function smessageServer(t: { after(fn: () => unknown): void }, perMessage: boolean, onSmessage?: (socket: Socket, message: unknown, session: Socket['session']) => void | Promise<void>) {
  const store = new FaultyStore();
  const server = await startServer({ store, perMessage, saveDelay: 0 });
  t.after(() => server.close());
  const calls: Call[] = [];
  server.sio.on('sconnection', (socket) => {
    socket.on('smessage', async (message: unknown, session: Socket['session']) => {
      const s = session as unknown as Record<string, unknown> | undefined;
      calls.push({ message, isServerSession: session === socket.session, user: s?.user, role: s?.role });
      await onSmessage?.(socket, message, session);
    });
    // Answered after everything the client sent before it (one connection, in order).
    socket.on('sync', (ack: () => void) => ack());
  });
  const cookie = await server.login({ user: 'alice' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return { server, store, cookie, client, calls };
}

for (const perMessage of [false, true]) {
  const mode = perMessage ? 'per-message' : 'per-connection';

  test(`${mode}: a client emitting 'smessage' with its own "session" ({ role: 'admin' }) reaches no smessage listener`, async (t) => {
    const { client, calls } = await smessageServer(t, perMessage);
    client.emit('smessage', 'spoofed', { role: 'admin', user: 'mallory' });
    const answer = client.timeout(3000).emitWithAck('smessage', 'spoofed with ack', { role: 'admin' });
    // Never delivered, yet answered (invariant 7): before, this emit was never answered.
    assert.deepEqual(await answer, { [NOTICE_FIELD]: { code: 'EVENT_FAILED', reason: 'event-refused' } });
    await client.timeout(3000).emitWithAck('sync');
    // Per-message: listeners run as queued units; a send() goes through the same queue, after them.
    if (perMessage) await new Promise<void>((resolve) => client.send('marker', () => resolve()));
    const spoofed = calls.filter((c) => c.message !== 'marker');
    assert.deepEqual(spoofed, [], `smessage listeners ran for the client's own event: ${JSON.stringify(spoofed)}`);
    assert.ok(calls.every((c) => c.isServerSession && c.role === undefined), JSON.stringify(calls));
  });

  test(`${mode}: once the app removed its smessage listeners, send(msg, cb) is its message listeners' alone: cb gets their ack`, async (t) => {
    const { server, client, calls } = await smessageServer(t, perMessage);
    await new Promise<void>((resolve) => client.send('first', () => resolve()));
    assert.equal(calls.length, 1);
    for (const socket of server.io.of('/').sockets.values()) {
      socket.removeAllListeners('smessage');
      socket.on('message', (_message: unknown, ack: (reply: string) => void) => ack('mine'));
    }
    const reply = await new Promise<unknown[]>((resolve) => client.send('second', (...args: unknown[]) => resolve(args)));
    assert.deepEqual(reply, ['mine'], 'the app\'s own ack, not an empty one of the library');
    assert.equal(calls.length, 1, 'no smessage listener ran');
  });

  test(`${mode}: send(msg, cb) reaches smessage with the server's session (socket.session, the user set at login)`, async (t) => {
    const { client, calls } = await smessageServer(t, perMessage);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('send callback never fired')), 3000);
      client.send('hello', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.deepEqual(calls, [{ message: 'hello', isServerSession: true, user: 'alice', role: undefined }]);
  });

  test(`${mode}: an smessage listener that throws (synchronously) is reported through serror; the process and the socket keep working`, async (t) => {
    const { server, client } = await smessageServer(t, perMessage);
    const reported: string[] = [];
    server.sio.on('serror', (error) => reported.push(error.message));
    server.sio.on('sconnection', (socket) => socket.on('smessage', (message: unknown) => {
      if (message === 'boom') throw new Error('boom');
    }));
    // (A new connection, so the throwing listener is registered on its socket.)
    client.disconnect().connect();
    await connected(client);
    const answer = await new Promise<unknown>((resolve) => {
      client.send('boom', (arg: unknown) => resolve(arg));
      // Per-connection: a failed smessage is not acknowledged; `sync` answers after it ran.
      if (!perMessage) void client.timeout(3000).emitWithAck('sync').then(() => resolve('no ack'));
    });
    assert.deepEqual(answer, perMessage ? { 'sio-sessions:notice': { code: 'EVENT_FAILED', reason: 'handler-error' } } : 'no ack');
    assert.ok(reported.some((m) => /boom/.test(m)), `reported: ${JSON.stringify(reported)}`);
    assert.equal(await client.timeout(3000).emitWithAck('sync'), undefined, 'the socket still works');
  });
}

test('per-message: smessage sees an HTTP write made just before, and its own change is in the store before the send callback fires', async (t) => {
  const { server, store, cookie, client } = await smessageServer(t, true, (_socket, _message, session) => {
    session.echo = `seen ${String(session.fromHttp)}`;
  });
  const sid = sidOf(cookie);
  await server.httpWrite(cookie, { fromHttp: 'http-1' });
  const inStoreAtCallback = await new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('send callback never fired')), 3000);
    client.send('go', () => {
      clearTimeout(timer);
      resolve((store.peek(sid) as Record<string, unknown> | undefined)?.echo);
    });
  });
  assert.equal(inStoreAtCallback, 'seen http-1');
});
