// Invariant 8 (docs/architecture.md#invariants), over random session values (fast-check): handlers store deep, cyclic,
// BigInt, getter, accessor and session-itself values, huge strings and ordinary JSON, under
// ordinary keys and under `__proto__`/`constructor`/`prototype`, mixed with increments and with a
// client's `Object.assign` payloads, sent one by one and in bursts. One real socket.io server per
// mode on express-session's MemoryStore, one real client per run (a fresh session).
//
// Judged after each run:
//   1. the process never dies (no unhandled rejection, no uncaught exception) and the session's
//      prototype is intact (nothing of `__proto__` reaches a handler);
//   2. per-message: each event that stored a bad value fails alone: its ack is one `not-storable`
//      notice naming the key, its changes are undone, one `serror` per such event; every other
//      event is acked, and the store holds exactly what the acked events wrote;
//   3. per-connection: every event is acked; the store holds every storable value last written,
//      never a bad one (a key whose last value was bad holds an earlier storable value, or none);
//      each bad value is reported at most once, and a key left bad is reported.
//
// A failure prints the seed and the counterexample's path; replay with
// FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/adversarial/values.property.test.ts
// (FC_RUNS raises the number of runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NOTICE_FIELD, noticeOf } from '../../src/protocol.js';
import { SessionValueError } from '../../src/errors.js';
import { MAX_DEPTH } from '../../src/server/storable.js';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, sidOf, type TestServer } from '../helpers/servers.js';

type Bag = Record<string, unknown>;

/** A value a handler stores: plain JSON, or one made on the server that JSON cannot hold. */
type Spec =
  | { t: 'json'; v: unknown }
  | { t: 'huge'; n: number }
  | { t: 'bigint' }
  | { t: 'cycle' }
  | { t: 'session' }
  | { t: 'getter' }
  | { t: 'accessor' }
  | { t: 'deep'; n: number }
  | { t: 'bigint-inside'; depth: number };

const BAD = new Set(['bigint', 'cycle', 'session', 'getter', 'accessor', 'deep', 'bigint-inside']);
const RESERVED = ['__proto__', 'constructor', 'prototype'];
const DATA_KEYS = ['a', 'b', 'c'];

type Step =
  | { kind: 'inc' }
  | { kind: 'put'; key: string; spec: Spec }
  | { kind: 'assign'; payload: string }
  | { kind: 'burst'; steps: Step[] };

const spec: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('json' as const), v: fc.jsonValue({ maxDepth: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('huge' as const), n: fc.integer({ min: 10_000, max: 300_000 }) }) },
  { weight: 3, arbitrary: fc.constantFrom<Spec>({ t: 'bigint' }, { t: 'cycle' }, { t: 'session' }, { t: 'getter' }, { t: 'accessor' }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('deep' as const), n: fc.integer({ min: MAX_DEPTH + 1, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bigint-inside' as const), depth: fc.integer({ min: 1, max: 50 }) }) },
);

const single: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'inc' as const }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom(...DATA_KEYS, ...DATA_KEYS, ...RESERVED), spec }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ reserved: fc.subarray(RESERVED, { minLength: 1 }), key: fc.constantFrom(...DATA_KEYS), value: fc.jsonValue({ maxDepth: 2 }) })
      .map(({ reserved, key, value }) => ({
        kind: 'assign' as const,
        // What JSON.parse makes of a client's body: own keys named like the object machinery.
        payload: `{${[...reserved.map((r) => `"${r}":{"isAdmin":true}`), `"${key}":${JSON.stringify(value) ?? 'null'}`].join(',')}}`,
      })),
  },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: single },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('burst' as const), steps: fc.array(single, { minLength: 2, maxLength: 5 }) }) },
);

/** The value of `spec`, made where the handler runs (`session` is the handler's). */
function build(s: Spec, session: Bag, key: string): unknown {
  switch (s.t) {
    case 'json':
      return s.v;
    case 'huge':
      return 'x'.repeat(s.n);
    case 'bigint':
      return 10n;
    case 'cycle': {
      const v: Bag = {};
      v.self = [v];
      return v;
    }
    case 'session':
      return session;
    case 'getter':
      return {
        get g(): never {
          throw new Error('getter');
        },
      };
    case 'accessor':
      return Object.defineProperty(session, key, { get: () => 1, enumerable: true, configurable: true })[key];
    case 'deep':
    case 'bigint-inside': {
      const root: Bag = {};
      let at = root;
      for (let i = 1; i < (s.t === 'deep' ? s.n : s.depth); i++) at = (at.n = {}) as Bag;
      if (s.t === 'bigint-inside') at.big = 1n;
      return root;
    }
  }
}

interface Server {
  server: TestServer;
  store: FaultyStore;
  serror: unknown[];
}

async function startModeServer(perMessage: boolean): Promise<Server> {
  const store = new FaultyStore();
  const server = await startServer({ store, perMessage, saveDelay: 20, storeTimeout: 2000 });
  const serror: unknown[] = [];
  server.sio.on('serror', (err) => serror.push(err));
  server.sio.on('sconnection', (socket) => {
    const session = socket.session as unknown as Bag;
    socket.on('inc', (ack: (r: unknown) => void) => {
      session.counter = ((session.counter as number | undefined) ?? 0) + 1;
      ack('ok');
    });
    socket.on('put', (key: string, s: Spec, ack: (r: unknown) => void) => {
      session.counter = ((session.counter as number | undefined) ?? 0) + 1;
      if (s.t !== 'accessor') session[key] = build(s, session, key);
      else if (!RESERVED.includes(key)) build(s, session, key);
      ack('ok');
    });
    socket.on('assign', (payload: object, ack: (r: unknown) => void) => {
      session.counter = ((session.counter as number | undefined) ?? 0) + 1;
      Object.assign(session, payload);
      ack('ok');
    });
    socket.on('peek', (ack: (r: unknown) => void) =>
      ack({ isAdmin: (session as { isAdmin?: unknown }).isAdmin ?? null, touch: typeof (session as { touch?: unknown }).touch }),
    );
  });
  return { server, store, serror };
}

const flat = (steps: Step[]): Step[] => steps.flatMap((s) => (s.kind === 'burst' ? s.steps : [s]));
const isBad = (s: Step): s is Extract<Step, { kind: 'put' }> => s.kind === 'put' && BAD.has(s.spec.t) && !RESERVED.includes(s.key);
const jsonOf = (v: unknown) => JSON.stringify(v) ?? 'undefined';

/** What one step writes to a data key, if anything: [key, JSON]. */
function written(s: Step): [string, string] | undefined {
  if (s.kind === 'put' && !RESERVED.includes(s.key)) return [s.key, s.spec.t === 'json' ? jsonOf(s.spec.v) : s.spec.t === 'huge' ? jsonOf('x'.repeat(s.spec.n)) : 'bad'];
  if (s.kind === 'assign') {
    const key = Object.keys(JSON.parse(s.payload)).find((k) => DATA_KEYS.includes(k))!;
    return [key, jsonOf(JSON.parse(s.payload)[key])];
  }
  return undefined;
}

async function run({ server, store, serror }: Server, perMessage: boolean, steps: Step[]): Promise<string[]> {
  const problems: string[] = [];
  serror.length = 0;
  const cookie = await server.login();
  const client = connectClient(server.url, cookie);
  const answers: unknown[] = [];
  const send = (s: Step) => {
    if (s.kind === 'inc') return client.timeout(5000).emitWithAck('inc');
    if (s.kind === 'put') return client.timeout(5000).emitWithAck('put', s.key, s.spec);
    return client.timeout(5000).emitWithAck('assign', JSON.parse((s as { payload: string }).payload));
  };
  try {
    await connected(client);
    for (const s of steps) {
      const sent = s.kind === 'burst' ? s.steps.map(send) : [send(s)];
      answers.push(...(await Promise.all(sent.map((p) => p.catch((err: Error) => `no answer: ${err.message}`)))));
    }
    const peek = await client.timeout(5000).emitWithAck('peek');
    if (JSON.stringify(peek) !== '{"isAdmin":null,"touch":"function"}') problems.push(`the session's prototype changed: ${JSON.stringify(peek)}`);
  } finally {
    client.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // the disconnect reaches the server
  await server.sio.flush();
  const all = flat(steps);
  const record = (store.peek(sidOf(cookie)) ?? {}) as Bag;
  const valueErrors = serror.filter((e) => e instanceof SessionValueError) as SessionValueError[];
  for (const e of serror) if (!(e instanceof SessionValueError)) problems.push(`an unexpected serror: ${String(e)}`);
  if (perMessage) judgePerMessage(all, answers, record, valueErrors, problems);
  else judgePerConnection(all, answers, record, valueErrors, problems);
  for (const k of RESERVED) if (Object.hasOwn(record, k)) problems.push(`"${k}" was stored`);
  return problems;
}

function judgePerMessage(all: Step[], answers: unknown[], record: Bag, valueErrors: SessionValueError[], problems: string[]): void {
  const model = new Map<string, string>();
  let counter = 0;
  all.forEach((s, i) => {
    const answer = answers[i];
    if (isBad(s)) {
      const notice = noticeOf([answer]);
      if (notice?.reason !== 'not-storable' || notice.key !== s.key || notice.code !== 'EVENT_FAILED') problems.push(`event ${i} (${s.spec.t} in ${s.key}): answered ${jsonOf(answer).slice(0, 200)}`);
      return;
    }
    if (answer !== 'ok') return void problems.push(`event ${i} (${s.kind}): answered ${jsonOf(answer).slice(0, 200)}`);
    counter++;
    const w = written(s);
    if (w) model.set(w[0], w[1]);
  });
  if ((record.counter ?? 0) !== counter) problems.push(`stored counter ${String(record.counter)}, ${counter} acked events`);
  for (const key of DATA_KEYS) {
    const want = model.get(key) ?? 'undefined';
    if (jsonOf(record[key]) !== want) problems.push(`key ${key}: stored ${jsonOf(record[key]).slice(0, 100)}, acked writes left ${want.slice(0, 100)}`);
  }
  const bad = all.filter(isBad).length;
  if (valueErrors.length !== bad) problems.push(`${valueErrors.length} serror(s) for ${bad} event(s) that stored a bad value`);
  for (const answer of answers) if (noticeOf([answer]) && !(answer as Bag)[NOTICE_FIELD]) problems.push('a malformed notice');
}

function judgePerConnection(all: Step[], answers: unknown[], record: Bag, valueErrors: SessionValueError[], problems: string[]): void {
  answers.forEach((answer, i) => answer !== 'ok' && problems.push(`event ${i}: answered ${jsonOf(answer).slice(0, 200)}`));
  if ((record.counter ?? 0) !== all.length) problems.push(`stored counter ${String(record.counter)}, ${all.length} acked events`);
  for (const key of DATA_KEYS) {
    const writes = all.map(written).filter((w): w is [string, string] => w?.[0] === key).map((w) => w[1]);
    const last = writes[writes.length - 1];
    const got = jsonOf(record[key]);
    const candidates = last === undefined ? ['undefined'] : last !== 'bad' ? [last] : ['undefined', ...writes.filter((w) => w !== 'bad')];
    if (!candidates.includes(got)) problems.push(`key ${key}: stored ${got.slice(0, 100)}; writes ${writes.map((w) => w.slice(0, 30)).join(', ')}`);
    const reports = valueErrors.filter((e) => e.key === key).length;
    const badWrites = writes.filter((w) => w === 'bad').length;
    if (reports > badWrites) problems.push(`key ${key}: ${reports} reports for ${badWrites} bad value(s)`);
    if (last === 'bad' && reports === 0) problems.push(`key ${key}: left holding a bad value, never reported`);
  }
}

for (const perMessage of [true, false]) {
  const mode = perMessage ? 'per-message' : 'per-connection';
  test(`${mode}: random session values (deep, cyclic, BigInt, getters, the session, __proto__ keys, huge strings) never kill the process; each bad value fails only its own event (or is left out), reported once; storable acked writes are stored`, async (t) => {
    const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
    const numRuns = Number(process.env.FC_RUNS ?? 12);
    t.diagnostic(`seed ${seed}, ${numRuns} runs`);
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on('unhandledRejection', onCrash);
    process.on('uncaughtException', onCrash);
    const srv = await startModeServer(perMessage);
    const started = Date.now();
    try {
      const details = await fc.check(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 10 }), async (steps) => {
          const problems = await run(srv, perMessage, steps);
          if (crashes.length > 0) problems.push(`the process got ${crashes.splice(0).map(String).join('; ')}`);
          if (problems.length > 0) throw new Error(`${problems.join('\n')}\nsteps: ${JSON.stringify(steps, (_k, v) => (typeof v === 'string' && v.length > 100 ? `${v.slice(0, 20)}…(${v.length})` : v))}`);
        }),
        { numRuns, seed, path: process.env.FC_PATH },
      );
      t.diagnostic(`${numRuns} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (details.failed) {
        assert.fail(`seed ${details.seed}, path ${details.counterexamplePath}: replay with FC_SEED=${details.seed} FC_PATH='${details.counterexamplePath}'\n${String(details.errorInstance)}`);
      }
    } finally {
      process.off('unhandledRejection', onCrash);
      process.off('uncaughtException', onCrash);
      await srv.server.close();
    }
  });
}
