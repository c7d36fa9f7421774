// The Origin check compares scheme, host and port: a page served over https is another origin
// than an http server on the same host and port (and the other way round).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connectClient, connected, refused } from '../helpers/servers.js';

for (const transports of [['websocket'], ['polling']] as const) {
  test(`${transports[0]}: an https Origin for an http server on the same host and port is refused`, async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const cookie = await server.login();
    const https = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: `https://127.0.0.1:${server.port}` } });
    t.after(() => https.close());
    const { data } = await refused(https);
    assert.deepEqual({ code: data?.code, reason: data?.reason }, { code: 'ORIGIN_NOT_ALLOWED', reason: 'origin' });
    const http = connectClient(server.url, cookie, { transports: [...transports], extraHeaders: { origin: `http://127.0.0.1:${server.port}` } });
    t.after(() => http.close());
    await connected(http);
  });
}
