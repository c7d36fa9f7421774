// Beyond one machine: several server nodes sharing sessions in a real redis-server (connect-redis)
// and the Socket.IO Redis adapter. Logout on one node reaches the sockets on every node, a cut
// pub/sub is covered by revalidation, sessions expire (or are kept alive) while sockets are open,
// a login's regenerate() moves sockets to the new session, the opt-in Redis lock makes concurrent
// per-message updates from two nodes exact, and a Redis restart is an outage, not a logout.
//
// "Nodes" are reference servers (server-stub/server.js with REDIS_URL) in child processes, so they
// run the built library (dist/); the pub/sub-cut test runs two in-process nodes on src/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { RedisStore } from 'connect-redis';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connectWithSession, type SessionSocket, type InvalidContext, type UnavailableContext } from '../../src/client/index.js';
import { Events } from '../../src/protocol.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';
import { startServer, connectClient, connected, once, refused, sidOf, delay, eventually } from '../helpers/servers.js';

const SECRET = 'redis test secret';
/** The interval the shared nodes revalidate at: short, so an outage also hits revalidation. */
const REVALIDATE_MS = 1000;
const RENEW_COOKIE_EVENT = 'sio-sessions:renew-cookie';

type Node = ReferenceServer;
type RedisClient = ReturnType<typeof createClient>;

let redis: TestRedis;
/** Reads Redis directly (TTL, EXISTS), as an operator would. */
let inspector: RedisClient;
/** Two nodes with the lock (the reference server's default with REDIS_URL). */
let nodeA: Node;
let nodeB: Node;

function nodeEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { REDIS_URL: redis.url, SESSION_SECRET: SECRET, REVALIDATE_INTERVAL: String(REVALIDATE_MS), ...extra };
}

before(async () => {
  redis = await startRedis();
  inspector = createClient({ url: redis.url });
  inspector.on('error', () => {}); // reconnects by itself across the restart test
  await inspector.connect();
  [nodeA, nodeB] = await Promise.all([startReferenceServer({ env: nodeEnv() }), startReferenceServer({ env: nodeEnv() })]);
});

after(async () => {
  await Promise.allSettled([nodeA?.dispose(), nodeB?.dispose()]);
  if (inspector?.isOpen) await inspector.quit().catch(() => inspector.destroy());
  await redis?.dispose();
});

// ---------------------------------------------------------------------------------------------
// helpers

async function post(url: string, cookie?: string, body: unknown = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });
}

/** POST /login {name} on a node: the Cookie header value of the new session. */
async function login(node: Node, name: string, cookie?: string): Promise<string> {
  const res = await post(`${node.url}/login`, cookie, { name });
  assert.equal(res.status, 200, `login on ${node.url}: HTTP ${res.status}`);
  const setCookie = res.headers.get('set-cookie');
  assert.ok(setCookie, 'login set a cookie');
  return setCookie.split(';')[0];
}

async function logout(node: Node, cookie: string): Promise<void> {
  const res = await post(`${node.url}/logout`, cookie);
  assert.equal(res.status, 200, `logout: HTTP ${res.status}`);
}

/** The session as the node's HTTP side sees it: { counter, user, id }. */
async function httpSession(node: Node, cookie: string): Promise<{ counter: number; user: string | null }> {
  const res = await fetch(`${node.url}/api/session`, { headers: { cookie } });
  assert.equal(res.status, 200);
  return res.json() as Promise<{ counter: number; user: string | null }>;
}

const sessKey = (cookie: string) => `sess:${sidOf(cookie, [SECRET])}`;

/** A plain socket (no reconnection) on `node` with the session cookie. */
async function open(node: Node, cookie: string, t: { after(fn: () => unknown): void }): Promise<ClientSocket> {
  const client = connectClient(node.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return client;
}

/** What one socket hears: the invalid event (payload, when) and the disconnect (reason, when). */
function record(client: ClientSocket) {
  const heard: Array<{ event: string; data: unknown; at: number }> = [];
  client.on(Events.INVALID, (data: unknown) => heard.push({ event: 'invalid', data, at: performance.now() }));
  client.on('disconnect', (data: unknown) => heard.push({ event: 'disconnect', data, at: performance.now() }));
  return heard;
}

interface SdkClient {
  socket: SessionSocket;
  /** The Cookie header the next (re)connect sends: change it as a browser's cookie jar would. */
  headers: { cookie: string };
  invalid: InvalidContext[];
  unavailable: UnavailableContext[];
}

/** connectWithSession over websocket with a cookie header, quick retries, no page reloads. */
function sdk(node: Node, cookie: string, t: { after(fn: () => unknown): void }): SdkClient {
  const headers = { cookie };
  const invalid: InvalidContext[] = [];
  const unavailable: UnavailableContext[] = [];
  const socket = connectWithSession(node.url, {
    forceNew: true,
    transports: ['websocket'],
    extraHeaders: headers, // socket.io-client reads this object on every (re)connect
    onInvalid: 'none',
    retry: { min: 100, max: 400 },
    reconnectionDelay: 100,
    reconnectionDelayMax: 400,
    on: { invalid: (ctx) => invalid.push(ctx), unavailable: (ctx) => unavailable.push(ctx) },
  });
  t.after(() => {
    socket.sessions.dispose();
    socket.close();
  });
  return { socket, headers, invalid, unavailable };
}

const INVALID_DESTROYED = { code: 'SESSION_INVALID', reason: 'destroyed' };

// ---------------------------------------------------------------------------------------------

test('a logout over HTTP on node A reaches the session\'s sockets on node B in under a second (sinvalid, then disconnect); other sessions stay', async (t) => {
  const cookie = await login(nodeA, 'alice');
  const otherCookie = await login(nodeA, 'bob');
  const onB = [await open(nodeB, cookie, t), await open(nodeB, cookie, t), await open(nodeB, cookie, t)];
  const onA = await open(nodeA, cookie, t);
  const other = await open(nodeB, otherCookie, t);
  // The login on A is visible to B's sockets: they share the Redis session.
  assert.deepEqual(await onB[0].timeout(3000).emitWithAck('state'), { counter: 0, user: 'alice' });
  const heardB = onB.map(record);
  const heardA = record(onA);
  const heardOther = record(other);
  const gone = Promise.all([...onB, onA].map((c) => once(c, 'disconnect', 3000)));

  const started = performance.now();
  await logout(nodeA, cookie);
  await gone;

  const latencies = heardB.map((h) => h[0]!.at - started);
  for (const h of [...heardB, heardA]) {
    assert.deepEqual(h.map(({ event, data }) => [event, data]), [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  }
  const worst = Math.max(...latencies);
  t.diagnostic(`cross-node logout -> sinvalid on node B: ${latencies.map((ms) => ms.toFixed(1)).join(', ')} ms (from the start of POST /logout)`);
  assert.ok(worst < 1000, `node B's sockets heard of the logout after ${worst.toFixed(0)} ms`);

  // The other session, on B, is untouched and still works.
  assert.deepEqual(heardOther, []);
  assert.deepEqual(await other.timeout(3000).emitWithAck('state'), { counter: 0, user: 'bob' });
  // The session is gone from Redis, and stays gone after every socket's save-on-disconnect ran.
  await delay(300);
  assert.equal(await inspector.exists(sessKey(cookie)), 0);
  // The logged-out cookie is refused on both nodes.
  for (const node of [nodeA, nodeB]) {
    const again = connectClient(node.url, cookie);
    t.after(() => again.close());
    assert.equal((await refused(again)).data?.code, 'SESSION_INVALID');
  }
});

test('with the adapter\'s pub/sub cut on node B, revalidation still closes B\'s socket within one interval after a logout on A', async (t) => {
  const interval = 1000;
  const clients: RedisClient[] = [];
  const redisClient = async () => {
    const client = createClient({ url: redis.url });
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    return client;
  };
  // Two in-process nodes, each with its own store client and adapter clients, as two machines would have.
  const node = async () => {
    const [storeClient, pub, sub] = [await redisClient(), await redisClient(), await redisClient()];
    const server = await startServer({
      store: new RedisStore({ client: storeClient }),
      revalidateInterval: interval,
      before: (io) => io.adapter(createAdapter(pub, sub)),
    });
    return { server, sub };
  };
  const a = await node();
  const b = await node();
  t.after(async () => {
    await Promise.allSettled([a.server.close(), b.server.close()]);
    await Promise.allSettled(clients.map((c) => c.quit()));
  });
  const invalidsOnB: string[] = [];
  b.server.sio.on('sinvalid', (_socket, reason) => invalidsOnB.push(reason));

  // With pub/sub up, a logout on A reaches B at once, as 'destroyed'.
  const control = await a.server.login({ user: 'carol' });
  const controlClient = connectClient(b.server.url, control);
  t.after(() => controlClient.close());
  await connected(controlClient);
  const controlGone = once<[unknown]>(controlClient, Events.INVALID, 1000);
  await a.server.logout(control);
  assert.deepEqual((await controlGone)[0], INVALID_DESTROYED);

  const cookie = await a.server.login({ user: 'dave' });
  const client = connectClient(b.server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const heard = record(client);
  // Cut B's subscriber: it no longer hears the other nodes (Redis itself stays up).
  await b.sub.unsubscribe();
  await b.sub.pUnsubscribe();
  const gone = once(client, 'disconnect', interval * 3);
  const started = performance.now();
  await a.server.logout(cookie);
  await gone;
  const elapsed = performance.now() - started;
  t.diagnostic(`pub/sub cut: B's socket closed ${elapsed.toFixed(0)} ms after the logout on A (revalidate interval ${interval} ms)`);
  // Noticed by revalidation (the session is missing), not by the cut adapter ('destroyed').
  assert.deepEqual(heard.map(({ event, data }) => [event, data]), [['invalid', { code: 'SESSION_INVALID', reason: 'not-found' }], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(invalidsOnB, ['destroyed', 'not-found']);
  assert.ok(elapsed < interval + 400, `closed after ${elapsed.toFixed(0)} ms, interval ${interval} ms`);
});

test('short maxAge: an idle socket is invalidated when its session expires; an active socket keeps it alive and is told to renew the cookie', async (t) => {
  const maxAge = 3000;
  const interval = 500;
  const node = await startReferenceServer({ env: nodeEnv({ COOKIE_MAX_AGE: String(maxAge), REVALIDATE_INTERVAL: String(interval) }) });
  t.after(() => node.dispose());
  const idleCookie = await login(node, 'idle');
  const activeCookie = await login(node, 'active');
  const loggedInAt = performance.now();
  const idle = await open(node, idleCookie, t);
  const active = await open(node, activeCookie, t);
  const heardIdle = record(idle);
  const heardActive = record(active);
  const renewals: Array<{ expiresAt: number; at: number }> = [];
  active.on(RENEW_COOKIE_EVENT, (data: { expiresAt: number }) => renewals.push({ ...data, at: Date.now() }));

  // The active socket sends an event every 200 ms for well over two maxAges.
  let acked = 0;
  const runFor = maxAge * 2 + 1000;
  while (performance.now() - loggedInAt < runFor) {
    const reply = (await active.timeout(2000).emitWithAck('increment')) as { counter: number };
    acked += 1;
    assert.equal(reply.counter, acked);
    await delay(200);
  }

  // Idle: invalidated once the session expired (not before), within one revalidation interval.
  const invalidIdle = heardIdle.find((h) => h.event === 'invalid');
  assert.ok(invalidIdle, 'the idle socket was told its session is invalid');
  assert.ok(['expired', 'not-found'].includes((invalidIdle.data as { reason: string }).reason), JSON.stringify(invalidIdle.data));
  assert.equal((invalidIdle.data as { code: string }).code, 'SESSION_INVALID');
  assert.deepEqual(heardIdle.map((h) => h.event), ['invalid', 'disconnect']);
  const idleAfter = invalidIdle.at - loggedInAt;
  t.diagnostic(`idle socket invalidated ${idleAfter.toFixed(0)} ms after login (maxAge ${maxAge}, interval ${interval}): ${JSON.stringify(invalidIdle.data)}`);
  assert.ok(idleAfter > maxAge - 300, `invalidated too early: ${idleAfter.toFixed(0)} ms`);
  assert.ok(idleAfter < maxAge + interval + 1000, `invalidated too late: ${idleAfter.toFixed(0)} ms`);
  assert.equal(await inspector.exists(sessKey(idleCookie)), 0);

  // Active: still connected, never told anything bad, its session still in Redis with a live TTL.
  assert.deepEqual(heardActive, []);
  assert.equal(active.connected, true);
  const ttl = await inspector.pTTL(sessKey(activeCookie));
  assert.ok(ttl > 0, `active session's TTL in Redis: ${ttl}`);
  // Told (once per cookie expiry) that the browser's cookie, set at login, needs renewing over HTTP.
  assert.ok(renewals.length >= 1, 'the active socket was told to renew its cookie');
  const cookieExpiresAt = Date.now() - (performance.now() - loggedInAt) + maxAge;
  assert.ok(Math.abs(renewals[0]!.expiresAt - cookieExpiresAt) < 1500, `renew-cookie expiresAt ${renewals[0]!.expiresAt} vs cookie expiry ~${cookieExpiresAt}`);
  t.diagnostic(`renew-cookie events: ${renewals.length}, first ${renewals[0]!.expiresAt - renewals[0]!.at} ms before the cookie expiry`);

  // Renewing through the token endpoint re-issues the cookie with a fresh expiry...
  const res = await fetch(`${node.url}/socket.io-sessions/token?renew=1`, { headers: { cookie: activeCookie } });
  assert.equal(res.status, 200);
  const setCookie = res.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^connect\.sid=/);
  const expires = /Expires=([^;]+)/i.exec(setCookie)?.[1];
  assert.ok(expires && Date.parse(expires) > Date.now() + maxAge - 2000, `renewed cookie: ${setCookie}`);
  // ...for the same session, which a new socket can use long after the login cookie's expiry.
  const renewed = setCookie.split(';')[0]!;
  assert.equal(sidOf(renewed, [SECRET]), sidOf(activeCookie, [SECRET]));
  const again = await open(node, renewed, t);
  assert.deepEqual(await again.timeout(2000).emitWithAck('state'), { counter: acked, user: 'active' });
});

test('regenerate() at login with sockets open: the old session\'s sockets on both nodes are told, and the SDK reconnects into the new session', async (t) => {
  const oldCookie = await login(nodeA, 'erin');
  const oldOnA = await open(nodeA, oldCookie, t);
  const heardOldA = record(oldOnA);
  const client = sdk(nodeB, oldCookie, t);
  await once(client.socket, 'connect', 5000);
  assert.deepEqual(await client.socket.timeout(3000).emitWithAck('state'), { counter: 0, user: 'erin' });
  assert.equal((await client.socket.timeout(3000).emitWithAck('increment')).counter, 1);
  const goneA = once(oldOnA, 'disconnect', 3000);
  const invalidOnB = once(client.socket, Events.INVALID, 3000);

  // Log in again (another user) with the old cookie: express-session regenerates the id.
  const newCookie = await login(nodeA, 'frank', oldCookie);
  assert.notEqual(sidOf(newCookie, [SECRET]), sidOf(oldCookie, [SECRET]));
  client.headers.cookie = newCookie; // the browser's cookie jar now holds the new cookie
  assert.deepEqual((await invalidOnB)[0], INVALID_DESTROYED);
  await goneA;
  assert.deepEqual(heardOldA.map(({ event, data }) => [event, data]), [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);

  // The SDK reconnects (once, at once) and lands in the new session.
  await once(client.socket, 'connect', 5000);
  assert.deepEqual(client.invalid.map((c) => [c.phase, c.reason, c.action]), [['connected', 'destroyed', 'reconnect']]);
  assert.deepEqual(await client.socket.timeout(3000).emitWithAck('state'), { counter: 0, user: 'frank' });
  // The old session is gone: nothing can act on it any more.
  assert.equal(await inspector.exists(sessKey(oldCookie)), 0);
  for (const node of [nodeA, nodeB]) {
    const stale = connectClient(node.url, oldCookie);
    t.after(() => stale.close());
    assert.equal((await refused(stale)).data?.code, 'SESSION_INVALID');
  }
  assert.equal(client.socket.sessions.state, 'connected');
});

/** 5 sockets on each node, each sending `perSocket` increments at once, plus HTTP increments on both nodes. */
async function incrementStorm(nodes: [Node, Node], cookie: string, t: { after(fn: () => unknown): void }, perSocket = 100, httpPerNode = 20) {
  const sockets: ClientSocket[] = [];
  for (const node of nodes) for (let i = 0; i < 5; i += 1) sockets.push(await open(node, cookie, t));
  const problems: string[] = [];
  for (const s of sockets) {
    s.on(Events.INVALID, (d: unknown) => problems.push(`invalid ${JSON.stringify(d)}`));
    s.on(Events.UNAVAILABLE, (d: unknown) => problems.push(`unavailable ${JSON.stringify(d)}`));
  }
  const started = performance.now();
  const acks = Promise.all(
    sockets.flatMap((s) => Array.from({ length: perSocket }, () => s.timeout(60_000).emitWithAck('increment') as Promise<{ counter: number }>)),
  );
  const http = Promise.all(
    nodes.flatMap((node) =>
      Array.from({ length: httpPerNode }, async () => {
        const res = await post(`${node.url}/api/increment`, cookie);
        assert.equal(res.status, 200);
        return ((await res.json()) as { counter: number }).counter;
      }),
    ),
  );
  const [socketAcks, httpAcks] = await Promise.all([acks, http]);
  const elapsed = performance.now() - started;
  const final = (await httpSession(nodes[0], cookie)).counter;
  return { counters: socketAcks.map((a) => a.counter), httpCounters: httpAcks, elapsed, final, problems, total: sockets.length * perSocket + nodes.length * httpPerNode };
}

test('with the Redis lock, 2 nodes x 5 sockets x 100 concurrent per-message increments (plus HTTP increments) on one session lose no update', async (t) => {
  const cookie = await login(nodeA, 'grace');
  const { counters, httpCounters, elapsed, final, problems, total } = await incrementStorm([nodeA, nodeB], cookie, t);
  t.diagnostic(`lock on: ${total} increments (1000 per-message + ${total - 1000} HTTP) in ${elapsed.toFixed(0)} ms (${((elapsed * 1000) / total).toFixed(0)} µs each), final count ${final}`);
  assert.deepEqual(problems, []);
  assert.equal(final, total);
  // Every unit of work saw the one before it: each ack carries a different count, 1..total between them.
  const all = [...counters, ...httpCounters].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: total }, (_, i) => i + 1));
});

test('without the lock, concurrent increments of one key from two nodes can lose updates (final count <= total, as documented); each node alone loses none', async (t) => {
  const env = nodeEnv({ SESSION_LOCK: 'off' });
  const [nodeC, nodeD] = await Promise.all([startReferenceServer({ env }), startReferenceServer({ env })]);
  t.after(() => Promise.all([nodeC.dispose(), nodeD.dispose()]));
  assert.match(nodeC.output(), /lock off/);
  const cookie = await login(nodeC, 'heidi');
  const { counters, elapsed, final, problems, total } = await incrementStorm([nodeC, nodeD], cookie, t);
  const distinct = new Set(counters).size;
  t.diagnostic(`lock off: ${total} increments in ${elapsed.toFixed(0)} ms (${((elapsed * 1000) / total).toFixed(0)} µs each), final count ${final} (${total - final} lost), ${distinct} distinct socket acks`);
  assert.deepEqual(problems, []);
  assert.ok(final <= total && final > 0, `final ${final} of ${total}`);
  // One node alone still serialises its own sockets' units of work: none lost.
  const single = await login(nodeC, 'ivan');
  const sockets = [await open(nodeC, single, t), await open(nodeC, single, t), await open(nodeC, single, t)];
  await Promise.all(sockets.flatMap((s) => Array.from({ length: 50 }, () => s.timeout(30_000).emitWithAck('increment'))));
  assert.equal((await httpSession(nodeC, single)).counter, 150);
});

test('Redis restarted mid-traffic: clients see SESSION_UNAVAILABLE and back off, never sinvalid; all recover with their sessions intact', async (t) => {
  const names = ['judy', 'ken', 'lou'];
  const cookies = await Promise.all(names.map((name) => login(nodeA, name)));
  // Two SDK clients per session, one on each node, each sending an increment every 50 ms.
  const clients = cookies.flatMap((cookie, i) => [nodeA, nodeB].map((node) => ({ session: i, ...sdk(node, cookie, t) })));
  await Promise.all(clients.map((c) => (c.socket.connected ? undefined : once(c.socket, 'connect', 5000))));
  const rawInvalid: unknown[] = [];
  for (const c of clients) c.socket.on(Events.INVALID, (d: unknown) => rawInvalid.push(d));
  const ackedBefore = names.map(() => 0);
  const ackedMax = names.map(() => 0);
  let restarting = false;
  let stop = false;
  let failedSends = 0;
  const traffic = clients.map(async (c) => {
    while (!stop) {
      if (c.socket.connected) {
        try {
          const { counter } = (await c.socket.timeout(1000).emitWithAck('increment')) as { counter: number };
          ackedMax[c.session] = Math.max(ackedMax[c.session]!, counter);
          if (!restarting) ackedBefore[c.session] = Math.max(ackedBefore[c.session]!, counter);
        } catch {
          failedSends += 1; // no ack: the store was down (the client got sio-sessions:unavailable) or the socket dropped
        }
      }
      await delay(50);
    }
  });
  await delay(800);
  assert.ok(ackedBefore.every((n) => n > 0), `acked before the restart: ${ackedBefore}`);

  // Stop Redis for a while, open new clients while it is down, then start it again (same data).
  restarting = true;
  const beforeCounts = [...ackedBefore];
  await redis.stop();
  await delay(300);
  const late = [nodeA, nodeB].map((node, i) => sdk(node, cookies[i]!, t));
  await delay(1200);
  const downFor = 1500;
  await redis.start();
  const restartedAt = performance.now();

  // Everyone connected again and getting acks.
  await eventually(async () => {
    for (const c of [...clients, ...late]) {
      if (!c.socket.connected) return false;
    }
    return true;
  }, 20_000, 50);
  const progress = [...ackedMax];
  await eventually(() => ackedMax.every((n, i) => n > progress[i]!), 20_000, 50);
  const recoveredIn = performance.now() - restartedAt;
  stop = true;
  await Promise.all(traffic);
  for (const c of late) {
    assert.deepEqual(await c.socket.timeout(3000).emitWithAck('state'), { counter: (await httpSession(nodeA, c.headers.cookie)).counter, user: names[late.indexOf(c)] });
  }

  const unavailable = [...clients, ...late].flatMap((c) => c.unavailable);
  t.diagnostic(
    `redis down ${downFor} ms; recovered ${recoveredIn.toFixed(0)} ms after restart; unavailable events: ` +
      `${unavailable.filter((u) => u.phase === 'connected').length} mid-connection, ${unavailable.filter((u) => u.phase === 'handshake').length} at handshake; ${failedSends} sends without ack`,
  );
  // An outage, not a logout: no invalid anywhere.
  assert.deepEqual(rawInvalid, []);
  assert.deepEqual([...clients, ...late].flatMap((c) => c.invalid.map((i) => i.reason)), []);
  // Sockets that kept sending were told the store is unavailable; clients that connected during the outage were refused with it and retried.
  assert.ok(unavailable.some((u) => u.phase === 'connected'), 'a connected client was told SESSION_UNAVAILABLE');
  for (const c of late) {
    assert.ok(c.unavailable.some((u) => u.phase === 'handshake' && typeof u.retryIn === 'number'), `late client: ${JSON.stringify(c.unavailable)}`);
  }
  // Sessions intact: users kept, counters at least what was acked before the restart.
  for (const [i, cookie] of cookies.entries()) {
    const s = await httpSession(nodeB, cookie);
    assert.equal(s.user, names[i]);
    assert.ok(s.counter >= beforeCounts[i]! && s.counter >= ackedMax[i]!, `session ${i}: ${s.counter} vs acked ${beforeCounts[i]} before, ${ackedMax[i]} overall`);
  }
  // And cross-node invalidation works again (the adapter's subscriber came back).
  const heard = clients.filter((c) => c.session === 0);
  const invalidOnB = once<[unknown]>(heard[1]!.socket, Events.INVALID, 1000);
  const started = performance.now();
  await logout(nodeA, cookies[0]!);
  assert.deepEqual((await invalidOnB)[0], INVALID_DESTROYED);
  t.diagnostic(`after the restart, cross-node logout took ${(performance.now() - started).toFixed(0)} ms`);
});
