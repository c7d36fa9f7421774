// express-session's own Session methods, called from socket handlers, behave as they do over HTTP,
// and none can hurt the server: save() persists, reload() takes in what HTTP wrote (into the same
// object every reference holds), regenerate() ends the session for its sockets without crashing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { startServer, connectClient, connected, once, eventually } from '../helpers/servers.js';

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
