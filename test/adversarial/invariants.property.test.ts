// The invariants of docs/architecture.md#invariants, checked over random interleavings (fast-check) of what users and the
// library do to sessions at once: per-message socket writes (blind writes of a key, and appends to
// a list: a read-modify-write, as a counter is) and per-connection writes, HTTP writes and reads,
// reconnects, login (regenerate) and logout, `?renew=1` on the token endpoint, ticket sockets and
// in-band ticket refresh, revalidation every 150 ms, a lying client (an `smessage` event carrying a
// forged session, then the seed's send()), and races of several of these launched together. Over real servers and socket.io clients: one node on a FaultyStore (0-3 ms per store
// call, 15% of calls 5-24 ms, so writes race), and two nodes on one redis-server (connect-redis +
// @socket.io/redis-adapter), with and without the Redis lock.
//
// After each step the store is read (a destroyed session must stay gone, a record holds only its
// own session's data); after the run it settles and is judged (see invariants-model.ts):
//   1. a destroyed session never exists again         4. no record holds another session's data
//   2. every acked per-message write is in the store   5. no handler sees another session (or a forged one)
//   3. one destroy costs at most 1 + nodes destroys    6. no store work lingers (beyond revalidation)
//
// A failure prints the seed and the path of the shrunk counterexample, and the command that
// replays it. Environment:
//   FC_RUNS       runs per variant                  FC_SEED, FC_PATH  replay a counterexample
//   FC_STEPS      max steps per run (20)            FC_VARIANT        a variant's name (or part of it)
//   FC_PROPS      judge only these, e.g. "1,3"      FC_KINDS          generate only these steps, e.g. "emit,logout,renew"
//   FC_SHRINK_MS  time spent shrinking (30000)      FC_LOG=1          print every run's log
//   FC_REPEAT     plays of each scenario before it passes (1; a timing race may need ~20 to replay)
import { test, before, after, type TestContext } from 'node:test';
import fc from 'fast-check';
import { createClient } from 'redis';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import {
  BROWSERS,
  KEYS,
  PRIORITY,
  PROPERTIES,
  formatConn,
  formatStep,
  runScenario,
  type BasicStep,
  type PropertyId,
  type RedisEnv,
  type Scenario,
  type RaceMember,
  type Step,
  type Variant,
  type Violation,
} from './invariants-model.js';

const FILE = 'test/adversarial/invariants.property.test.ts';
const env = process.env;

const VARIANTS: Array<Variant & { runs: number }> = [
  { name: 'one node, per-message', backend: 'faulty', namespaces: [{ path: '/', perMessage: true }], runs: 10 },
  { name: 'one node, per-connection', backend: 'faulty', namespaces: [{ path: '/', perMessage: false }], runs: 10 },
  // Each namespace has its own sessions() on the same store: one session is still serialised process-wide.
  { name: 'one node, two namespaces', backend: 'faulty', namespaces: [{ path: '/', perMessage: true }, { path: '/b', perMessage: true }], runs: 8 },
  // ... and over one engine.io connection (one handshake request), each namespace socket keeps its own session.
  { name: 'one node, two namespaces over one connection', backend: 'faulty', namespaces: [{ path: '/', perMessage: true }, { path: '/b', perMessage: true }], multiplex: true, runs: 8 },
  { name: 'two nodes on Redis, no lock', backend: 'redis', namespaces: [{ path: '/', perMessage: true }], runs: 7 },
  { name: 'two nodes on Redis, lock and httpLock', backend: 'redis', namespaces: [{ path: '/', perMessage: true }], lock: true, runs: 7 },
];

const exact = VARIANTS.filter((v) => v.name === env.FC_VARIANT);
const selected = exact.length > 0 ? exact : VARIANTS.filter((v) => !env.FC_VARIANT || v.name.includes(env.FC_VARIANT));
const judged = new Set<PropertyId>(
  env.FC_PROPS ? (env.FC_PROPS.split(',').map((p) => Number(p.trim())) as PropertyId[]) : (Object.keys(PROPERTIES).map(Number) as PropertyId[]),
);
const MAX_STEPS = Number(env.FC_STEPS ?? 20);
const SHRINK_MS = Number(env.FC_SHRINK_MS ?? 30_000);
/** How many times each scenario is played before it counts as passing (replaying a timing race). */
const REPEAT = Number(env.FC_REPEAT ?? 1);
/** Only these step kinds (e.g. "emit,logout"), to look for one bug at a time. */
const KINDS = env.FC_KINDS?.split(',').map((k) => k.trim());

// ---------------------------------------------------------------------------------------------
// Generators

function scenarios(variant: Variant): fc.Arbitrary<Scenario> {
  const nodes = variant.backend === 'redis' ? 2 : 1;
  const node = fc.nat(nodes - 1);
  const browser = fc.nat(BROWSERS - 1);
  const key = fc.nat(KEYS.length - 1);
  const conn = fc.nat(2);
  const sock = fc.nat(variant.namespaces.length - 1);
  const kinds: Array<[BasicStep['kind'], number, fc.Arbitrary<BasicStep>]> = [
    ['emit', 5, fc.record({ kind: fc.constant('emit' as const), conn, sock, key })],
    ['append', 4, fc.record({ kind: fc.constant('append' as const), conn, sock })],
    ['httpWrite', 2, fc.record({ kind: fc.constant('httpWrite' as const), browser, node, key })],
    ['httpRead', 1, fc.record({ kind: fc.constant('httpRead' as const), browser, node })],
    ['reconnect', 2, fc.record({ kind: fc.constant('reconnect' as const), conn, node })],
    ['login', 1, fc.record({ kind: fc.constant('login' as const), browser, node })],
    ['logout', 1, fc.record({ kind: fc.constant('logout' as const), browser, node })],
    ['renew', 2, fc.record({ kind: fc.constant('renew' as const), browser, node })],
    ['refresh', 1, fc.record({ kind: fc.constant('refresh' as const), conn, sock })],
    ['lie', 1, fc.record({ kind: fc.constant('lie' as const), conn, sock })],
    ['pause', 1, fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 250 }) })],
  ];
  const basic: fc.Arbitrary<BasicStep> = fc.oneof(
    ...kinds.filter(([kind]) => !KINDS || KINDS.includes(kind)).map(([, weight, arbitrary]) => ({ weight, arbitrary })),
  );
  const member = (arbitrary: fc.Arbitrary<BasicStep>) =>
    fc.tuple(arbitrary, fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }))).map(([s, after]): RaceMember => ({ ...s, after }));
  // Any steps at once; or a destroy of a session (logout, login) racing other steps of the same browser,
  // the race invariant 1 is about ("whatever write races the destroy").
  const anyRace = fc.array(member(basic), { minLength: 2, maxLength: 4 });
  const destroys = (['logout', 'login'] as const).filter((kind) => !KINDS || KINDS.includes(kind));
  const destroyRace = (kinds: typeof destroys) =>
    fc
      .tuple(fc.record({ kind: fc.constantFrom(...kinds), browser, node }), fc.array(member(basic), { minLength: 1, maxLength: 3 }))
      .map(([destroy, others]): RaceMember[] => [{ ...destroy, after: 0 }, ...others.map((o) => ('browser' in o ? { ...o, browser: destroy.browser } : o))]);
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: basic },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('race' as const), steps: anyRace }) },
    ...(destroys.length > 0 ? [{ weight: 1, arbitrary: fc.record({ kind: fc.constant('race' as const), steps: destroyRace(destroys) }) }] : []),
  );
  const socket = fc.record({ ns: fc.nat(variant.namespaces.length - 1), cred: fc.oneof(fc.constant('cookie' as const), browser) });
  const connection = fc.record({
    browser,
    node,
    sockets: fc.uniqueArray(socket, { minLength: 1, maxLength: variant.multiplex ? variant.namespaces.length : 1, selector: (s) => s.ns }),
  });
  return fc
    .record({
      latencySeed: fc.nat(),
      conns: fc.array(connection, { minLength: 1, maxLength: 3 }),
      steps: fc.array(step, { minLength: 1, maxLength: MAX_STEPS, size: 'max' }),
    })
    .map(({ latencySeed, conns, steps }) => {
      // Steps name connections and sockets modulo what the layout has, so the layout shrinks on its own;
      // shown and run with the indices they resolve to.
      const resolve = <S extends BasicStep>(s: S): S => {
        if (s.kind !== 'emit' && s.kind !== 'append' && s.kind !== 'refresh' && s.kind !== 'reconnect') return s;
        const c = s.conn % conns.length;
        return s.kind === 'reconnect' ? { ...s, conn: c } : { ...s, conn: c, sock: s.sock % conns[c]!.sockets.length };
      };
      const resolved = steps.map((s): Step => (s.kind === 'race' ? { ...s, steps: s.steps.map(resolve) } : resolve(s)));
      const scenario: Scenario = { latencySeed, conns, steps: resolved };
      return Object.assign(scenario, {
        [fc.toStringMethod]: () =>
          `conns: ${conns.map((c, i) => `c${i}=${formatConn(c, variant)}`).join(' ')}; latencySeed: ${latencySeed}\n  steps: ${resolved.map(formatStep).join(', ')}`,
      });
    });
}

// ---------------------------------------------------------------------------------------------
// Runner

/**
 * Check one variant. The first property found violated becomes the target: while shrinking, only
 * a violation of that property counts as a failure, so the counterexample is minimal for it.
 */
async function checkVariant(t: TestContext, variant: Variant & { runs: number }, redis?: RedisEnv): Promise<void> {
  const numRuns = Number(env.FC_RUNS ?? variant.runs);
  const seed = env.FC_SEED !== undefined ? Number(env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  const path = env.FC_PATH;
  t.diagnostic(`${variant.name}: seed ${seed}${path ? `, path ${path}` : ''}, ${numRuns} runs of up to ${MAX_STEPS} steps`);
  let target: PropertyId | undefined;
  let shrinkUntil = Infinity;
  let runs = 0;
  const failing = new Map<PropertyId, number>();
  const started = Date.now();

  const property = fc.asyncProperty(scenarios(variant), async (scenario) => {
    // Shrinking budget spent: let the remaining candidates pass, keeping the smallest counterexample so far.
    if (target !== undefined && Date.now() > shrinkUntil) return;
    // A scenario is played REPEAT times (or until it fails): timing races do not fail every time.
    let violations: Violation[] = [];
    let log: string[] = [];
    for (let attempt = 0; attempt < REPEAT && violations.length === 0; attempt += 1) {
      runs += 1;
      // Once a target is known, judge only it, and stop a run as soon as it is violated.
      ({ violations, log } = await runScenario(variant, scenario, {
        judged: (p) => judged.has(p) && (target === undefined || p === target),
        stopEarly: (p) => p === target,
        redis,
      }));
      for (const p of new Set(violations.map((v) => v.property))) failing.set(p, (failing.get(p) ?? 0) + 1);
      if (env.FC_LOG) console.log(`--- run ${runs}: ${fc.stringify(scenario)}\n${log.join('\n')}\n${violations.map((v) => `P${v.property}: ${v.message}`).join('\n')}`);
    }
    if (violations.length === 0) return;
    if (target === undefined) {
      target = PRIORITY.find((p) => violations.some((v) => v.property === p))!;
      shrinkUntil = Date.now() + SHRINK_MS;
    }
    const others = [...new Set(violations.map((v) => v.property))].filter((p) => p !== target);
    throw new Error(
      [
        `property ${target} (${PROPERTIES[target]}) violated:`,
        ...violations.filter((v) => v.property === target).map((v) => `  - ${v.message}`),
        ...(others.length > 0 ? [`also violated in this run: ${others.join(', ')}`] : []),
        'run log (ms since start):',
        ...log.map((line) => `  ${line}`),
      ].join('\n'),
    );
  });

  const details = await fc.check(property, { numRuns, seed, path });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = [...failing].map(([p, n]) => `P${p} in ${n}`).join(', ') || 'none';
  t.diagnostic(`${variant.name}: ${runs} runs in ${seconds} s; properties violated (runs): ${summary}`);
  if (details.failed) {
    // The generator depends on FC_KINDS and FC_STEPS: a replay needs the same.
    const generator = `${KINDS ? ` FC_KINDS=${KINDS.join(',')}` : ''}${env.FC_STEPS ? ` FC_STEPS=${MAX_STEPS}` : ''}`;
    const replay = `FC_VARIANT='${variant.name}' FC_PROPS=${target ?? [...judged].join(',')}${generator} FC_SEED=${details.seed} FC_PATH='${details.counterexamplePath}' node --import tsx --test ${FILE}`;
    throw new Error(`${variant.name}: ${target ? `property ${target}, ${PROPERTIES[target]}` : 'the run'} fails (seed ${details.seed}, path ${details.counterexamplePath}).\nReplay: ${replay}\n(a race may need several plays: add FC_REPEAT=20)\n${fc.defaultReportMessage(details)}\n${errText(details.errorInstance)}`);
  }
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ---------------------------------------------------------------------------------------------

let redis: TestRedis | undefined;
let redisEnv: RedisEnv | undefined;

before(async () => {
  if (!selected.some((v) => v.backend === 'redis')) return;
  redis = await startRedis();
  const inspector = createClient({ url: redis.url });
  inspector.on('error', () => {});
  await inspector.connect();
  redisEnv = { url: redis.url, inspector };
});

after(async () => {
  if (redisEnv?.inspector.isOpen) await redisEnv.inspector.quit();
  await redis?.dispose();
});

for (const variant of selected) {
  test(`${variant.name}: over random interleavings of socket and HTTP writes, reconnects, logins, logouts, cookie renewals and ticket refreshes, no destroyed session returns, acked writes persist, a destroy costs O(1) store calls, no session sees or holds another's data, and the store goes quiet`, async (t) => {
    await checkVariant(t, variant, redisEnv);
  });
}
