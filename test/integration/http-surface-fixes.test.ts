/**
 * The HTTP surfaces (served script, token endpoint) and the origin rule, for cases a probe found:
 * a throwing `origins` function, the largest `ticketTtl`, an Origin-less same-origin request behind
 * a TLS-terminating proxy, a store outage while the served script embeds a ticket, several
 * instances closing in any order, `io.attach()` after `sessions()`, and the opaque origin `null`.
 * Real servers and clients on loopback ports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInThisContext } from 'node:vm';
import { MemoryStore } from 'express-session';
import { Server } from 'socket.io';
import { sessions, SessionHandlerError, SessionOptionsError, type SessionServerError } from '../../src/server/index.js';
import { connectWithSession } from '../../src/client/index.js';
import { tickets } from '../../src/client/tickets.js';
import { EMBED_GLOBAL } from '../../src/protocol.js';
import { startServer, connectClient, connected, refused, once, eventually, delay, sidOf, SECRET } from '../helpers/servers.js';
import { TicketSealer } from '../../src/server/tickets.js';

const SCRIPT = '/socket.io/socket.io-sessions.js';

/** A GET with exactly these headers (a Host of our choosing too, as a proxy forwards it). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A POST with exactly these headers. */
function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain;charset=UTF-8' } }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A socket.io connect over engine.io long-polling with exactly these headers: the server's answer to the CONNECT packet (`40...` or `44...`). */
async function pollingConnect(url: string, headers: Record<string, string>, auth: object): Promise<string> {
  const base = `${url}/socket.io/?EIO=4&transport=polling`;
  const open = await get(base, headers);
  const { sid } = JSON.parse(open.body.slice(1)) as { sid: string };
  await post(`${base}&sid=${sid}`, headers, `40${JSON.stringify(auth)}`);
  const answer = (await get(`${base}&sid=${sid}`, headers)).body;
  await post(`${base}&sid=${sid}`, headers, '1'); // engine.io close
  return answer;
}

/** The value of the served script's last statement: its embedded ticket. */
const embeddedOf = (script: string): unknown => JSON.parse(/\.ticket=(.*);\s*$/.exec(script)![1]!);

/** Status of a GET, with the body read so the connection is free when the server closes. */
async function statusOf(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

test('an origins function that throws (Origin: null) counts as not allowed on every surface, reported once each through serror, and the process goes on', async (t) => {
  const server = await startServer({ origins: (origin: string) => new URL(origin).hostname === '127.0.0.1' });
  t.after(() => server.close());
  const errors: SessionServerError[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  const cookie = await server.login({ user: 'nul' });

  // The served script, anonymous and with a session: answered, with no ticket (it used to be an unhandled rejection).
  const anonymous = await get(server.url + SCRIPT, { origin: 'null' });
  assert.equal(anonymous.status, 200);
  assert.equal(embeddedOf(anonymous.body), null);
  const withSession = await get(server.url + SCRIPT, { origin: 'null', cookie });
  assert.equal(embeddedOf(withSession.body), null);
  assert.equal(errors.length, 2);

  // The token endpoint: 403, as for any origin the function refuses.
  const token = await server.tokenResponse(cookie, 'null');
  assert.equal(token.status, 403);
  assert.equal(((await token.json()) as { code: string }).code, 'ORIGIN_NOT_ALLOWED');
  assert.equal(errors.length, 3);

  // A cookie handshake, on both transports: ORIGIN_NOT_ALLOWED with its code (it was "Invalid URL" without one).
  for (const transports of [['websocket'], ['polling']]) {
    const client = connectClient(server.url, cookie, { transports, extraHeaders: { origin: 'null' } });
    t.after(() => client.close());
    const err = await refused(client);
    assert.equal(err.data?.code, 'ORIGIN_NOT_ALLOWED', transports[0]);
  }
  assert.equal(errors.length, 5, 'each throw reported once');
  for (const err of errors) {
    assert.ok(err instanceof SessionHandlerError);
    assert.equal(err.reason, 'handler-error');
    assert.ok((err.cause as Error) instanceof TypeError, 'the cause is what the function threw');
    assert.match(err.message, /"origins" function threw/);
  }

  // Allowed origins still work.
  const allowed = connectClient(server.url, cookie, { extraHeaders: { origin: server.url } });
  t.after(() => allowed.close());
  await connected(allowed);
});

test('the opaque origin "null" is never advised as an origin to allow: the refusal says why instead', async (t) => {
  const warned: string[] = [];
  t.mock.method(console, 'warn', (line: string) => void warned.push(line));
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  const client = connectClient(server.url, cookie, { extraHeaders: { origin: 'null' } });
  t.after(() => client.close());
  const err = await refused(client);
  assert.equal(err.data?.code, 'ORIGIN_NOT_ALLOWED');
  assert.match(err.data?.message, /opaque origin "null"/);
  const line = warned.find((l) => l.includes('"null"'));
  assert.ok(line, 'one server line');
  assert.doesNotMatch(line!, /origins: \[/, 'no "add it to origins" advice');
  assert.match(line!, /sandboxed iframe/);
  // Another origin still gets the advice to list it.
  const other = connectClient(server.url, cookie, { extraHeaders: { origin: 'https://app.example' } });
  t.after(() => other.close());
  await refused(other);
  assert.ok(warned.some((l) => l.includes('origins: ["https://app.example"]')));
});

test('ticketTtl: a value whose socket timer would not fit Node\'s timers is refused at once; the largest allowed keeps ticket sockets connected', async (t) => {
  const io = new Server(); // never attached: the option check throws before anything is set up
  const store = new MemoryStore();
  for (const ticketTtl of [2 ** 31 - 1, 2 ** 31 - 1 - 2000]) {
    assert.throws(() => sessions(io, { store, secret: SECRET, ticketTtl }), (err: Error) => err instanceof SessionOptionsError && /"ticketTtl" must be at most 2147480647/.test(err.message));
  }
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const server = await startServer({ ticketTtl: 2147480647 });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => socket.on('ping', (ack: (v: string) => void) => ack('pong')));
  const cookie = await server.login();
  const { token, expiresIn } = await server.ticket(cookie);
  assert.ok(expiresIn >= 2147480647);
  const client = connectClient(server.url, undefined, { auth: { sessionTicket: token } });
  t.after(() => client.close());
  await connected(client);
  // An overflowing timer fires after 1 ms: a few round trips later the socket would be gone.
  for (let i = 0; i < 5; i++) assert.equal(await client.timeout(2000).emitWithAck('ping'), 'pong');
  await delay(50);
  assert.ok(client.connected, 'still connected');
  assert.ok(!warnings.includes('TimeoutOverflowWarning'), String(warnings));
});

test('behind a TLS-terminating proxy, an Origin-less same-origin request is of the https origin listed in origins: its ticket opens from the https page, and the served script embeds one', async (t) => {
  const PUBLIC = 'https://app.example.test';
  const server = await startServer({ origins: [PUBLIC] });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  const cookie = await server.login({ user: 'tls' });
  // What the proxy forwards: the public Host, the page's cookie, Sec-Fetch-Site of a same-origin GET, no Origin.
  const proxied = { host: 'app.example.test', cookie, 'sec-fetch-site': 'same-origin' };
  const connectAs = (token: string) => {
    const client = connectClient(server.url, undefined, { auth: { sessionTicket: token }, extraHeaders: { origin: PUBLIC } });
    t.after(() => client.close());
    return client;
  };

  const tokenRes = await get(`${server.url}/socket.io-sessions/token`, proxied);
  assert.equal(tokenRes.status, 200);
  const fromEndpoint = connectAs((JSON.parse(tokenRes.body) as { token: string }).token);
  await connected(fromEndpoint);
  assert.equal(await fromEndpoint.emitWithAck('whoami'), 'tls');

  const script = await get(server.url + SCRIPT, proxied);
  const ticket = embeddedOf(script.body) as { token: string } | null;
  assert.ok(ticket, 'the served script embeds a ticket behind the proxy');
  await connected(connectAs(ticket.token));

  // The page's polling requests are same-origin: no Origin, the public Host (socket.io-client in Node cannot set Host: by hand). They open the same ticket.
  const answer = await pollingConnect(server.url, { host: 'app.example.test' }, { sessionTicket: ticket.token });
  assert.match(answer, /^40\{"sid"/, answer); // connected (a refusal is 44{...ticket-audience...})

  // Another host, and a listed origin a Host does not name, stay as before: no ticket for the script.
  assert.equal(embeddedOf((await get(server.url + SCRIPT, { ...proxied, host: 'other.example.test' })).body), null);
});

test('without origins, an Origin-less same-origin request keeps the server\'s own origin (the socket\'s scheme)', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const cookie = await server.login();
  const tokenRes = await get(`${server.url}/socket.io-sessions/token`, { cookie, 'sec-fetch-site': 'same-origin' });
  const { token } = JSON.parse(tokenRes.body) as { token: string };
  const ok = connectClient(server.url, undefined, { auth: { sessionTicket: token }, extraHeaders: { origin: server.url } });
  t.after(() => ok.close());
  await connected(ok);
  const https = connectClient(server.url, undefined, { auth: { sessionTicket: token }, extraHeaders: { origin: `https://127.0.0.1:${server.port}` } });
  t.after(() => https.close());
  assert.equal((await refused(https)).data?.reason, 'ticket-audience');
});

/** A server whose store can go down, and the real served script at /page/socket.io-sessions.js as the logged-in browser would get it. */
async function outageServer(t: { after(fn: () => unknown): void }) {
  class FlakyStore extends MemoryStore {
    down = false;
    override get(sid: string, cb: (err: unknown, s?: any) => void) {
      if (this.down) return cb(new Error('store down')); // an outage, on demand
      super.get(sid, cb);
    }
  }
  const store = new FlakyStore();
  let cookie = '';
  let scriptRequests = 0;
  const server = await startServer({
    store,
    routes(app) {
      // Node's fetch has no cookie jar: the page's cookie and Sec-Fetch-Site are put on the request here.
      app.get('/page/socket.io-sessions.js', (req, res, next) => {
        scriptRequests++;
        req.headers.cookie = cookie;
        req.headers['sec-fetch-site'] = 'same-origin';
        server.sio.clientScriptHandler('/page')(req, res, next);
      });
    },
  });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (u: unknown) => void) => ack(socket.session.user)));
  cookie = await server.login({ user: 'blink' });
  return { server, store, cookie, scriptUrl: `${server.url}/page/socket.io-sessions.js`, requests: () => scriptRequests };
}

/** An SDK socket with this ticket credential: what it reported, and it connected as the user once the store is back. */
async function survivesOutage(t: { after(fn: () => unknown): void }, url: string, store: { down: boolean }, credential: ReturnType<typeof tickets>) {
  const socket = connectWithSession(url, { forceNew: true, transports: ['websocket'], credential });
  t.after(() => socket.disconnect());
  const unavailable: string[] = [];
  const invalid: string[] = [];
  socket.sessions.on('unavailable', (ctx) => {
    unavailable.push(ctx.phase ?? '');
    if (unavailable.length === 2) store.down = false;
  });
  socket.sessions.on('invalid', (ctx) => invalid.push(ctx.reason));
  await once(socket, 'connect', 5000);
  assert.deepEqual(invalid, [], 'never taken for "no session"');
  assert.deepEqual(unavailable, ['credential', 'credential']);
  assert.equal(await socket.emitWithAck('whoami'), 'blink');
}

test('a store outage: the served script says "unavailable" (not null) and the token endpoint 503; the SDK re-requesting the script retries with backoff, never invalid', async (t) => {
  const { server, store, scriptUrl, requests, cookie } = await outageServer(t);
  store.down = true;
  const script = await (await fetch(scriptUrl)).text();
  assert.equal(embeddedOf(script), 'unavailable');
  assert.equal((await server.tokenResponse(cookie)).status, 503, 'the token endpoint says the same');
  // No session at all is still null, outage or not.
  const anonymous = await get(server.url + SCRIPT, { 'sec-fetch-site': 'same-origin' });
  assert.equal(embeddedOf(anonymous.body), null);

  const before = requests();
  await survivesOutage(t, server.url, store, tickets({ source: 'embedded', scriptUrl, retry: { min: 20, max: 40 } }));
  assert.equal(requests() - before, 3, 'two refused re-requests, then the ticket');
});

test('a store outage while the page loads: the embedded "unavailable" makes the SDK fetch a ticket with backoff (not fall back to the cookie, not invalid)', async (t) => {
  const { server, store, scriptUrl } = await outageServer(t);
  store.down = true;
  const script = await (await fetch(scriptUrl)).text();
  // The served script's last statement, run as the page runs it.
  const g = globalThis as Record<string, unknown>;
  t.after(() => delete g[EMBED_GLOBAL]);
  runInThisContext(script.slice(script.lastIndexOf('\n(globalThis.')));
  assert.equal((g[EMBED_GLOBAL] as { ticket: unknown }).ticket, 'unavailable');
  const credential = tickets({ scriptUrl, retry: { min: 20, max: 40 } });
  delete g[EMBED_GLOBAL];
  await survivesOutage(t, server.url, store, credential);
});

test('two instances on one Socket.IO server (two namespaces): the served script is given back once both closed, in either order', async (t) => {
  const store = new MemoryStore();
  for (const order of [['a', 'b'], ['b', 'a']] as const) {
    const http = createServer((_req, res) => void res.writeHead(404).end('app'));
    const io = new Server(http);
    t.after(() => io.close());
    const original = http.listeners('request');
    const instances = { a: sessions(io.of('/a'), { store, secret: 'sa' }), b: sessions(io.of('/b'), { store, secret: 'sb' }) };
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}${SCRIPT}`;
    assert.equal(await statusOf(url), 200);
    instances[order[0]].close();
    assert.equal(await statusOf(url), 200, `${order[0]} closed, ${order[1]} still serves it`);
    instances[order[1]].close();
    assert.notEqual(await statusOf(url), 200, `${order.join(', ')} closed`);
    assert.deepEqual(http.listeners('request'), original, 'the server\'s own listeners are back');
    assert.equal(await statusOf(url.replace('socket.io-sessions.js', 'socket.io.js')), 200);
  }
});

test('sessions() before io.attach() or io.listen(): the add-on is served once the Socket.IO server has its HTTP server, and attach is given back', async (t) => {
  const store = new MemoryStore();
  {
    const io = new Server();
    const sio = sessions(io, { store, secret: SECRET });
    const http = createServer();
    io.attach(http);
    assert.ok(!Object.hasOwn(io, 'attach'), 'attach is the prototype\'s again');
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    t.after(() => io.close());
    assert.equal(await statusOf(url + SCRIPT), 200);
    sio.close();
    assert.notEqual(await statusOf(url + SCRIPT), 200, 'given back at close');
    assert.equal(await statusOf(url + '/socket.io/socket.io.js'), 200);
  }
  {
    const io = new Server();
    const sio = sessions(io, { store, secret: SECRET });
    t.after(() => sio.close());
    io.listen(0);
    t.after(() => io.close());
    const port = await eventually(() => (io.httpServer.address() as AddressInfo | null)?.port);
    assert.equal(await statusOf(`http://127.0.0.1:${port}${SCRIPT}`), 200);
  }
  {
    // Closed before the attach: nothing is served and attach is left as it was.
    const io = new Server();
    sessions(io, { store, secret: SECRET }).close();
    assert.ok(!Object.hasOwn(io, 'attach'));
    const http = createServer();
    io.attach(http);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    t.after(() => io.close());
    assert.notEqual(await statusOf(`http://127.0.0.1:${(http.address() as AddressInfo).port}${SCRIPT}`), 200);
  }
});

test('an async origins function counts as not allowed and is reported: its rejection never reaches the process (one anonymous request with Origin: null ended it)', async (t) => {
  // (As JavaScript lets an app pass it; the type says boolean.)
  const asyncCheck = async (origin: string) => new URL(origin).hostname === '127.0.0.1';
  const server = await startServer({ origins: asyncCheck as unknown as (origin: string) => boolean });
  t.after(() => server.close());
  const errors: SessionServerError[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const script = await get(server.url + SCRIPT, { origin: 'null' });
  assert.equal(script.status, 200);
  assert.equal(embeddedOf(script.body), null);
  await eventually(() => errors.length === 2); // "returned a promise", then the rejection itself
  assert.ok(errors.every((err) => err instanceof SessionHandlerError));
  assert.deepEqual(unhandled, []);
});

test('two Socket.IO servers on one HTTP server, each with its sessions(): each serves the add-on at its own path (the second engine.io took our listener behind its own)', async (t) => {
  const http = createServer();
  const store = new MemoryStore();
  const io1 = new Server(http);
  const first = sessions(io1, { store, secret: SECRET });
  const io2 = new Server(http, { path: '/two' });
  const second = sessions(io2, { store, secret: SECRET });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => (first.close(), second.close(), io2.close(), io1.close(() => resolve()))));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  assert.equal(await statusOf(`${url}/socket.io/socket.io-sessions.js`), 200);
  // Before: 400 from the second engine.io ("Transport unknown").
  assert.equal(await statusOf(`${url}/two/socket.io-sessions.js`), 200);
  second.close();
  assert.equal(await statusOf(`${url}/two/socket.io-sessions.js`), 400);
  assert.equal(await statusOf(`${url}/socket.io/socket.io-sessions.js`), 200);
});

test('a ticket that lives longer than a Node timer can wait (sealed elsewhere with the same secret, 30 days) keeps its socket connected', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const invalid: string[] = [];
  server.sio.on('sinvalid', (_socket, reason) => invalid.push(reason));
  const cookie = await server.login({ user: 'long' });
  const { token } = new TicketSealer([SECRET], 30 * 86_400_000).seal(sidOf(cookie), server.url, Date.now());
  const client = connectClient(server.url, undefined, { auth: { sessionTicket: token }, extraHeaders: { origin: server.url } });
  t.after(() => client.close());
  await connected(client);
  // Before: its expiry timer overflowed Node's and fired at once: told ticket-expired and disconnected.
  await new Promise((resolve) => setTimeout(resolve, 50)); // (the overflowed timer fired after 1 ms)
  assert.deepEqual([client.connected, invalid], [true, []]);
});
