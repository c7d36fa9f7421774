import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connectClient, connected, eventually } from '../helpers/servers.js';

test('a socket sees the HTTP session and its changes reach HTTP', async () => {
  const server = await startServer({ saveDelay: 50 });
  server.sio.on('sconnection', (socket) => {
    socket.on('inc', (ack: (n: number) => void) => {
      socket.session.counter = ((socket.session.counter as number) ?? 0) + 1;
      ack(socket.session.counter as number);
    });
    socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user));
  });
  const cookie = await server.login({ user: 'bob' });
  const client = connectClient(server.url, cookie);
  await connected(client);
  assert.equal(await client.emitWithAck('whoami'), 'bob');
  assert.equal(await client.emitWithAck('inc'), 1);
  await eventually(async () => (await server.httpSession(cookie)).counter === 1);
  client.close();
  await server.close();
});
