// Beyond one machine: several server nodes sharing sessions in a real redis-server (connect-redis)
// and the Socket.IO Redis adapter. Logout on one node reaches the sockets on every node, a cut
// pub/sub is covered by revalidation, sessions expire (or are kept alive) while sockets are open,
// a login's regenerate() moves sockets to the new session, the opt-in Redis lock makes concurrent
// per-message updates from two nodes exact, and a Redis restart is an outage, not a logout.
//
// "Nodes" are reference servers (server-stub/server.js with REDIS_URL) in child processes, so they
// run the built library (dist/); the pub/sub-cut and save-on-disconnect tests run two in-process
// nodes on src/ (each with its own Redis clients). Every test starts from its own sessions; the
// Redis restart test goes last.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connectWithSession, type SessionSocket, type InvalidContext, type UnavailableContext } from '../../src/client/index.js';
import { Events, CredentialEvents, noticeOf } from '../../src/protocol.js';
import { sessions } from '../../src/server/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startRedisNode, type RedisNode, type RedisNodeOptions } from '../helpers/redis-node.js';
import { sessionState, startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';
import { connectClient, connected, once, refused, sidOf, delay, eventually, SECRET as NODE_SECRET } from '../helpers/servers.js';

const SECRET = 'redis test secret';
/** The interval the shared nodes revalidate at: short, so an outage also hits revalidation. */
const REVALIDATE_MS = 1000;

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

/** `promise`, or a failure naming `what` after `ms` (a wait that would otherwise hang the file). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

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

function countBy(values: unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

/** An in-process node on src/ (test/helpers/redis-node.ts) on this file's redis-server, closed by the test. */
type InProcessNode = RedisNode;

async function inProcessNode(t: { after(fn: () => unknown): void }, options: RedisNodeOptions = {}, withLock = false): Promise<InProcessNode> {
  const node = await startRedisNode(redis.url, { redisLock: withLock, ...options });
  t.after(() => node.close());
  return node;
}

// ---------------------------------------------------------------------------------------------

test('a logout over HTTP on node A reaches the session\'s sockets on node B in under a second (sinvalid, then disconnect); other sessions stay', async (t) => {
  const cookie = await login(nodeA, 'alice');
  const otherCookie = await login(nodeA, 'bob');
  const onB = [await open(nodeB, cookie, t), await open(nodeB, cookie, t), await open(nodeB, cookie, t)];
  const onA = await open(nodeA, cookie, t);
  const other = await open(nodeB, otherCookie, t);
  // The login on A is visible to B's sockets: they share the Redis session.
  assert.deepEqual(sessionState(await onB[0].timeout(3000).emitWithAck('state')), { counter: 0, user: 'alice' });
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
  assert.deepEqual(sessionState(await other.timeout(3000).emitWithAck('state')), { counter: 0, user: 'bob' });
  // The session is gone from Redis, and stays gone after every socket's save-on-disconnect ran.
  await delay(300); // wall clock: a window in which a wrong save-on-disconnect (other processes) would show up
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
  const a = await inProcessNode(t, { revalidateInterval: interval });
  const b = await inProcessNode(t, { revalidateInterval: interval });
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
  // Cut B's subscriber: it no longer hears the other nodes (Redis itself stays up). The adapter
  // listens on its request channel (server-side events) and a pattern for broadcasts.
  const subscribers = async () => (await inspector.pubSubNumSub('socket.io-request#/#'))['socket.io-request#/#'];
  const before = await subscribers();
  await b.sub.unsubscribe('socket.io-request#/#');
  await b.sub.pUnsubscribe('socket.io#/#*');
  assert.equal(await subscribers(), before - 1);
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

test('per-connection, connect-redis: a page reloaded again and again (connect, an acked increment, disconnect, connect at once): every acked increment is stored, each new socket counts on from the last', { timeout: 60_000 }, async (t) => {
  // The next handshake's read often comes before the last socket's disconnect save, and its socket
  // connects after that save ended and the copy retired: it is read again, not taken stale.
  const node = await inProcessNode(t, { perMessage: false });
  node.server.sio.on('sconnection', (socket) =>
    socket.on('inc', (ack: (n: number) => void) => {
      socket.session.n = ((socket.session.n as number | undefined) ?? 0) + 1;
      ack(socket.session.n as number);
    }),
  );
  const cookie = await node.server.login({ user: 'gus' });
  const acks: number[] = [];
  for (let i = 0; i < 60; i++) {
    const client = connectClient(node.server.url, cookie);
    t.after(() => client.close());
    await connected(client);
    acks.push(await client.timeout(5000).emitWithAck('inc'));
    client.disconnect();
  }
  assert.deepEqual(acks, Array.from({ length: 60 }, (_, i) => i + 1));
  await node.server.sio.flush();
  await eventually(async () => JSON.parse((await inspector.get(`sess:${sidOf(cookie, [NODE_SECRET])}`))!).n === 60, 3000);
});

test('sessions() on a dynamic namespace (io.of(/regex/)): a logout on node A reaches the session\'s socket on B\'s child namespace at once (\'destroyed\', then disconnect)', async (t) => {
  // A parent namespace's own adapter reaches no other node (socket.io's ParentBroadcastAdapter), and
  // a child exists on a node only while clients use it there: the relay goes through io.sockets.
  const onDynamic: RedisNodeOptions = { revalidateInterval: 60_000, attach: (io, store) => sessions(io.of(/^\/dyn-\d+$/), { store, secret: NODE_SECRET, revalidateInterval: 60_000 }) };
  const a = await inProcessNode(t, onDynamic);
  const b = await inProcessNode(t, onDynamic);
  const invalidsOnB: string[] = [];
  b.server.sio.on('sinvalid', (_socket, reason) => invalidsOnB.push(reason));
  b.server.sio.on('sconnection', (socket) => socket.on('who', (ack: (user: unknown) => void) => ack(socket.session.user)));
  const cookie = await a.server.login({ user: 'erin' });
  const client = connectClient(`${b.server.url}/dyn-1`, cookie);
  t.after(() => client.close());
  await connected(client);
  assert.equal(await client.timeout(3000).emitWithAck('who'), 'erin');
  const heard = record(client);
  const gone = once(client, 'disconnect', 3000);
  await a.server.logout(cookie);
  await gone;
  assert.deepEqual(heard.map(({ event, data }) => [event, data]), [['invalid', INVALID_DESTROYED], ['disconnect', 'io server disconnect']]);
  assert.deepEqual(invalidsOnB, ['destroyed']);
});

/** Short-lived sessions: a node with a 3 s cookie maxAge that revalidates every 500 ms, started by the first test that needs it. */
const MAX_AGE = 3000;
const SHORT_INTERVAL = 500;
let shortNode: Promise<Node> | undefined;
function shortLivedNode(): Promise<Node> {
  shortNode ??= startReferenceServer({ env: nodeEnv({ COOKIE_MAX_AGE: String(MAX_AGE), REVALIDATE_INTERVAL: String(SHORT_INTERVAL) }) });
  return shortNode;
}
after(async () => (await shortNode?.catch(() => undefined))?.dispose());

test('short maxAge: an idle socket gets sinvalid within one revalidation interval of its session expiring', async (t) => {
  const node = await shortLivedNode();
  const cookie = await login(node, 'idle');
  const loggedInAt = performance.now();
  const idle = await open(node, cookie, t);
  const heard = record(idle);
  await once(idle, 'disconnect', MAX_AGE + SHORT_INTERVAL + 2000);
  const invalid = heard.find((h) => h.event === 'invalid');
  assert.ok(invalid, 'the idle socket was told its session is invalid');
  assert.deepEqual(heard.map((h) => h.event), ['invalid', 'disconnect']);
  const { code, reason } = invalid.data as { code: string; reason: string };
  assert.equal(code, 'SESSION_INVALID');
  assert.ok(['expired', 'not-found'].includes(reason), reason);
  const after = invalid.at - loggedInAt;
  t.diagnostic(`idle socket invalidated ${after.toFixed(0)} ms after login (maxAge ${MAX_AGE}, interval ${SHORT_INTERVAL}), reason ${reason}`);
  assert.ok(after > MAX_AGE - 300, `invalidated too early: ${after.toFixed(0)} ms`);
  assert.ok(after < MAX_AGE + SHORT_INTERVAL + 1000, `invalidated too late: ${after.toFixed(0)} ms`);
  assert.equal(await inspector.exists(sessKey(cookie)), 0);
});

test('short maxAge: an active socket keeps its session alive in the store, is told to renew the browser cookie, and the renewed cookie works', async (t) => {
  const node = await shortLivedNode();
  const cookie = await login(node, 'active');
  const loggedInAt = performance.now();
  const cookieExpiresAt = Date.now() + MAX_AGE;
  const active = await open(node, cookie, t);
  const heard = record(active);
  const renewals: Array<{ expiresAt: number; at: number }> = [];
  active.on(CredentialEvents.RENEW_COOKIE, (data: { expiresAt: number }) => renewals.push({ ...data, at: Date.now() }));

  // An event every 200 ms for well over two maxAges.
  let acked = 0;
  while (performance.now() - loggedInAt < MAX_AGE * 2 + 1000) {
    const reply = (await active.timeout(2000).emitWithAck('increment').catch((err: Error) => {
      const at = (performance.now() - loggedInAt).toFixed(0);
      throw new Error(`active socket: no ack ${at} ms after login (${acked} acked); it heard ${JSON.stringify(heard.map(({ event, data }) => [event, data]))}`, { cause: err });
    })) as { counter: number };
    acked += 1;
    assert.equal(reply.counter, acked);
    await delay(200); // wall clock: an active user's pace, over real maxAges
  }
  // Never told anything bad, still connected, the session still in Redis with a live TTL.
  assert.deepEqual(heard, []);
  assert.equal(active.connected, true);
  const ttl = await inspector.pTTL(sessKey(cookie));
  assert.ok(ttl > 0, `active session's TTL in Redis: ${ttl}`);

  // Told once, within the last quarter of the login cookie's life, that the browser's cookie needs renewing.
  assert.equal(renewals.length, 1, JSON.stringify(renewals));
  const [renewal] = renewals;
  assert.ok(Math.abs(renewal!.expiresAt - cookieExpiresAt) < 500, `renew-cookie expiresAt ${renewal!.expiresAt}, cookie expires ~${cookieExpiresAt}`);
  const early = renewal!.expiresAt - renewal!.at;
  t.diagnostic(`renew-cookie sent ${early} ms before the browser cookie expired (maxAge ${MAX_AGE})`);
  assert.ok(early > 0 && early <= MAX_AGE / 4 + 100, `renew-cookie sent ${early} ms before the expiry`);

  // Renewing through the token endpoint re-issues the cookie with a fresh expiry...
  const res = await fetch(`${node.url}/socket.io-sessions/token?renew=1`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } }); // as the page's own fetch sends it
  assert.equal(res.status, 200);
  const setCookie = res.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /^connect\.sid=/);
  const expires = /Expires=([^;]+)/i.exec(setCookie)?.[1];
  assert.ok(expires && Date.parse(expires) > Date.now() + MAX_AGE - 2000, `renewed cookie: ${setCookie}`);
  // ...for the same session, which a new socket can use long after the login cookie expired.
  const renewed = setCookie.split(';')[0]!;
  assert.equal(sidOf(renewed, [SECRET]), sidOf(cookie, [SECRET]));
  const again = await open(node, renewed, t);
  assert.deepEqual(sessionState(await again.timeout(2000).emitWithAck('state')), { counter: acked, user: 'active' });
});

/**
 * Round after round on two in-process nodes (per-connection mode): a socket on B has an unsaved
 * change; a logout over HTTP on A races the socket's own disconnect (whose save runs on B). The
 * rounds in which the session exists in Redis afterwards.
 */
async function logoutRacingDisconnect(t: { after(fn: () => unknown): void }, withLock: boolean, rounds = 20): Promise<number[]> {
  const nodes = [];
  for (let n = 0; n < 2; n += 1) {
    // A long save delay: the socket's change is still unsaved when the logout and the disconnect race.
    // With the lock, HTTP requests hold it too (mounted before express-session).
    nodes.push(await inProcessNode(t, { perMessage: false, saveDelay: 60_000, httpLock: withLock }, withLock));
  }
  const [a, b] = nodes as [InProcessNode, InProcessNode];
  b.server.sio.on('sconnection', (socket) => {
    socket.on('note', (value: string, ack: () => void) => {
      socket.session.note = value;
      ack();
    });
  });
  const resurrected: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const cookie = await a.server.login({ user: `u${round}` });
    const client = connectClient(b.server.url, cookie);
    t.after(() => client.close());
    await connected(client);
    await client.timeout(2000).emitWithAck('note', `changed ${round}`);
    // Vary which side starts first a little, so the save lands before, during and after the destroy.
    const logout = a.server.logout(cookie);
    if (round % 4 === 1) await delay(1);
    if (round % 4 === 2) await delay(5);
    client.disconnect();
    await logout;
    // Give the save-on-disconnect time to run (and, if it wrongly wrote, time to show up).
    await delay(150); // wall clock: a window (other processes) in which a wrong write would show up
    if ((await inspector.exists(`sess:${sidOf(cookie)}`)) !== 0) resurrected.push(round);
  }
  return resurrected;
}

test('saving on disconnect never brings back a session destroyed meanwhile: logout on node A racing a disconnect on node B (no lock)', async (t) => {
  const resurrected = await logoutRacingDisconnect(t, false);
  t.diagnostic(`no lock: session back after the logout in ${resurrected.length} of 20 rounds`);
  assert.deepEqual(resurrected, [], 'rounds whose session came back after the logout');
});

test('saving on disconnect never brings back a session destroyed meanwhile: logout on node A racing a disconnect on node B (Redis lock + httpLock)', async (t) => {
  const resurrected = await logoutRacingDisconnect(t, true);
  t.diagnostic(`lock: session back after the logout in ${resurrected.length} of 20 rounds`);
  assert.deepEqual(resurrected, [], 'rounds whose session came back after the logout');
});

test('regenerate() at login with sockets open: the old session\'s sockets on both nodes are told, and the SDK reconnects into the new session', async (t) => {
  const oldCookie = await login(nodeA, 'erin');
  const oldOnA = await open(nodeA, oldCookie, t);
  const heardOldA = record(oldOnA);
  const client = sdk(nodeB, oldCookie, t);
  await once(client.socket, 'connect', 5000);
  assert.deepEqual(sessionState(await client.socket.timeout(3000).emitWithAck('state')), { counter: 0, user: 'erin' });
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
  assert.deepEqual(sessionState(await client.socket.timeout(3000).emitWithAck('state')), { counter: 0, user: 'frank' });
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

// (A timeout of its own: in one full run this test never reported and its file was killed at 300 s, with
// no sign of where it waited; every wait in it is bounded now, so a repeat says which one.)
test("without the lock, two nodes: an async handler's save merges its key into the record read after its await, so an acked write of another key on the other node meanwhile stays", async (t) => {
  const a = await within(inProcessNode(t, { perMessage: true, revalidateInterval: 0 }), 15_000, 'node A started');
  const b = await within(inProcessNode(t, { perMessage: true, revalidateInterval: 0 }), 15_000, 'node B started');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  a.server.sio.on('sconnection', (socket) =>
    socket.on('slow', async (ack: (v: string) => void) => {
      started();
      await gate;
      socket.session.fromA = 'set';
      ack('ok');
    }),
  );
  b.server.sio.on('sconnection', (socket) =>
    socket.on('quick', (ack: (v: string) => void) => {
      socket.session.fromB = 'set';
      ack('ok');
    }),
  );
  const cookie = await within(a.server.login({ user: 'mallory' }), 10_000, 'login');
  const onA = connectClient(a.server.url, cookie);
  const onB = connectClient(b.server.url, cookie);
  t.after(() => (onA.close(), onB.close()));
  await within(Promise.all([connected(onA), connected(onB)]), 10_000, 'connected');
  const slow = onA.timeout(10_000).emitWithAck('slow');
  await running; // A's copy is loaded, its handler awaits
  assert.equal(await onB.timeout(10_000).emitWithAck('quick'), 'ok');
  release();
  assert.equal(await slow, 'ok');
  const stored = await within(a.server.httpSession(cookie), 10_000, 'GET /session');
  // Before: A wrote its whole copy, loaded before B's write: fromB was gone although acked.
  assert.deepEqual([stored.fromA, stored.fromB], ['set', 'set']);
});

test('without the lock, saves from two nodes merge per top-level key: taking turns loses nothing; at the same moment they can overwrite each other (as documented)', { timeout: 120_000 }, async (t) => {
  const a = await within(inProcessNode(t, { perMessage: true }), 15_000, 'node A started');
  const b = await within(inProcessNode(t, { perMessage: true }), 15_000, 'node B started');
  for (const node of [a, b]) {
    node.server.sio.on('sconnection', (socket) => {
      socket.on('bump', (key: string, ack: (n: number) => void) => {
        const n = ((socket.session[key] as number | undefined) ?? 0) + 1;
        socket.session[key] = n;
        ack(n);
      });
    });
  }
  const cookie = await within(a.server.login({ user: 'mallory' }), 10_000, 'login');
  const sockets: Array<[ClientSocket, string]> = [];
  for (const [node, key] of [[a, 'fromA'], [b, 'fromB']] as const) {
    for (let i = 0; i < 5; i += 1) {
      const client = connectClient(node.server.url, cookie);
      t.after(() => client.close());
      await within(connected(client), 10_000, `socket ${sockets.length} connected`);
      sockets.push([client, key]);
    }
  }
  // Taking turns (each save done before the other node's starts): every key's updates are kept.
  for (let round = 0; round < 20; round += 1) {
    for (const [client, key] of [sockets[0]!, sockets[5]!]) await client.timeout(10_000).emitWithAck('bump', `turns-${key}`);
  }
  const afterTurns = await within(a.server.httpSession(cookie), 10_000, 'GET /session after the turns');
  assert.deepEqual([afterTurns['turns-fromA'], afterTurns['turns-fromB']], [20, 20]);
  // At the same moment: the read-merge-write of one node can overwrite the other's key.
  await Promise.all(sockets.flatMap(([client, key]) => Array.from({ length: 100 }, () => client.timeout(30_000).emitWithAck('bump', key))));
  const stored = await within(a.server.httpSession(cookie), 10_000, 'GET /session at the end');
  t.diagnostic(`no lock, one key per node at the same moment: fromA ${stored.fromA}, fromB ${stored.fromB} (500 each sent)`);
  assert.ok((stored.fromA as number) <= 500 && (stored.fromB as number) <= 500);
  assert.ok((stored.fromA as number) > 0 && (stored.fromB as number) > 0, 'both keys are there');
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
  t.after(() => void (stop = true)); // a failed assertion below must not leave the traffic running (it kept the file alive)
  let failedSends = 0;
  const traffic = clients.map(async (c) => {
    while (!stop) {
      if (c.socket.connected) {
        try {
          const reply = (await c.socket.timeout(1000).emitWithAck('increment')) as { counter: number };
          if (noticeOf([reply])) throw new Error('a notice in place of the ack: the store was down');
          const { counter } = reply;
          ackedMax[c.session] = Math.max(ackedMax[c.session]!, counter);
          if (!restarting) ackedBefore[c.session] = Math.max(ackedBefore[c.session]!, counter);
        } catch {
          failedSends += 1; // no ack: the store was down (a notice in its place) or the socket dropped
        }
      }
      await delay(50); // wall clock: each client's pace
    }
  });
  await eventually(() => ackedBefore.every((n) => n > 0), 10_000).catch(() => undefined);
  assert.ok(ackedBefore.every((n) => n > 0), `acked before the restart: ${ackedBefore}`);

  // Stop Redis for a while, open new clients while it is down, then start it again (same data).
  restarting = true;
  const beforeCounts = [...ackedBefore];
  await redis.stop();
  await delay(300); // wall clock: Redis is down for a while before the late clients come
  const late = [nodeA, nodeB].map((node, i) => sdk(node, cookies[i]!, t));
  await delay(1200); // wall clock: Redis stays down for a real outage of ~1.5 s, long enough for clients to back off
  const downFor = 1500;
  await redis.start();
  const restartedAt = performance.now();
  // Lock keys right after the restart: ones taken just before the stop could not be released (Redis was
  // down) and came back from the AOF with the rest of their lease (PTTL well under the 10 s lease).
  const staleLocks = await inspector.keys('sio-sessions:lock:*').catch(() => [] as string[]);
  const staleTtls = await Promise.all(staleLocks.map((key) => inspector.pTTL(key).catch(() => -3)));

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
    assert.deepEqual(sessionState(await c.socket.timeout(3000).emitWithAck('state')), { counter: (await httpSession(nodeA, c.headers.cookie)).counter, user: names[late.indexOf(c)] });
  }

  const unavailable = [...clients, ...late].flatMap((c) => c.unavailable);
  t.diagnostic(
    `redis down ${downFor} ms; recovered ${recoveredIn.toFixed(0)} ms after restart; unavailable events: ` +
      `${unavailable.filter((u) => u.phase === 'connected').length} mid-connection, ${unavailable.filter((u) => u.phase === 'handshake').length} at handshake; ${failedSends} sends without ack; ` +
      `unavailable reasons ${JSON.stringify(countBy(unavailable.map((u) => u.reason)))}; lock keys right after the restart: ${staleLocks.length} (PTTL ${staleTtls.join(', ')} ms)`,
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
  // (That it works again, not how fast: the first test holds a logout to under a second. Right after a
  // restart, on a loaded machine, the subscriber may still be coming back.)
  const invalidOnB = once<[unknown]>(heard[1]!.socket, Events.INVALID, 5000);
  const started = performance.now();
  await logout(nodeA, cookies[0]!);
  assert.deepEqual((await invalidOnB)[0], INVALID_DESTROYED);
  t.diagnostic(`after the restart, cross-node logout took ${(performance.now() - started).toFixed(0)} ms`);
});
