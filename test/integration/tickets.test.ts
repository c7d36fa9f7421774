/**
 * Session tickets against a real server: the token endpoint, ticket handshakes (and every way a
 * ticket can be bad), the embedded ticket of the served script, and in-band refresh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from 'express-session';
import { TicketSealer } from '../../src/server/tickets.js';
import { connectWithSession } from '../../src/client/index.js';
import { tickets } from '../../src/client/tickets.js';
import { startServer, connectClient, connected, refused, once, sidOf, delay, eventually, SECRET } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';

const withTicket = (url: string, token: unknown, extra: Record<string, unknown> = {}) => connectClient(url, undefined, { auth: { sessionTicket: token }, ...extra });

test('the token endpoint hands out a ticket for the cookie session, never cached, and never the session id', async () => {
  const server = await startServer();
  const cookie = await server.login({ user: 'tia' });
  const res = await server.tokenResponse(cookie);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = (await res.json()) as { token: string; expiresAt: number; expiresIn: number };
  assert.equal(typeof body.token, 'string');
  assert.equal(body.token.split('.').length, 5, 'compact JWE');
  assert.ok(body.expiresIn >= 60_000 && body.expiresIn <= 61_000, `default 60 s (rounded up to a whole second), got ${body.expiresIn}`);
  assert.ok(Math.abs(body.expiresAt - (Date.now() + body.expiresIn)) < 2000);
  const sid = sidOf(cookie);
  assert.ok(!JSON.stringify(body).includes(sid), 'the raw session id is sealed');
  assert.ok(!Buffer.from(body.token.split('.')[0], 'base64url').toString().includes(sid));
  await server.close();
});

test('the token endpoint: 401 without a session, 403 for a foreign origin, CORS only for allowed origins, 503 when the store fails', async () => {
  class FlakyStore extends MemoryStore {
    down = false;
    override get(sid: string, cb: (err: unknown, s?: any) => void) {
      if (this.down) return cb(new Error('store down')); // a store outage, on demand
      super.get(sid, cb);
    }
  }
  const store = new FlakyStore();
  const server = await startServer({ store, origins: ['http://app.example'] });
  server.sio.on('serror', () => {});
  const cookie = await server.login();
  const none = await server.tokenResponse();
  assert.equal(none.status, 401);
  assert.deepEqual(await none.json(), { code: 'SESSION_INVALID', reason: 'no-session-id', message: 'session invalid (no-session-id): no cookie named "connect.sid" was sent' });
  const foreign = await server.tokenResponse(cookie, 'http://evil.example');
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  const allowed = await server.tokenResponse(cookie, 'http://app.example');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
  store.down = true;
  const down = await server.tokenResponse(cookie);
  assert.equal(down.status, 503);
  assert.equal(((await down.json()) as { code: string }).code, 'SESSION_UNAVAILABLE');
  assert.ok(down.headers.get('retry-after'));
  await server.close();
});

test('a ticket connects without any cookie, to the session it was minted for', async () => {
  const server = await startServer();
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  const cookie = await server.login({ user: 'tom' });
  const { token } = await server.ticket(cookie);
  const client = withTicket(server.url, token);
  await connected(client);
  assert.equal(await client.emitWithAck('who'), 'tom');
  client.close();
  await server.close();
});

test('bad tickets are refused as SESSION_INVALID with the reason, and the server keeps running', async () => {
  const server = await startServer({ origins: ['http://a.example', 'http://b.example'] });
  const cookie = await server.login();
  const sid = sidOf(cookie);
  const { token } = await server.ticket(cookie);
  const sealer = new TicketSealer([SECRET], 60_000);
  const expired = (await sealer.seal(sid, `http://127.0.0.1:${server.port}`, Date.now() - 120_000)).token;
  const forA = (await server.ticket(cookie, 'http://a.example')).token;
  const otherKey = (await new TicketSealer(['another secret'], 60_000).seal(sid, `http://127.0.0.1:${server.port}`)).token;
  const flipped = token.slice(0, -6) + (token.at(-6) === 'A' ? 'B' : 'A') + token.slice(-5);
  const cases: Array<[string, unknown, string, Record<string, unknown>?]> = [
    ['tampered', flipped, 'ticket-tampered'],
    ['sealed with another secret', otherKey, 'ticket-tampered'],
    ['expired', expired, 'ticket-expired'],
    ['minted for another origin', forA, 'ticket-audience', { extraHeaders: { origin: 'http://b.example' } }],
    ['minted for a page, used without Origin', forA, 'ticket-audience'],
    ['malformed', 'not.a.ticket', 'ticket-malformed'],
    ['not a string', 12345, 'ticket-malformed'],
    ['an object', { token }, 'ticket-malformed'],
    ['oversized', 'x'.repeat(100_000), 'ticket-malformed'],
    ['empty: what the SDK sends when its source has no session', '', 'no-session-id'],
  ];
  for (const [name, ticket, reason, extra] of cases) {
    const err = await refused(withTicket(server.url, ticket, extra));
    assert.deepEqual(err.data, { code: 'SESSION_INVALID', reason }, name);
  }
  // The same origin that the audience names is fine.
  const ok = withTicket(server.url, forA, { extraHeaders: { origin: 'http://a.example' } });
  await connected(ok);
  ok.close();
  await server.close();
});

test('a ticket replayed after it expired is refused, though it worked before', async () => {
  const server = await startServer({ ticketTtl: 1000 });
  const cookie = await server.login();
  const { token, expiresAt } = await server.ticket(cookie);
  const first = withTicket(server.url, token);
  await connected(first);
  first.close();
  await delay(expiresAt - Date.now() + 100); // wall clock: the server checks expiry against its real clock
  const err = await refused(withTicket(server.url, token));
  assert.deepEqual(err.data, { code: 'SESSION_INVALID', reason: 'ticket-expired' });
  await server.close();
});

test('secret rotation: tickets minted under the old secret still open after a new one is added', async () => {
  const store = new MemoryStore();
  const before = await startServer({ store, secret: 'old' });
  const cookie = await before.login();
  const { token } = await before.ticket(cookie);
  const { port } = before;
  await before.close();
  const after = await startServer({ store, secret: ['new', 'old'], port });
  const client = withTicket(after.url, token);
  await connected(client);
  client.close();
  await after.close();
});

test('a ticket for a logged-out session is refused, and logout still reaches ticket sockets', async () => {
  const server = await startServer();
  const cookie = await server.login();
  const { token } = await server.ticket(cookie);
  const client = withTicket(server.url, token);
  await connected(client);
  const pushed = once<[{ reason: string }]>(client, 'sio-sessions:invalid');
  await server.logout(cookie);
  assert.equal((await pushed)[0].reason, 'destroyed');
  const err = await refused(withTicket(server.url, token));
  assert.equal(err.data.code, 'SESSION_INVALID');
  await server.close();
});

test('the server tells a ticket socket when its credential expires, and ends it if no new ticket comes', async () => {
  const server = await startServer({ ticketTtl: 1000 });
  const reasons: string[] = [];
  server.sio.on('sinvalid', (_s, reason) => reasons.push(reason));
  const cookie = await server.login();
  const { token } = await server.ticket(cookie);
  const client = withTicket(server.url, token);
  const credential = once<[{ expiresIn: number }]>(client, 'sio-sessions:credential');
  await connected(client);
  const [{ expiresIn }] = await credential;
  assert.ok(expiresIn > 0 && expiresIn <= 2000, `expires in ${expiresIn} ms (1 s, rounded up to a whole second)`);
  const [pushed] = await once<[{ reason: string }]>(client, 'sio-sessions:invalid', 5000);
  assert.equal(pushed.reason, 'ticket-expired');
  assert.deepEqual(reasons, ['ticket-expired']);
  await server.close();
});

test('in-band refresh: the SDK presents new tickets on the live socket, with no disconnect', async () => {
  const server = await startServer({ ticketTtl: 1200 });
  let refreshes = 0;
  server.io.on('connection', (s) => s.on('sio-sessions:refresh', () => refreshes++));
  server.sio.on('sconnection', (s) => s.on('who', (ack: (u: unknown) => void) => ack(s.session.user)));
  const cookie = await server.login({ user: 'rae' });
  let fetched = 0;
  let firstExpiresAt = Infinity;
  const socket = connectWithSession(server.url, {
    forceNew: true,
    transports: ['websocket'],
    credential: tickets({
      source: async () => {
        const ticket = await server.ticket(cookie);
        if (fetched++ === 0) firstExpiresAt = ticket.expiresAt;
        return ticket;
      },
    }),
  });
  const disconnects: string[] = [];
  socket.on('disconnect', (r) => disconnects.push(r));
  await once(socket, 'connect');
  await eventually(() => refreshes >= 2 && fetched >= 3, 10_000);
  // wall clock: past the server's own timer for the first ticket (its expiry + 2 s of grace), which a refresh must re-arm.
  await delay(firstExpiresAt + 2000 + 200 - Date.now());
  assert.deepEqual(disconnects, []);
  assert.equal(socket.connected, true);
  assert.equal(await socket.emitWithAck('who'), 'rae');
  socket.disconnect();
  await server.close();
});

test('a refresh with a ticket of another session is refused, and the socket keeps its own', async () => {
  const server = await startServer();
  const mine = await server.login({ user: 'me' });
  const theirs = await server.login({ user: 'them' });
  const client = withTicket(server.url, (await server.ticket(mine)).token);
  await connected(client);
  const result = await client.emitWithAck('sio-sessions:refresh', (await server.ticket(theirs)).token);
  assert.deepEqual(result, { ok: false, code: 'SESSION_INVALID', reason: 'ticket-session-mismatch' });
  const good = await client.emitWithAck('sio-sessions:refresh', (await server.ticket(mine)).token);
  assert.equal(good.ok, true);
  client.close();
  await server.close();
});

test('the served script embeds a fresh ticket for a same-origin request with a session, and none otherwise', async () => {
  const server = await startServer();
  const cookie = await server.login();
  const script = (headers: Record<string, string>) => fetch(`${server.url}/socket.io/socket.io-sessions.js`, { headers }).then((r) => r.text());
  // Sec-Fetch-Site as a browser sends it for the page's own <script> tag (without it, no ticket).
  const withSession = await script({ cookie, 'sec-fetch-site': 'same-origin' });
  const match = /\.ticket=(.*);\s*$/.exec(withSession);
  assert.ok(match, 'ends with the ticket statement');
  const ticket = JSON.parse(match![1]);
  assert.equal(typeof ticket.token, 'string');
  assert.ok(!withSession.includes(sidOf(cookie)), 'the raw session id is not in the script');
  const client = withTicket(server.url, ticket.token);
  await connected(client);
  client.close();
  assert.match(await script({}), /\.ticket=null;\s*$/);
  assert.match(await script({ cookie, 'sec-fetch-site': 'cross-site' }), /\.ticket=null;\s*$/, 'another site including the script gets no ticket');
  assert.match(await script({ cookie, 'sec-fetch-site': 'same-origin' }), /\.ticket=\{/);
  await server.close();
});

test('tickets() retries a failing credential source with backoff, reported as unavailable, then connects', async () => {
  const server = await startServer();
  const cookie = await server.login();
  let calls = 0;
  const socket = connectWithSession(server.url, {
    forceNew: true,
    transports: ['websocket'],
    credential: tickets({
      retry: { min: 20, max: 50 },
      source: async () => {
        if (++calls < 3) throw new TypeError('fetch failed'); // what a network error looks like
        return server.ticket(cookie);
      },
    }),
  });
  const phases: string[] = [];
  socket.sessions.on('unavailable', (ctx) => phases.push(ctx.phase));
  await once(socket, 'connect');
  assert.deepEqual(phases, ['credential', 'credential']);
  assert.equal(calls, 3);
  socket.disconnect();
  await server.close();
});

test('tickets({ tokenUrl }): 5xx and network failures are retried with backoff, a 401 starts the invalid-session policy', async () => {
  let failures = 2;
  let tokenRequests = 0;
  let cookie = '';
  const server = await startServer({
    routes(app) {
      // A token endpoint that fails twice with 503, then answers for `cookie` (Node's fetch has no cookie jar).
      app.get('/flaky-token', (req, res, next) => {
        tokenRequests++;
        if (failures-- > 0) return void res.status(503).json({ code: 'SESSION_UNAVAILABLE', reason: 'store-error' });
        req.headers.cookie = cookie;
        req.url = '/socket.io-sessions/token';
        server.sio.tokenHandler()(req, res, next);
      });
    },
  });
  cookie = await server.login({ user: 'fay' });
  const socket = connectWithSession(server.url, {
    forceNew: true,
    transports: ['websocket'],
    credential: tickets({ tokenUrl: `${server.url}/flaky-token`, retry: { min: 20, max: 40 } }),
  });
  const unavailable: string[] = [];
  socket.sessions.on('unavailable', (ctx) => unavailable.push(ctx.phase));
  await once(socket, 'connect', 5000);
  assert.deepEqual(unavailable, ['credential', 'credential']);
  assert.equal(tokenRequests, 3);
  socket.disconnect();

  // No session: 401 from the endpoint, the handshake goes without a ticket, and the policy runs (Node: stop).
  const anonymous = connectWithSession(server.url, {
    forceNew: true,
    transports: ['websocket'],
    credential: tickets({ tokenUrl: `${server.url}/socket.io-sessions/token` }),
  });
  const actions: string[] = [];
  anonymous.sessions.on('invalid', (ctx) => actions.push(`${ctx.reason}:${ctx.action}`));
  await eventually(() => anonymous.sessions.state === 'invalid', 5000);
  assert.deepEqual(actions, ['no-session-id:reconnect', 'no-session-id:stop']);
  await server.close();
});

test('a stored cookie expiry that is not a date (another program wrote it) is no expiry: no renew-cookie push at each revalidation', async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ store, sessionCookie: { maxAge: 60_000 }, revalidateInterval: 50 });
  t.after(() => server.close());
  const cookie = await server.login();
  const record = store.peek(sidOf(cookie)) as { cookie: Record<string, unknown> };
  store.putRaw(sidOf(cookie), { ...record, cookie: { ...record.cookie, expires: 'garbage' } });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  const pushes: unknown[] = [];
  client.on('sio-sessions:renew-cookie', (payload: unknown) => pushes.push(payload));
  await connected(client);
  // Each revalidation reads the store: six of them (before: a push at every one, expiresAt null).
  const reads = store.calls.get;
  await eventually(() => store.calls.get >= reads + 6, 5000);
  assert.deepEqual(pushes, []);
  assert.equal(client.connected, true);
});

test('a socket that keeps its session alive past the browser cookie is told to renew it, and ?renew=1 re-issues the cookie', async () => {
  const server = await startServer({ sessionCookie: { maxAge: 4000 }, revalidateInterval: 250 });
  server.sio.on('sconnection', (s) => s.on('ping', (ack: () => void) => ack()));
  const cookie = await server.login();
  const client = connectClient(server.url, cookie);
  await connected(client);
  const keepActive = setInterval(() => client.emit('ping', () => {}), 100);
  const started = Date.now();
  const [{ expiresAt }] = await once<[{ expiresAt: number }]>(client, 'sio-sessions:renew-cookie', 6000);
  clearInterval(keepActive);
  // Told within the last quarter of the cookie's life, before it ran out.
  assert.ok(expiresAt - Date.now() <= 1000 + 300 && expiresAt > Date.now(), `expires in ${expiresAt - Date.now()} ms`);
  assert.ok(Date.now() - started >= 2500);
  const res = await server.tokenResponse(cookie.replace(/^/, ''));
  assert.equal(res.headers.get('set-cookie'), null, 'no cookie without ?renew=1');
  // As the page's own fetch sends it: a browser says where the request comes from.
  const renewed = await fetch(`${server.url}/socket.io-sessions/token?renew=1`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
  assert.equal(renewed.status, 200);
  const unproven = await fetch(`${server.url}/socket.io-sessions/token?renew=1`, { headers: { cookie } });
  assert.equal(unproven.status, 200, 'a ticket still: the JSON is readable by allowed origins only');
  assert.equal(unproven.headers.get('set-cookie'), null, 'no renewed cookie for a request that shows no allowed origin');
  const setCookie = renewed.headers.get('set-cookie')!;
  assert.ok(setCookie.startsWith(`${cookie};`) || setCookie.startsWith(cookie.split('=')[0] + '='), setCookie);
  assert.equal(setCookie.split(';')[0], cookie, 'the same signed session id');
  const newExpiry = Date.parse(/Expires=([^;]+)/i.exec(setCookie)![1]!);
  assert.ok(newExpiry > expiresAt + 2000, 'a fresh expiry');
  assert.match(setCookie, /HttpOnly/i);
  client.close();
  await server.close();
});
