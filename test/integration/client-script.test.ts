// The served browser add-on at /socket.io/socket.io-sessions.js (the seed's path): per-user,
// never cached, and served without getting in the way of socket.io or the app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/servers.js';

/** Status of a GET, with the body read so the connection is free when the server closes. */
async function statusOf(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

test('GET /socket.io/socket.io-sessions.js serves the add-on as uncacheable per-user JavaScript', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  for (const path of ['/socket.io/socket.io-sessions.js', '/socket.io/socket.io-sessions.js?123']) {
    const res = await fetch(server.url + path, { headers: { cookie } });
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type') ?? '', /^application\/javascript/, path);
    assert.equal(res.headers.get('cache-control'), 'private, no-store', path);
    assert.equal(res.headers.get('vary'), 'Cookie', path);
    assert.ok((await res.text()).includes('connectWithSession'), path);
  }
  // Without a cookie too (the page may not have a session yet).
  const anonymous = await fetch(server.url + '/socket.io/socket.io-sessions.js');
  assert.equal(anonymous.status, 200);
  assert.ok((await anonymous.text()).includes('connectWithSession'));
});

test('socket.io\'s own client script and the app\'s routes still work next to the add-on', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const ioScript = await fetch(server.url + '/socket.io/socket.io.js');
  assert.equal(ioScript.status, 200);
  assert.match(ioScript.headers.get('content-type') ?? '', /javascript/);
  const body = await ioScript.text();
  assert.ok(body.length > 1000 && !body.includes('connectWithSession'), 'socket.io serves its own bundle');
  // Engine.io still answers its handshake.
  const handshake = await fetch(server.url + '/socket.io/?EIO=4&transport=polling');
  assert.equal(handshake.status, 200);
  assert.match(await handshake.text(), /"sid"/);
  // The express app still gets its routes.
  const cookie = await server.login({ user: 'webuser' });
  assert.equal((await server.httpSession(cookie)).user, 'webuser');
  assert.equal(await statusOf(server.url + '/no-such-route'), 404);
  // A POST to the add-on's path is not served as the add-on.
  assert.notEqual(await statusOf(server.url + '/socket.io/socket.io-sessions.js', { method: 'POST' }), 200);
});

test('serveClient: false leaves the path to socket.io and the app', async (t) => {
  const server = await startServer({ serveClient: false });
  t.after(() => server.close());
  const res = await fetch(server.url + '/socket.io/socket.io-sessions.js');
  // Engine.io owns /socket.io/ and refuses an unknown request with 400; express would say 404.
  assert.ok([400, 404].includes(res.status), `status ${res.status}`);
  assert.ok(!(await res.text()).includes('connectWithSession'));
  assert.equal(await statusOf(server.url + '/socket.io/socket.io.js'), 200);
});

test('closing the library stops serving the add-on, and socket.io keeps serving its own', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  assert.equal(await statusOf(server.url + '/socket.io/socket.io-sessions.js'), 200);
  server.sio.close();
  const res = await fetch(server.url + '/socket.io/socket.io-sessions.js');
  assert.ok([400, 404].includes(res.status), `status ${res.status}`);
  assert.equal(await statusOf(server.url + '/socket.io/socket.io.js'), 200);
  const cookie = await server.login({ user: 'still-here' });
  assert.equal((await server.httpSession(cookie)).user, 'still-here');
});

test('the served script checks io.connectWithSession\'s options in development, and leaves the check out under NODE_ENV=production', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const script = async () => (await fetch(server.url + '/socket.io/socket.io-sessions.js')).text();
  const CHECK = 'did you mean';
  const previous = process.env.NODE_ENV;
  t.after(() => (previous === undefined ? delete process.env.NODE_ENV : (process.env.NODE_ENV = previous)));
  delete process.env.NODE_ENV;
  const development = await script();
  assert.ok(development.includes(CHECK), 'the check is served without NODE_ENV');
  process.env.NODE_ENV = 'production';
  const production = await script();
  assert.ok(!production.includes(CHECK), 'no check under NODE_ENV=production');
  assert.ok(production.includes('connectWithSession') && production.includes('sio-sessions:refresh'), 'the add-on and its tickets part still are');
  // The same script, with the check between the tickets part and the embedded ticket.
  const embedded = production.slice(production.lastIndexOf('\n(globalThis.'));
  assert.ok(development.startsWith(production.slice(0, -embedded.length)) && development.endsWith(embedded), 'the check is the only difference');
});
