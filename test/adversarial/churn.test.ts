// Resources stay bounded and nothing leaks: a long-running server that saw thousands of
// connections, logins, logouts, ticket handshakes, refused handshakes and HTTP requests holds, once
// nothing is connected and its work settled, what it held before (its per-session registries,
// runtimes, timers, carried reads; its heap, give or take). What it holds is read from the library's
// internals (test/helpers/internals.ts); the heap from a server in its own process.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStore } from 'express-session';
import { Server } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { sessions } from '../../src/server/index.js';
import { StoreHub } from '../../src/server/store.js';
import { DestroyedSet } from '../../src/server/destroyed-set.js';
import { WritesInFlight } from '../../src/server/writes-in-flight.js';
import { startServerProcess } from '../helpers/server-process.js';
import { connectClient, connected, delay, eventually, once, refused, sidOf, signedCookie, startServer, SECRET } from '../helpers/servers.js';
import { leftovers, serverSizes, type Sizes } from '../helpers/internals.js';
import { fakeClock } from '../helpers/fake-clock.js';
import { FaultyStore } from '../helpers/stores.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisNode, type RedisNode } from '../helpers/redis-node.js';

const CHURN_SERVER = fileURLToPath(new URL('./fixtures/churn-server.ts', import.meta.url));
const MB = 1024 * 1024;
/** Sizes of the runs (CHURN_SCALE=4 for a longer soak): a leak shows as something left over, whatever the count. */
const SCALE = Number(process.env.CHURN_SCALE ?? 1);
const CYCLES = 1000 * SCALE;
const REQUESTS = 1000 * SCALE;
const HANDSHAKES = 2500 * SCALE;

interface Stats {
  heapUsed: number;
  stored: number;
  sizes: Sizes;
}

async function post(url: string, path: string, cookie?: string): Promise<string | undefined> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: '{}' });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  await res.arrayBuffer();
  return res.headers.get('set-cookie')?.split(';')[0];
}

const login = async (url: string, cookie?: string) => (await post(url, '/login', cookie))!;

async function ticketOf(url: string, cookie: string): Promise<string> {
  const res = await fetch(`${url}/socket.io-sessions/token`, { headers: { cookie } });
  if (res.status !== 200) throw new Error(`token endpoint: HTTP ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

/** What the churn saw, to check every cycle did what a user relies on. */
interface Tally {
  acked: number;
  tickets: number;
  relogins: number;
  logouts: number;
  /** `sio-sessions:invalid` notices with reason 'destroyed', on the sockets whose session was replaced or ended. */
  destroyedNotices: number;
}

/**
 * One user's connection: connect (every 4th time with a ticket from the token endpoint, else the
 * cookie), an acked event that changes the session, now and then a login again (regenerate) or a
 * logout while connected (the socket must be told its session was destroyed), disconnect.
 * Returns the user's cookie for the next cycle.
 */
async function cycle(url: string, cookie: string, i: number, tally: Tally): Promise<string> {
  let socket: ClientSocket;
  if (i % 4 === 0) {
    socket = connectClient(url, undefined, { auth: { sessionTicket: await ticketOf(url, cookie) } });
    tally.tickets += 1;
  } else socket = connectClient(url, cookie);
  try {
    await connected(socket);
    await socket.timeout(5000).emitWithAck('inc');
    tally.acked += 1;
    if (i % 50 !== 25) return cookie;
    const told = once<[{ reason: string }]>(socket, 'sio-sessions:invalid');
    const logout = i % 100 === 75;
    const next = logout ? (await post(url, '/logout', cookie), await login(url)) : await login(url, cookie);
    const [{ reason }] = await told;
    if (reason === 'destroyed') tally.destroyedNotices += 1;
    if (logout) tally.logouts += 1;
    else tally.relogins += 1;
    return next;
  } finally {
    socket.close();
  }
}

/** `cycles` cycles spread over `users` users, one cycle at a time per user. */
async function churn(url: string, cookies: string[], cycles: number, tally: Tally): Promise<void> {
  let next = 0;
  await Promise.all(
    cookies.map(async (_, u) => {
      for (let i = next++; i < cycles; i = next++) cookies[u] = await cycle(url, cookies[u], i, tally);
    }),
  );
}

/** The stats once nothing is left over (within 3 s), or the last ones. */
async function settled(stats: () => Promise<Stats>): Promise<Stats> {
  let last = await stats();
  await eventually(async () => Object.keys(leftovers((last = await stats()).sizes)).length === 0, 3000, 50).catch(() => undefined);
  return last;
}

// The two modes side by side: each server is a process of its own, and the time is mostly waiting on the network.
describe(`${CYCLES.toLocaleString('en')} cycles per mode`, { concurrency: 2 }, () => {
  for (const perMessage of [false, true]) {
    const mode = perMessage ? 'per-message' : 'per-connection';
    it(`${mode}: after ${CYCLES.toLocaleString('en')} connect/emit/disconnect cycles (ticket handshakes, logins and logouts while connected among them) the server holds no per-session state and its heap is flat`, async (t) => {
      const { url } = await startServerProcess(t, CHURN_SERVER, { nodeArgs: ['--expose-gc'], env: { PER_MESSAGE: perMessage ? '1' : '0' } });
      const stats = async () => (await fetch(`${url}/stats`)).json() as Promise<Stats>;
      const cookies = await Promise.all(Array.from({ length: 16 }, () => login(url)));
      const warm: Tally = { acked: 0, tickets: 0, relogins: 0, logouts: 0, destroyedNotices: 0 };
      await churn(url, cookies, 200, warm);
      const before = await settled(stats);
      const tally: Tally = { acked: 0, tickets: 0, relogins: 0, logouts: 0, destroyedNotices: 0 };
      const started = Date.now();
      await churn(url, cookies, CYCLES, tally);
      const ms = Date.now() - started;
      // (socket.io's side of a closed connection goes a moment after the client closed it)
      const after = await settled(stats);
      const growthMb = (after.heapUsed - before.heapUsed) / MB;
      t.diagnostic(
        `${mode}: ${CYCLES} cycles in ${ms} ms (${tally.tickets} ticket handshakes, ${tally.relogins} logins and ${tally.logouts} logouts while connected, ` +
          `${tally.destroyedNotices} 'destroyed' notices); heap ${(before.heapUsed / MB).toFixed(1)} -> ${(after.heapUsed / MB).toFixed(1)} MB (+${growthMb.toFixed(2)}); ` +
          `sessions stored ${before.stored} -> ${after.stored}; sizes before ${JSON.stringify(before.sizes)} after ${JSON.stringify(after.sizes)}`,
      );
      assert.equal(tally.acked, CYCLES, 'every cycle had its event acked');
      assert.equal(tally.destroyedNotices, tally.relogins + tally.logouts, 'every socket whose session was replaced or ended was told so');
      assert.deepEqual(leftovers(after.sizes), {}, 'nothing per session or per connection is left once nothing is connected');
      assert.ok(after.sizes.timers <= before.sizes.timers, `timers keeping the server alive: ${before.sizes.timers} before, ${after.sizes.timers} after`);
      assert.equal(after.stored, before.stored, 'the store holds as many sessions as there are users: a destroyed session never came back');
      assert.ok(growthMb < 10, `server heap grew ${growthMb.toFixed(2)} MB over ${CYCLES} cycles (want < 10 MB)`);
    });
  }
});

test('sessions() created and closed 200 times on one io and store gives everything back: middlewares, listeners, the served script, the store\'s own methods; a closed instance checks no handshake', async (t) => {
  const store = new MemoryStore();
  const httpServer = createServer();
  const io = new Server(httpServer);
  t.after(() => new Promise<void>((resolve) => io.close(() => resolve())));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  const namespace = io.of('/') as unknown as { _fns: unknown[]; listenerCount(event: string): number };
  const counts = () => ({
    middlewares: namespace._fns.length,
    connectionListeners: namespace.listenerCount('connection'),
    destroyRelayListeners: namespace.listenerCount('sio-sessions:destroyed'),
    requestListeners: httpServer.listenerCount('request'),
    storeListeners: store.eventNames().reduce((sum, name) => sum + store.listenerCount(name), 0),
    storeOwnMethods: ['get', 'set', 'destroy', 'touch', 'clear'].filter((name) => Object.hasOwn(store, name)).length,
  });
  const baseline = counts();
  let open: ReturnType<typeof counts> | undefined;
  for (let i = 0; i < 200; i++) {
    const sio = sessions(io, { store, secret: SECRET });
    open ??= counts();
    sio.close();
  }
  const after = counts();
  t.diagnostic(`baseline ${JSON.stringify(baseline)}; one open ${JSON.stringify(open)}; after 200 created and closed ${JSON.stringify(after)}`);
  // socket.io cannot take a middleware back: the namespace keeps one dispatcher (per process, whatever the
  // number of instances), which lets every socket through once no instance is open (checked below).
  assert.equal(open!.middlewares, baseline.middlewares + 1, 'one middleware for an open instance');
  assert.deepEqual(after, { ...baseline, middlewares: baseline.middlewares + 1 }, 'everything else one instance added is given back at its close()');
  assert.equal(store.set, MemoryStore.prototype.set, "the store's own set again");
  assert.equal(store.destroy, MemoryStore.prototype.destroy, "the store's own destroy again");
  assert.equal(StoreHub.of(store), undefined, 'no hub left for the store');
  // With every instance closed, the namespace is the app's again: a socket without any session connects.
  const plain = connectClient(url);
  t.after(() => plain.close());
  await connected(plain);
});

test(`the token endpoint and the served script, asked ${REQUESTS.toLocaleString('en')} times with valid, unknown and badly signed cookies, keep nothing once the moment a read may stand in for a handshake is over`, async (t) => {
  const server = await startServer({ sessionCookie: { maxAge: 60 * 60_000 } });
  t.after(() => server.close());
  const cookies = await Promise.all(Array.from({ length: 8 }, () => server.login()));
  const unknown = signedCookie('no-such-session-' + 'x'.repeat(16));
  const badlySigned = cookies[0].replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
  const script = `${server.url}/socket.io/socket.io-sessions.js`;
  const statuses = new Map<string, number>();
  const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
  const ask = async (i: number) => {
    const cookie = i % 5 === 3 ? unknown : i % 5 === 4 ? badlySigned : cookies[i % cookies.length];
    const renew = i % 10 === 0 ? '?renew=1' : '';
    if (i % 2 === 0) {
      const res = await fetch(`${server.url}/socket.io-sessions/token${renew}`, { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
      await res.arrayBuffer();
      count(`token ${res.status}`);
    } else {
      const res = await fetch(script + renew, { headers: { cookie, 'sec-fetch-site': 'same-origin' } });
      count((await res.text()).endsWith('.ticket=null;\n') ? 'script without ticket' : 'script with ticket');
    }
  };
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < REQUESTS; i = next++) await ask(i);
  }));
  const ms = Date.now() - started;
  const atEnd = serverSizes(server);
  await server.sio.flush();
  let after = atEnd;
  const gone = await eventually(() => Object.keys(leftovers((after = serverSizes(server)))).length === 0, 5000, 100).then(() => Date.now() - started - ms, () => undefined);
  t.diagnostic(
    `${REQUESTS} requests in ${ms} ms: ${JSON.stringify(Object.fromEntries(statuses))}; right after ${JSON.stringify(atEnd)}; ` +
      (gone === undefined ? `still held 5 s later: ${JSON.stringify(leftovers(after))}` : `nothing held ${gone} ms later`),
  );
  assert.deepEqual(Object.fromEntries(statuses), { 'token 200': (REQUESTS * 3) / 10, 'token 401': REQUESTS / 5, 'script with ticket': (REQUESTS * 3) / 10, 'script without ticket': REQUESTS / 5 });
  assert.deepEqual(leftovers(after), {}, 'nothing is held for the requests within 5 s (a read stands in for a handshake for 2 s)');
});

test(`a flood of ${HANDSHAKES.toLocaleString('en')} handshakes with garbage, badly signed and unknown cookies, garbage tickets and foreign origins: each gets its typed refusal, a user is answered within a second meanwhile, and nothing is left per handshake`, async (t) => {
  const { url } = await startServerProcess(t, CHURN_SERVER, { nodeArgs: ['--expose-gc'] });
  const stats = async () => (await fetch(`${url}/stats`)).json() as Promise<Stats>;
  const cookie = await login(url);
  const { token } = await (await fetch(`${url}/socket.io-sessions/token`, { headers: { cookie } })).json() as { token: string };
  const [header, , iv, ciphertext, tag] = token.split('.');
  const flip = (part: string) => part.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
  // What each handshake presents, and the refusal it must get.
  const kinds: Array<{ name: string; expected: { code: string; reason?: string }; connect(i: number): ClientSocket }> = [
    { name: 'no cookie', expected: { code: 'SESSION_INVALID', reason: 'no-session-id' }, connect: () => connectClient(url) },
    { name: 'garbage cookie', expected: { code: 'SESSION_INVALID', reason: 'bad-signature' }, connect: (i) => connectClient(url, `connect.sid=s:${i}.garbage`) },
    { name: 'cookie signed with another secret', expected: { code: 'SESSION_INVALID', reason: 'bad-signature' }, connect: () => connectClient(url, signedCookie(sidOf(cookie), 'not our secret')) },
    { name: 'unknown session', expected: { code: 'SESSION_INVALID', reason: 'not-found' }, connect: (i) => connectClient(url, signedCookie(`unknown-${i}-${Math.random()}`)) },
    { name: 'garbage ticket', expected: { code: 'SESSION_INVALID', reason: 'ticket-malformed' }, connect: (i) => connectClient(url, undefined, { auth: { sessionTicket: `garbage.${i}` } }) },
    { name: 'tampered ticket', expected: { code: 'SESSION_INVALID', reason: 'ticket-tampered' }, connect: () => connectClient(url, undefined, { auth: { sessionTicket: [header, '', iv, flip(ciphertext), tag].join('.') } }) },
    { name: 'foreign origin', expected: { code: 'ORIGIN_NOT_ALLOWED' }, connect: () => connectClient(url, cookie, { extraHeaders: { origin: 'http://evil.example' } }) },
  ];
  const before = await settled(stats);

  // A well-behaved user, connected before the flood, asks every 100 ms meanwhile; every 5th time
  // it also connects anew (a handshake of its own among the flood's).
  const user = connectClient(url, cookie);
  t.after(() => user.close());
  await connected(user);
  let flooding = true;
  const latencies: number[] = [];
  const handshakes: number[] = [];
  const asking = (async () => {
    for (let i = 0; flooding; i++) {
      let sent = Date.now();
      await user.timeout(5000).emitWithAck('inc');
      latencies.push(Date.now() - sent);
      if (i % 5 === 4) {
        sent = Date.now();
        const again = connectClient(url, cookie);
        await connected(again).finally(() => again.close());
        handshakes.push(Date.now() - sent);
      }
      await delay(100); // wall clock: a user's pace between requests, while the flood runs
    }
  })();

  const wrong: string[] = [];
  const refusals = new Map<string, number>();
  let next = 0;
  const started = Date.now();
  // 16 handshakes in flight at a time: as fast as this machine makes them.
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < HANDSHAKES; i = next++) {
      const kind = kinds[i % kinds.length];
      const socket = kind.connect(i);
      try {
        const { data } = await refused(socket);
        const got = { code: data?.code, ...(kind.expected.reason ? { reason: data?.reason } : {}) };
        if (JSON.stringify(got) !== JSON.stringify(kind.expected)) wrong.push(`${kind.name}: ${JSON.stringify(data)}`);
        else refusals.set(kind.name, (refusals.get(kind.name) ?? 0) + 1);
      } catch (err) {
        wrong.push(`${kind.name}: ${(err as Error).message}`);
      } finally {
        socket.close();
      }
    }
  }));
  const ms = Date.now() - started;
  flooding = false;
  await asking;
  user.close();
  const after = await settled(stats);
  const growthMb = (after.heapUsed - before.heapUsed) / MB;
  const worst = Math.max(...latencies);
  const worstHandshake = Math.max(...handshakes);
  t.diagnostic(
    `${HANDSHAKES} handshakes refused in ${ms} ms: ${JSON.stringify(Object.fromEntries(refusals))}; wrong ${wrong.length}${wrong.length ? ` (first: ${wrong[0]})` : ''}; ` +
      `the user's ${latencies.length} acked events meanwhile: worst ${worst} ms, median ${latencies.sort((a, b) => a - b)[latencies.length >> 1]} ms; its ${handshakes.length} handshakes: worst ${worstHandshake} ms; ` +
      `heap ${(before.heapUsed / MB).toFixed(1)} -> ${(after.heapUsed / MB).toFixed(1)} MB (+${growthMb.toFixed(2)}); sizes after ${JSON.stringify(after.sizes)}`,
  );
  assert.deepEqual(wrong, [], 'every handshake got the refusal its credential calls for');
  assert.ok(worst < 1000, `the connected user waited ${worst} ms for an ack during the flood (want < 1000 ms)`);
  assert.ok(worstHandshake < 1000, `the user's own handshake took ${worstHandshake} ms during the flood (want < 1000 ms)`);
  assert.deepEqual(leftovers(after.sizes), {}, 'nothing is left per handshake');
  assert.ok(after.sizes.timers <= before.sizes.timers, `timers keeping the server alive: ${before.sizes.timers} before, ${after.sizes.timers} after`);
  assert.ok(growthMb < 10, `server heap grew ${growthMb.toFixed(2)} MB over ${HANDSHAKES} refused handshakes (want < 10 MB)`);
});

test('per-message, a store taking 3 ms a call: 300 sockets that each have an event acked, send 19 more and leave at once leave nothing behind, and every event that ran is saved', async (t) => {
  const store = new FaultyStore({ latency: 3 });
  const server = await startServer({ store, perMessage: true });
  t.after(() => server.close());
  let runs = 0;
  server.sio.on('sconnection', (socket) =>
    socket.on('work', (ack?: () => void) => {
      runs += 1;
      socket.session.counter = (socket.session.counter ?? 0) + 1;
      ack?.();
    }),
  );
  const cookies = await Promise.all(Array.from({ length: 10 }, () => server.login()));
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: 30 }, async () => {
    for (let i = next++; i < 300; i = next++) {
      const socket = connectClient(server.url, cookies[i % cookies.length]);
      await connected(socket);
      await socket.timeout(5000).emitWithAck('work');
      for (let e = 1; e < 20; e++) socket.emit('work');
      socket.close();
    }
  }));
  await server.sio.flush();
  let after = serverSizes(server);
  await eventually(() => Object.keys(leftovers((after = serverSizes(server)))).length === 0, 3000, 50).catch(() => undefined);
  const saved = cookies.reduce((sum, cookie) => sum + (((store.peek(sidOf(cookie)) as { counter?: number } | undefined)?.counter) ?? 0), 0);
  t.diagnostic(`300 sockets x (1 acked + 19) events in ${Date.now() - started} ms: ${runs} handler runs (the rest dropped with their socket), ${saved} counted in the store; sizes after ${JSON.stringify(after)}`);
  assert.deepEqual(leftovers(after), {}, 'nothing is left of the sockets that left with work queued');
  assert.equal(saved, runs, 'every event that ran is in the store, though its socket left right after sending it');
  assert.ok(runs >= 300 && runs < 6000, `${runs} runs: each acked event ran, work still waiting when its socket left was dropped`);
});

test('what a burst of logouts and writes leaves in the destroyed set and the writes in flight is forgotten when due, though no call follows (an idle server gives it back), on one armed sweep each', (t) => {
  // A clock and timers of our own: 10 minutes pass in no time.
  const clock = fakeClock();
  const now = () => clock.now;
  const writes = new WritesInFlight(5000, 10 * 60_000, now, clock.schedule);
  const stones = new DestroyedSet(writes, 10 * 60_000, now, 100_000, clock.schedule);
  const sizes = () => ({ tombstones: stones.size, writes: writes.size });
  const { advance } = clock;
  for (let i = 0; i < 1000; i++) {
    clock.now = i;
    writes.started(`w${i}`, `sid${i}`);
    writes.ended(`w${i}`);
    stones.writeEnded(`w${i}`);
    stones.destroying(`d${i}`);
    stones.destroyed(`d${i}`, true);
  }
  const burst = sizes();
  advance(7000);
  const afterRaceWindow = sizes();
  advance(11 * 60_000);
  const afterKeep = sizes();
  t.diagnostic(`after the burst ${JSON.stringify(burst)}; 7 s later ${JSON.stringify(afterRaceWindow)}; 11 min later ${JSON.stringify(afterKeep)}; sweeps armed at once at most ${clock.mostArmed}, left armed ${clock.timers.length}`);
  assert.deepEqual(burst, { tombstones: 1000, writes: 1000 });
  assert.deepEqual(afterRaceWindow, { tombstones: 1000, writes: 0 }, 'write records are forgotten once past the race window');
  assert.deepEqual(afterKeep, { tombstones: 0, writes: 0 }, 'tombstones are forgotten once past keepMs');
  assert.equal(clock.mostArmed, 2, 'one sweep armed at a time in each of the two, not a timer per record');
  assert.equal(clock.timers.length, 0, 'nothing armed once nothing is held');
});

test('two nodes over Redis (per-message, redisLock): 400 cycles alternating nodes, with logins on the other node while connected, leave nothing on either node once the race window is over', async (t) => {
  const redis = await startRedis();
  const nodes: RedisNode[] = [];
  // The nodes first (their Redis clients quit), then Redis.
  t.after(async () => {
    await Promise.allSettled(nodes.map((node) => node.close()));
    await redis.dispose();
  });
  for (let n = 0; n < 2; n++) nodes.push(await startRedisNode(redis.url, { perMessage: true, redisLock: true }));
  for (const { server } of nodes) {
    server.sio.on('serror', () => {});
    server.sio.on('sconnection', (socket) =>
      socket.on('inc', (ack: () => void) => {
        socket.session.counter = (socket.session.counter ?? 0) + 1;
        ack();
      }),
    );
  }
  const [a, b] = nodes.map((node) => node.server);
  const cookies = await Promise.all(Array.from({ length: 8 }, () => a.login()));
  let acked = 0;
  let told = 0;
  let relogins = 0;
  let next = 0;
  const started = Date.now();
  await Promise.all(cookies.map(async (_, u) => {
    for (let i = next++; i < 400; i = next++) {
      const [here, there] = i % 2 === 0 ? [a, b] : [b, a];
      const socket = connectClient(here.url, cookies[u]);
      try {
        await connected(socket);
        await socket.timeout(5000).emitWithAck('inc');
        acked += 1;
        if (i % 20 !== 10) continue;
        // Logged in again through the other node: this node hears of the destroy through the adapter.
        const notice = once<[{ reason: string }]>(socket, 'sio-sessions:invalid');
        cookies[u] = await login(there.url, cookies[u]);
        relogins += 1;
        if ((await notice)[0].reason === 'destroyed') told += 1;
      } finally {
        socket.close();
      }
    }
  }));
  const ms = Date.now() - started;
  await Promise.all([a.sio.flush(), b.sio.flush()]);
  const atEnd = [serverSizes(a), serverSizes(b)];
  let after = atEnd;
  const quiet = (sizes: Sizes[]) => sizes.every((s) => Object.keys(leftovers(s)).length === 0);
  await eventually(() => quiet((after = [serverSizes(a), serverSizes(b)])), 10_000, 200).catch(() => undefined);
  t.diagnostic(
    `400 cycles in ${ms} ms, ${relogins} logins on the other node while connected, ${told} 'destroyed' notices; ` +
      `right after: ${JSON.stringify(atEnd)}; ${Date.now() - started - ms} ms later: ${JSON.stringify(after)}`,
  );
  assert.equal(acked, 400, 'every cycle had its event acked');
  assert.equal(told, relogins, 'every socket whose session was replaced on the other node was told');
  assert.deepEqual(after.map(leftovers), [{}, {}], 'nothing per session left on either node (write records kept for the race window are forgotten after it)');
});

test('closing the server with sockets connected (changes waiting for saveDelay, ticket sockets) saves the changes and leaves no timer keeping the process alive', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
  const before = timers();
  const store = new FaultyStore();
  const server = await startServer({ store, saveDelay: 60_000 });
  server.sio.on('sconnection', (socket) =>
    socket.on('inc', (ack: () => void) => {
      socket.session.counter = (socket.session.counter ?? 0) + 1;
      ack();
    }),
  );
  const cookies = await Promise.all(Array.from({ length: 20 }, () => server.login()));
  const sockets = await Promise.all(
    cookies.map(async (cookie, i) => {
      const socket = i % 2 === 0 ? connectClient(server.url, cookie) : connectClient(server.url, undefined, { auth: { sessionTicket: (await server.ticket(cookie)).token } });
      await connected(socket);
      await socket.timeout(5000).emitWithAck('inc');
      return socket;
    }),
  );
  const connectedTimers = timers();
  await server.close();
  await server.sio.flush();
  sockets.forEach((socket) => socket.close());
  let after = timers();
  await eventually(() => (after = timers()) <= before, 3000, 50).catch(() => undefined);
  const saved = cookies.filter((cookie) => (store.peek(sidOf(cookie)) as { counter?: number } | undefined)?.counter === 1).length;
  t.diagnostic(`timers keeping the process alive: ${before} before, ${connectedTimers} with 20 sockets connected, ${after} after close; changes saved at close: ${saved} of 20; sizes ${JSON.stringify(serverSizes(server))}`);
  assert.equal(saved, 20, 'every change still waiting for saveDelay is saved when the server closes');
  assert.ok(after <= before, `timers keeping the process alive after close: ${after} (before: ${before})`);
});
