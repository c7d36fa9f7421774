// Every store, lock and network wait has a deadline, and no lock is left stuck (redisLock +
// httpLock on a real redis-server, connect-redis, per-message mode).
//
// A frozen Redis (SIGSTOP: connections stay open, nothing answers, as with a stalled VM or disk)
// must not hang socket events or HTTP: per-message events get `sio-sessions:unavailable` within
// about the lock's `wait`, events queued meanwhile do not each wait again, HTTP behind
// `sio.httpLock()` answers 503, and after SIGCONT everything works again within a few seconds. An
// event told "unavailable" never runs later. And an HTTP client that gives up while its request
// waits for the session's lock must not leave the lock held.
import { test, before, after } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { RedisStore } from 'connect-redis';
import type express from 'express';
import { redisLock, type SessionServer } from '../../src/server/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { emit } from '../helpers/acks.js';
import { startServer, connectClient, connected, delay, eventually, sidOf } from '../helpers/servers.js';

const WAIT_MS = 1000;
const FREEZE_MS = 6000;

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis?.dispose()); // thaws first

/** A per-message server on Redis with the lock, HTTP requests behind httpLock, and `inc` / `slow` events. */
async function lockedServer(t: { after(fn: () => unknown): void }, { handlerTimeout, routes }: { handlerTimeout?: number; routes?: (app: express.Express) => void } = {}) {
  const redisClient = createClient({ url: redis.url, disableOfflineQueue: true });
  redisClient.on('error', () => {});
  await redisClient.connect();
  const holder: { sio?: SessionServer; lock?: express.RequestHandler } = {};
  const server = await startServer({
    store: new RedisStore({ client: redisClient }),
    perMessage: true,
    storeTimeout: WAIT_MS,
    lock: redisLock(redisClient, { wait: WAIT_MS }),
    // Before express-session: HTTP requests of a session hold its lock until they are answered.
    routes: (app) => {
      app.use((req, res, next) => (holder.lock ??= holder.sio!.httpLock() as express.RequestHandler)(req, res, next));
      routes?.(app);
    },
    ...(handlerTimeout ? { handlerTimeout } : {}),
  });
  holder.sio = server.sio;
  // The server first, then its Redis client: closing releases the locks its units still hold. With the
  // client destroyed first, each release failed and was retried every 100 ms until its lease ran out,
  // holding the file's process open for up to 5 s after its last test.
  t.after(async () => {
    await server.close();
    await server.sio.flush();
    redisClient.destroy();
  });
  server.sio.on('serror', () => {});
  /** Events whose handler began (a signal to wait on instead of a sleep). */
  const began: string[] = [];
  server.sio.on('sconnection', (socket) => {
    socket.on('inc', (ack: (n: number) => void) => {
      socket.session.counter = ((socket.session.counter as number | undefined) ?? 0) + 1;
      ack(socket.session.counter as number);
    });
    socket.on('slow', async (ack: () => void) => {
      began.push('slow');
      await delay(800); // wall clock: the app's slow work, holding the session's lock meanwhile
      ack();
    });
  });
  return { server, redisClient, began };
}

test('a frozen Redis: events get "unavailable" within ~wait (queued ones too, not one wait each), HTTP behind httpLock gets 503, and all works again after it thaws', async (t) => {
  t.after(() => redis.thaw()); // even when an assertion failed
  const { server, redisClient } = await lockedServer(t);

  const cookie = await server.login({ user: 'alice' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  let acked = 0;
  const inc = (ms: number) => client.timeout(ms).emitWithAck('inc').then(() => void acked++);
  await inc(3000);

  const notices: Array<{ at: number; data: { code?: string; reason?: string } }> = [];
  client.on('sio-sessions:unavailable', (data) => notices.push({ at: performance.now(), data }));
  const noticesBy = async (count: number, deadline: number) => {
    while (notices.length < count && performance.now() < deadline) await delay(20);
    return notices.length >= count ? notices[count - 1]!.at : undefined;
  };

  redis.freeze();
  const frozenAt = performance.now();
  // One acked event, and an HTTP request behind httpLock, at once.
  // Events sent while Redis was frozen: each is answered by a notice as its ack, never by its ack.
  const frozen = [emit(client, 'inc')];
  const http = fetch(`${server.url}/session`, { headers: { cookie }, signal: AbortSignal.timeout(5000) }).then(
    async (res) => ({ status: res.status, body: (await res.json().catch(() => undefined)) as { code?: string } | undefined, ms: performance.now() - frozenAt }),
    (err: Error) => ({ status: 0, body: undefined, ms: performance.now() - frozenAt, error: err.name }),
  );
  const firstAt = await noticesBy(1, frozenAt + 4000);
  // Five more events while still frozen.
  const burstAt = performance.now();
  for (let i = 0; i < 5; i++) frozen.push(emit(client, 'inc'));
  const burstDoneAt = await noticesBy(1 + 5, burstAt + 5000);
  const httpResult = await http;
  await delay(Math.max(0, FREEZE_MS - (performance.now() - frozenAt)));

  redis.thaw();
  const thawedAt = performance.now();
  let recoveredMs: number | undefined;
  while (performance.now() - thawedAt < 8000) {
    const ok = await inc(1500).then(() => true, () => false);
    if (ok) {
      recoveredMs = performance.now() - thawedAt;
      break;
    }
    await delay(100); // a poll, bounded by the loop's 8 s
  }
  await delay(300); // wall clock: a window in which anything still running for the timed-out events would land
  const stored = (JSON.parse((await redisClient.get(`sess:${sidOf(cookie)}`)) ?? '{}') as { counter?: number }).counter;
  const httpAfterStarted = performance.now();
  const httpAfter = await fetch(`${server.url}/session`, { headers: { cookie }, signal: AbortSignal.timeout(5000) }).then(
    async (res) => `${res.status} ${await res.text()}`,
    (err: Error) => err.name,
  );
  const httpAfterMs = performance.now() - httpAfterStarted;

  const frozenAcks = frozen.filter((a) => a.args !== undefined && !a.notice).length;
  const fmt = (at: number | undefined, from: number) => (at === undefined ? 'never' : `${(at - from).toFixed(0)} ms`);
  t.diagnostic(
    `first event: unavailable after ${fmt(firstAt, frozenAt)}; 5 queued: 5 notices after ${fmt(burstDoneAt, burstAt)} (${notices.length} notices in all: ${JSON.stringify(notices.map((n) => n.data.reason))}); ` +
      `HTTP: ${httpResult.status || (httpResult as { error?: string }).error} ${JSON.stringify(httpResult.body)} after ${httpResult.ms.toFixed(0)} ms; ` +
      `after thaw: an event succeeded after ${recoveredMs === undefined ? 'never' : `${recoveredMs.toFixed(0)} ms`}; acks ${acked} (+${frozenAcks} of events sent while frozen), stored counter ${String(stored)}; HTTP then: ${httpAfter} in ${httpAfterMs.toFixed(0)} ms`,
  );

  assert.ok(firstAt !== undefined && firstAt - frozenAt < 2500, `first event: unavailable after ${fmt(firstAt, frozenAt)} (want < 2500 ms)`);
  assert.equal(notices[0]!.data.code, 'SESSION_UNAVAILABLE');
  assert.ok(burstDoneAt !== undefined && burstDoneAt - burstAt < 3500, `5 queued events: all told unavailable after ${fmt(burstDoneAt, burstAt)} (want < 3500 ms)`);
  assert.equal(httpResult.status, 503, `HTTP behind httpLock: ${httpResult.status || 'no answer'} after ${httpResult.ms.toFixed(0)} ms`);
  assert.equal(httpResult.body?.code, 'SESSION_UNAVAILABLE');
  assert.ok(httpResult.ms < 2500, `HTTP 503 after ${httpResult.ms.toFixed(0)} ms (want < 2500 ms)`);
  // A lock taken by a SET that Redis answers only after the thaw has expired by one lease (5 s) at the latest.
  assert.ok(recoveredMs !== undefined && recoveredMs < 6000, `after SIGCONT an acked event succeeded after ${recoveredMs?.toFixed(0) ?? 'never'} ms (want < 6000 ms)`);
  assert.match(httpAfter, /^200 /, 'HTTP behind httpLock works again after the thaw (no lock left stuck)');
  assert.equal(frozenAcks, 0, 'no event sent while Redis was frozen (told "unavailable") is acked later');
  assert.deepEqual(frozen.map((a) => a.notice?.code), Array(6).fill('SESSION_UNAVAILABLE'), 'each got one notice as its ack');
  assert.equal(stored, acked, 'the stored counter counts exactly the acked events: none told "unavailable" ran later');
});

test('an HTTP client that gives up while its request waits for the session lock leaves no lock behind: later requests and events of that session are served', async (t) => {
  const { server, began } = await lockedServer(t);
  const cookie = await server.login({ user: 'alice' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const slow = client.timeout(5000).emitWithAck('slow'); // the socket's unit holds the lock ~800 ms
  await eventually(() => began.includes('slow'));
  // The browser tab closes (or a proxy times out) while the request waits behind that unit.
  const gaveUp = await fetch(`${server.url}/session`, { headers: { cookie }, signal: AbortSignal.timeout(300) }).then(
    () => 'answered',
    (err: Error) => err.name,
  );
  await slow;
  await delay(200); // wall clock: the abandoned request's turn (server side, nothing to wait on) comes and goes meanwhile
  const started = performance.now();
  const later = await fetch(`${server.url}/session`, { headers: { cookie }, signal: AbortSignal.timeout(5000) }).then(
    async (res) => `${res.status} ${await res.text()}`,
    (err: Error) => err.name,
  );
  const laterMs = performance.now() - started;
  const event = await client.timeout(3000).emitWithAck('inc').then(
    (n: number) => `acked ${n}`,
    (err: Error) => err.message,
  );
  t.diagnostic(`first request: ${gaveUp}; a later request: ${later} after ${laterMs.toFixed(0)} ms; a later event: ${event}`);
  assert.equal(gaveUp, 'TimeoutError', 'the first request was still waiting when its client gave up');
  assert.match(later, /^200 /, 'a later HTTP request of the session is served');
  assert.ok(laterMs < 1000, `and at once (${laterMs.toFixed(0)} ms)`);
  assert.equal(event, 'acked 1', 'a later event of the session runs');
});

test('a request behind httpLock that never ends holds the session lock for handlerTimeout at most, as the turn of one node: an event after it is acked', async (t) => {
  const hung: Array<() => void> = [];
  const { server } = await lockedServer(t, { handlerTimeout: 500, routes: (app) => app.get('/hang', (_req, res) => void hung.push(() => res.end('late'))) });
  const cookie = await server.login({ user: 'alice' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const abort = new AbortController();
  const request = fetch(`${server.url}/hang`, { headers: { cookie }, signal: abort.signal }).catch(() => undefined);
  try {
    await eventually(() => hung.length === 1); // the request holds the lock: its route runs, and never answers
    const event = await client.timeout(WAIT_MS + 3000).emitWithAck('inc');
    // Before: the lock's keep-alive held it as long as the request ran: the event got a lock-timeout notice after WAIT_MS.
    assert.equal(event, 1);
  } finally {
    // (Before the server closes, which waits for its requests.)
    for (const answer of hung) answer();
    abort.abort();
    await request;
  }
});

test('a release that failed (Redis gone) is retried in the background, but that retry does not hold the process: it ends once nothing else is left, not when the lease (60 s) runs out', { timeout: 30_000 }, () => {
  const fixture = fileURLToPath(new URL('../fixtures/lock-release-exit.ts', import.meta.url));
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', fixture, redis.url], { encoding: 'utf8', timeout: 20_000 });
  // Before: its retry's timers (every 100 ms until the lease ran out) held it, so the 20 s limit killed it.
  assert.deepEqual({ status: run.status, signal: run.signal }, { status: 0, signal: null }, `ended after ${Date.now() - started} ms\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /release failed/);
});
