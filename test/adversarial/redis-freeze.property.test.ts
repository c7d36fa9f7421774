// Invariant 5 (docs/architecture.md#invariants) with the Redis lock (issue 15 case 9): a real redis-server frozen (SIGSTOP)
// at a random moment of a per-message burst, so the freeze lands before, inside or after a lock
// acquire, a store read or save, a lock release, a lease extension or a release retry. Measured
// on main at 30e5c4f: 1 run in 7 answered its events only when Redis woke (12.16 s) instead of after
// about `wait`.
//
// Judged after each run: every event sent is answered (its ack, or one "unavailable" notice) before
// Redis is thawed, within its deadline chain (lock `wait`, then the store calls' `storeTimeout`);
// after the thaw the session is served again within one lease, and every acked increment is stored.
//
// A failure prints the seed; replay with FC_SEED=<seed> FC_PATH=<path> (FC_RUNS raises the runs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createClient } from 'redis';
import { RedisStore } from 'connect-redis';
import type express from 'express';
import { redisLock, type SessionServer } from '../../src/server/index.js';
import { Events, noticeOf } from '../../src/protocol.js';
import { connectWithSession } from '../../src/client/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer, connectClient, connected, delay, sidOf } from '../helpers/servers.js';

const WAIT_MS = 200;
const STORE_TIMEOUT_MS = 200;
const LEASE_MS = 600;
/** Frozen for longer than any deadline chain, so an event answered only at the thaw is caught. */
const FREEZE_MS = 1600;
/** The longest an event may wait: the lock's wait, then a reload and a save of storeTimeout each, plus a loaded machine's slack. */
const ANSWER_BY_MS = WAIT_MS + 3 * STORE_TIMEOUT_MS + 600;

interface Run {
  /** Events sent at these offsets (ms) from the start of the burst. */
  sends: number[];
  /** How long each handler holds the lock (ms), so the freeze can land on the release. */
  handlerMs: number;
  /** When Redis is frozen, from the start of the burst (ms; fractional: between two commands too). */
  freezeAt: number;
  /** An HTTP write of the session behind httpLock at this offset (ms), if any. */
  httpAt: number | undefined;
}

const runs: fc.Arbitrary<Run> = fc.record({
  sends: fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 6 }).map((a) => a.sort((x, y) => x - y)),
  handlerMs: fc.constantFrom(0, 0, 5, 20),
  freezeAt: fc.double({ min: 0, max: 40, noNaN: true }),
  httpAt: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
});

let redis: TestRedis;
before(async () => {
  redis = await startRedis({ args: ['--appendonly', 'no'] });
});
after(() => redis?.dispose()); // thaws first

async function run({ sends, handlerMs, freezeAt, httpAt }: Run): Promise<string[]> {
  const problems: string[] = [];
  const client = createClient({ url: redis.url, disableOfflineQueue: true });
  client.on('error', () => {});
  await client.connect();
  const holder: { sio?: SessionServer; lock?: express.RequestHandler } = {};
  const server = await startServer({
    store: new RedisStore({ client }),
    perMessage: true,
    storeTimeout: STORE_TIMEOUT_MS,
    revalidateInterval: 0, // a failed revalidation notifies every socket: the count of answers would not be the events'
    lock: redisLock(client, { wait: WAIT_MS, lease: LEASE_MS }),
    routes: (app) => app.use((req, res, next) => (holder.lock ??= holder.sio!.httpLock() as express.RequestHandler)(req, res, next)),
  });
  holder.sio = server.sio;
  server.sio.on('serror', () => {});
  server.sio.on('sconnection', (socket) => {
    socket.on('inc', async (ack: (n: number) => void) => {
      if (handlerMs) await delay(handlerMs);
      socket.session.counter = ((socket.session.counter as number | undefined) ?? 0) + 1;
      ack(socket.session.counter as number);
    });
  });
  const cookie = await server.login({ counter: 0 });
  const socket = connectClient(server.url, cookie);
  try {
    await connected(socket);
    const sent: Array<{ at: number; acked?: number; noticed?: number }> = [];
    const notices: number[] = [];
    socket.on(Events.UNAVAILABLE, () => notices.push(Date.now()));
    const start = Date.now();
    const emits = sends.map((offset) =>
      delay(offset).then(() => {
        const event: { at: number; acked?: number; noticed?: number } = { at: Date.now() };
        sent.push(event);
        socket.emit('inc', (...args: unknown[]) => {
          if (noticeOf(args)) event.noticed = Date.now();
          else event.acked = Date.now();
        });
      }),
    );
    const http =
      httpAt === undefined
        ? undefined
        : delay(httpAt).then(() => fetch(`${server.url}/session`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"note":1}', signal: AbortSignal.timeout(FREEZE_MS + 3000) }).catch(() => undefined));
    await new Promise<void>((resolve) => setTimeout(resolve, freezeAt)).then(() => redis.freeze());
    const frozenAt = Date.now();
    await Promise.all(emits);
    await delay(FREEZE_MS - (Date.now() - frozenAt));
    // Answers are per emit (its ack, or a notice as its ack); the socket-level `unavailable` pushes are status signals.
    const answeredBeforeThaw = sent.filter((e) => e.acked !== undefined || e.noticed !== undefined).length;
    const late = [...sent.flatMap((e) => [e.acked, e.noticed]), ...notices].filter((t): t is number => t !== undefined);
    redis.thaw();
    await http;
    if (answeredBeforeThaw !== sent.length) {
      problems.push(`${sent.length} events, ${answeredBeforeThaw} answered before the thaw (${FREEZE_MS} ms frozen, freeze at ${(frozenAt - start).toFixed(0)} ms)`);
    }
    const slowest = Math.max(0, ...late.map((t) => t - start));
    if (slowest > ANSWER_BY_MS + 30) problems.push(`an answer ${slowest} ms after the burst started (want < ${ANSWER_BY_MS + 30})`);
    // Thawed: served again within one lease (a lock taken just before the freeze expires by then).
    const thawedAt = Date.now();
    let served: number | undefined;
    let tries = 0;
    let lateAcks = 0; // acks of the tries after the thaw, whenever they come
    while (served === undefined && Date.now() - thawedAt < LEASE_MS + 2000) {
      const answered = new Promise<boolean>((resolve) => {
        socket.once(Events.UNAVAILABLE, () => resolve(false));
        tries += 1;
        socket.emit('inc', (...args: unknown[]) => (noticeOf(args) ? resolve(false) : (lateAcks++, resolve(true))));
        // wall clock: a deadline per try (while Redis recovers an answer may never come), not a sleep.
        setTimeout(() => resolve(false), 1000);
      });
      if (await answered) served = Date.now() - thawedAt;
      else await delay(50);
    }
    if (served === undefined) problems.push('not served again after the thaw');
    await delay(STORE_TIMEOUT_MS * 2);
    await server.sio.flush();
    const acks = sent.filter((e) => e.acked !== undefined).length + lateAcks;
    const stored = (JSON.parse((await client.get(`sess:${sidOf(cookie)}`)) ?? '{}') as { counter?: number }).counter ?? 0;
    // Every acked increment is stored; one told "unavailable" may still land when its write was on the
    // wire as Redis froze (a timed-out write is not an undone one), but nothing lands twice.
    if (stored < acks || stored > sent.length + tries) problems.push(`stored counter ${stored}, ${acks} acked increments of ${sent.length} sent`);
  } finally {
    redis.thaw();
    socket.close();
    await server.close();
    client.destroy();
  }
  return problems;
}

test('Redis frozen at a random moment of a locked per-message burst: every event answered within its deadlines, never only when Redis wakes; served again after the thaw; acked increments stored', async (t) => {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  const numRuns = Number(process.env.FC_RUNS ?? 5);
  t.diagnostic(`seed ${seed}, ${numRuns} runs`);
  const started = Date.now();
  const details = await fc.check(
    fc.asyncProperty(runs, async (r) => {
      const problems = await run(r);
      if (problems.length > 0) throw new Error(`${problems.join('\n')}\nrun: ${JSON.stringify(r)}`);
    }),
    { numRuns, seed, path: process.env.FC_PATH, endOnFailure: true },
  );
  t.diagnostic(`${numRuns} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (details.failed) {
    assert.fail(`seed ${details.seed}, path ${details.counterexamplePath}: replay with FC_SEED=${details.seed} FC_PATH='${details.counterexamplePath}'\n${String(details.errorInstance)}`);
  }
});

// The window of case 9: Redis freezes while the SDK's handshake is under way. The server refuses that
// handshake after storeTimeout (SESSION_UNAVAILABLE); the emits the app made meanwhile sat in
// socket.io-client's send buffer with no deadline and ran only after Redis woke and a retry connected
// (measured before the fix: 4 of 4 acked 0.7-0.9 s after the thaw of the freeze; the lead's run: at
// SIGCONT, 12.16 s). The SDK's emit guard now fails them with the refusal's notice and drops them.
test('emits made while Redis freezes during the SDK\'s handshake are answered (an unavailable error) within about storeTimeout, not when Redis wakes, and never run later', async (t) => {
  const client = createClient({ url: redis.url, disableOfflineQueue: true });
  client.on('error', () => {});
  await client.connect();
  t.after(() => client.destroy());
  const server = await startServer({ store: new RedisStore({ client }), perMessage: true, storeTimeout: STORE_TIMEOUT_MS, lock: redisLock(client, { wait: WAIT_MS, lease: LEASE_MS }) });
  t.after(() => server.close());
  server.sio.on('serror', () => {});
  server.sio.on('sconnection', (socket) => socket.on('inc', (ack: (n: number) => void) => ack((socket.session.counter = ((socket.session.counter as number) ?? 0) + 1))));
  const cookie = await server.login({ counter: 0 });
  t.after(() => redis.thaw());
  redis.freeze(); // before the handshake's read reaches Redis
  const socket = connectWithSession(server.url, { forceNew: true, transports: ['websocket'], extraHeaders: { cookie }, onInvalid: 'none', retry: { min: 100, max: 300 } });
  t.after(() => (socket.sessions.dispose(), socket.close()));
  const start = Date.now();
  const answers: Array<{ at: number; error: boolean }> = [];
  for (let i = 0; i < 4; i++) socket.emit('inc', (first: unknown) => answers.push({ at: Date.now() - start, error: typeof first !== 'number' }));
  await delay(FREEZE_MS);
  const beforeThaw = answers.length;
  redis.thaw();
  await delay(STORE_TIMEOUT_MS * 4);
  await server.sio.flush();
  const stored = (JSON.parse((await client.get(`sess:${sidOf(cookie)}`)) ?? '{}') as { counter?: number }).counter ?? 0;
  t.diagnostic(`answers (ms from the emits): ${JSON.stringify(answers)}; stored counter ${stored}`);
  assert.equal(beforeThaw, 4, `answered before the thaw (${FREEZE_MS} ms frozen): ${beforeThaw} of 4`);
  assert.ok(answers.every((a) => a.error && a.at < ANSWER_BY_MS), 'each told "unavailable" in time');
  assert.equal(stored, 0, 'none of them ran after the thaw');
});
