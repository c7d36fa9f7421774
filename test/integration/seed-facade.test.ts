// The seed's API keeps working: enable({ socket, store, parser | cutter, per_message }),
// 'sconnection' with (client, session), 'sinvalid' with (client), and 'smessage'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parse as parseCookie } from 'cookie';
import type { Socket } from 'socket.io';
import { enable } from '../../src/server/index.js';
import { startServer, connectClient, connected, once, eventually, sidOf, tinyCookieParser, SECRET } from '../helpers/servers.js';

test('enable({ socket, store, parser, per_message: true }): sconnection, smessage and sinvalid as in the seed', async (t) => {
  const server = await startServer({
    attach: (io, store) => enable({ socket: io, store, parser: tinyCookieParser(SECRET), per_message: true }),
  });
  t.after(() => server.close());
  const connections: Array<{ user: unknown }> = [];
  const messages: unknown[] = [];
  const invalidClients: Socket[] = [];
  server.sio.on('sconnection', (client, session) => {
    connections.push({ user: session.user });
    client.on('smessage', (message: unknown, current: Socket['session']) => {
      messages.push(message);
      current.lastMessage = message;
    });
  });
  server.sio.on('sinvalid', (client) => invalidClients.push(client));
  const cookie = await server.login({ user: 'seeduser' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.deepEqual(connections, [{ user: 'seeduser' }]);
  // The seed's example page: socket.send('ping', function () { logmsg('(msg sent)') }).
  const lastMessage = await new Promise((resolve, reject) => {
    client.send('ping', () => server.httpSession(cookie).then((http) => resolve(http.lastMessage), reject));
  });
  assert.equal(lastMessage, 'ping');
  assert.deepEqual(messages, ['ping']);
  // A client without a session: sinvalid with the client.
  const anonymous = connectClient(server.url);
  t.after(() => anonymous.close());
  const err = await new Promise<any>((resolve) => anonymous.once('connect_error', resolve));
  assert.equal(err.data?.code, 'SESSION_INVALID');
  assert.equal(invalidClients.length, 1);
  assert.equal(typeof invalidClients[0].id, 'string');
});

test('enable({ socket, store, cutter }): per-connection, saved on disconnect', async (t) => {
  // The seed's connectCookieCutter: the cookie value as the browser sent it (signed, so it is unsigned with the secret).
  const cutter = (req: IncomingMessage) => parseCookie(req.headers.cookie ?? '')['connect.sid'];
  const server = await startServer({
    attach: (io, store) => enable({ socket: io, store, cutter, secret: SECRET, saveDelay: 60_000 }),
  });
  t.after(() => server.close());
  let serverSocket: Socket | undefined;
  server.sio.on('sconnection', (client, session) => {
    serverSocket = client;
    client.on('visit', (ack: (n: number) => void) => {
      session.visits = ((session.visits as number | undefined) ?? 0) + 1;
      ack(session.visits as number);
    });
  });
  const cookie = await server.login();
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('visit'), 1);
  assert.equal(await client.emitWithAck('visit'), 2);
  const disconnected = once(serverSocket!, 'disconnect');
  client.close();
  await disconnected;
  await eventually(async () => (await server.httpSession(cookie)).visits === 2, 2000);
});

test('enable({ socket, store, cutter }) with a cutter returning the raw id and no secret', async (t) => {
  const server = await startServer({
    attach: (io, store) => enable({ socket: io, store, cutter: (req) => req.headers['x-sid'] as string | undefined }),
  });
  t.after(() => server.close());
  server.sio.on('sconnection', (client, session) => client.on('whoami', (ack: (u: unknown) => void) => ack(session.user)));
  const cookie = await server.login({ user: 'rawuser' });
  const client = connectClient(server.url, undefined, { extraHeaders: { 'x-sid': sidOf(cookie) } });
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'rawuser');
});
