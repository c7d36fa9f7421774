// Cross-Site WebSocket Hijacking defence: a page of another site cannot open a socket with the
// user's cookie, on either transport. The Origin header is sent the way a browser sends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { startServer, connectClient, connected, refused, type TestServer } from '../helpers/servers.js';

const TRANSPORTS = [['websocket'], ['polling']] as const;

function whoami(server: TestServer): void {
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
}

for (const transports of TRANSPORTS) {
  const via = transports[0];

  test(`${via}: a cookie-carrying handshake from another site's Origin is refused with ORIGIN_NOT_ALLOWED`, async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    let sinvalid = 0;
    server.sio.on('sinvalid', () => sinvalid++);
    const cookie = await server.login();
    const client = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: 'http://evil.example' } });
    t.after(() => client.close());
    const err = await refused(client);
    assert.deepEqual({ code: err.data?.code, reason: err.data?.reason }, { code: 'ORIGIN_NOT_ALLOWED', reason: 'origin' });
    assert.match(err.data?.message, /"http:\/\/evil\.example" is not in the server's sessions\(\) "origins" option/);
    assert.equal(sinvalid, 0, 'a foreign origin says nothing about the session');
  });

  test(`${via}: the server's own Origin and a missing Origin both connect`, async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    whoami(server);
    const cookie = await server.login({ user: 'sam' });
    const sameHost = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: `http://127.0.0.1:${server.port}` } });
    t.after(() => sameHost.close());
    await connected(sameHost);
    assert.equal(await sameHost.emitWithAck('whoami'), 'sam');
    const noOrigin = connectClient(server.url, cookie, { transports: [...transports] });
    t.after(() => noOrigin.close());
    await connected(noOrigin);
    assert.equal(await noOrigin.emitWithAck('whoami'), 'sam');
    // Same host name, other port: another origin.
    const otherPort = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: `http://127.0.0.1:${server.port + 1}` } });
    t.after(() => otherPort.close());
    assert.equal((await refused(otherPort)).data?.code, 'ORIGIN_NOT_ALLOWED');
  });
}

test('an origins list allows exactly the listed origins, on both transports', async (t) => {
  const server = await startServer({ origins: ['https://app.example'] });
  t.after(() => server.close());
  whoami(server);
  const cookie = await server.login({ user: 'ann' });
  for (const transports of TRANSPORTS) {
    const allowed = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: 'https://app.example' } });
    t.after(() => allowed.close());
    await connected(allowed);
    assert.equal(await allowed.emitWithAck('whoami'), 'ann');
    for (const origin of ['http://app.example', 'https://evil.example', `http://127.0.0.1:${server.port}`, 'https://app.example.evil.example']) {
      const client = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin } });
      t.after(() => client.close());
      assert.equal((await refused(client)).data?.code, 'ORIGIN_NOT_ALLOWED', `${transports[0]} ${origin}`);
    }
  }
});

test('an origins function decides, and receives the origin and the handshake request', async (t) => {
  const calls: Array<{ origin: string; path: string | undefined }> = [];
  const server = await startServer({
    origins: (origin: string, req: IncomingMessage) => {
      calls.push({ origin, path: req.url?.split('?')[0] });
      return origin.endsWith('.trusted.example');
    },
  });
  t.after(() => server.close());
  whoami(server);
  const cookie = await server.login({ user: 'ben' });
  const allowed = connectClient(server.url, cookie, { extraHeaders: { origin: 'https://a.trusted.example' } });
  t.after(() => allowed.close());
  await connected(allowed);
  assert.equal(await allowed.emitWithAck('whoami'), 'ben');
  const denied = connectClient(server.url, cookie, { extraHeaders: { origin: 'https://untrusted.example' } });
  t.after(() => denied.close());
  assert.equal((await refused(denied)).data?.code, 'ORIGIN_NOT_ALLOWED');
  assert.deepEqual(calls, [
    { origin: 'https://a.trusted.example', path: '/socket.io/' },
    { origin: 'https://untrusted.example', path: '/socket.io/' },
  ]);
});
