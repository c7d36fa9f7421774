/**
 * `npm run bench`: the workloads of issue 9 ("A lean server core"), each as a ratio against plain
 * socket.io measured in the same run. Servers run in their own processes (bench/server.ts, one
 * per variant), clients in others (bench/client.ts), variants are interleaved round by round, and
 * each number is the median of BENCH_REPS repetitions. Writes the results as JSON (BENCH_OUT) and
 * docs/benchmarks.md (with a "before" column from BENCH_BEFORE). Knobs: bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, tmpdir } from 'node:os';
import { startRedis } from '../test/helpers/redis.js';
import { freePort } from '../test/helpers/reference-server.js';
import { Child } from './ipc.js';
import { libVersion } from './lib.js';
import type { ServerSpec } from './server.js';
import type { SocketSpec, Reconnection, ConnectKind } from './client.js';
import { compared, machine, markdown, median, readResults, sum, type Results, type Row, type Section } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const QUICK = process.env.BENCH_QUICK === '1';
const REPS = env('BENCH_REPS', QUICK ? 2 : 5);
/** Workloads 1-3: passes, each with fresh server processes and REPS repetitions (see singleNodeIncrements). */
const PASSES = env('BENCH_PASSES', 1);
/** Length of one slice of increments, and slices per variant and repetition (as many of plain alternate with them). */
const SECONDS = env('BENCH_SECONDS', 1);
const SLICES = env('BENCH_SLICES', QUICK ? 2 : 3);
const CONNECTS = env('BENCH_CONNECTS', QUICK ? 20 : 100);
/** One-way delay of the emulated network in workload 6's second half. */
const ONE_WAY_MS = 5;
const HEAP_SOCKETS = env('BENCH_HEAP_SOCKETS', QUICK ? 1000 : 5000);
/** Heap per socket varies by about 1 % between repetitions; each costs a minute. */
const HEAP_REPS = env('BENCH_HEAP_REPS', QUICK ? 1 : Math.min(REPS, 3));
const STORM_CLIENTS = env('BENCH_STORM_CLIENTS', QUICK ? 300 : 2000);
/** Client processes for the throughput workloads; memory and the storm use all of CLIENT_POOL. */
const CLIENT_PROCS = env('BENCH_CLIENT_PROCS', 2);
const CLIENT_POOL = Math.max(CLIENT_PROCS, 4);
/** Workload 1 also measures plain against a second plain server, which shows the harness's own error (BENCH_AA=0: not). */
const AA = process.env.BENCH_AA !== '0';
/** Workloads 1 and 2 also measure socket.io's own express-session recipe (BENCH_RECIPE=0: not). */
const RECIPE = process.env.BENCH_RECIPE !== '0';
const ONLY = new Set((process.env.BENCH_ONLY ?? '1,2,3,4,5,6,7,8').split(',').map((s) => s.trim()));
const OUT = resolve(process.env.BENCH_OUT ?? `${ROOT}/bench/results/latest.json`);
const DOC = process.env.BENCH_DOC === '0' ? undefined : resolve(process.env.BENCH_DOC ?? `${ROOT}/docs/benchmarks.md`);
const before = readResults(process.env.BENCH_BEFORE);
/**
 * BENCH_BASE_LIB=<checkout with a built dist/>: workloads 1, 2, 3 and 5 also run per-message (and
 * per-connection) from that checkout, interleaved with the rest of the same run ("before" rows, and
 * "vs before" on ours): a before/after comparison under one load.
 */
const BASE_LIB = process.env.BENCH_BASE_LIB ? resolve(process.env.BENCH_BASE_LIB) : undefined;
const BASE = 'base-';
/**
 * Workloads 1 and 2 also run per-message with plain socket.io-client (sending the cookie, as the
 * recipe's clients do) beside the SDK's clients (BENCH_PLAIN_CLIENTS=0: not): the clients share the
 * machine with the server, so these rows tell the server's part of "vs recipe" from the SDK's.
 */
const PLAIN_CLIENTS = process.env.BENCH_PLAIN_CLIENTS !== '0' ? 'plain-clients-' : undefined;
/**
 * Workload 1 also runs the floor (BENCH_FLOOR=0: not): per event one `store.set` of the session the
 * handshake loaded, then the ack (bench/server.ts), the least any library that keeps every acked
 * increment in the store can do; its "vs recipe" tells what of the recipe's cost can be removed at all.
 */
const FLOOR = RECIPE && process.env.BENCH_FLOOR !== '0' ? 'floor-' : undefined;
/** The fleets a fleet is measured against, by key prefix (see groupsOf). */
const PEERS = ['recipe-', BASE, ...(PLAIN_CLIENTS ? [PLAIN_CLIENTS] : []), ...(FLOOR ? [FLOOR] : [])];
/** BENCH_PROF=<dir>: every server process writes a CPU profile there (node --cpu-prof) when it exits. */
const PROF = process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_PROF)] : [];
/** More Node flags for every server (e.g. `--trace-gc`, or a V8 flag to see what it changes). */
const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);

const log = (...args: unknown[]) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// processes

interface Node {
  child: Child;
  url: string;
  spec: ServerSpec;
}

async function startNode(spec: ServerSpec): Promise<Node> {
  const child = new Child('./server.ts', [JSON.stringify(spec)], ['--expose-gc', ...PROF, ...SERVER_FLAGS], spec.lib ? { BENCH_LIB: spec.lib } : undefined);
  const { ready } = await child.announced;
  if (PROF.length) log(`server pid ${child.proc.pid} (its profile's name): ${JSON.stringify(spec)}`);
  return { child, url: ready.url, spec };
}

async function stopNode(node: Node): Promise<void> {
  const { proc } = node.child;
  const alive = proc.exitCode === null && proc.signalCode === null && proc.connected;
  if (alive && PROF.length) log(`server pid ${proc.pid}: ${(await node.child.call<{ events: number }>('stats')).events} events`);
  if (alive) await node.child.call('exit').catch(() => undefined);
  await node.child.exited;
}

const cpuUs = async (nodes: Node[]) => sum(await Promise.all(nodes.map(async (n) => Object.values(await n.child.call<NodeJS.CpuUsage>('cpu')).reduce((a, b) => a + b, 0))));

/** Opens the group `name` of sockets `specs` spread round-robin over `clients`: spec j lands on client j % clients.length. */
async function openAll(clients: Child[], name: string, specs: SocketSpec[], options: { reconnection?: Reconnection } = {}): Promise<void> {
  const results = await Promise.all(clients.map((c, p) => c.call<{ failed: number }>('open', { name, specs: specs.filter((_, j) => j % clients.length === p), ...options })));
  const failed = sum(results.map((r) => r.failed));
  if (failed > 0) throw new Error(`${failed} of ${specs.length} sockets failed to connect`);
}
const closeAll = (clients: Child[], name: string) => Promise.all(clients.map((c) => c.call('close', { name })));

/** `count` new sessions holding `data` (written through the node's store); their Cookie header values. */
const seed = (node: Node, count: number, data: Record<string, unknown>) => node.child.call<string[]>('seed', { count, data });
async function storedCounter(url: string, cookie: string): Promise<number> {
  const res = await fetch(`${url}/session`, { headers: { cookie } });
  return ((await res.json()) as { counter?: number }).counter ?? 0;
}

/** The session of workload 1: two keys. */
const SMALL = { user: 'alice', counter: 0 };
/** The session of workload 2: a cart of 200 items, about 7.7 KB of JSON. */
const CART = {
  ...SMALL,
  cart: Array.from({ length: 200 }, (_, i) => ({ sku: `A${10000 + i}`, qty: 1 + (i % 3), price: 1999 + i })),
};

// ---------------------------------------------------------------------------------------------
// workloads 1-4: acked increments

/** Sockets on `nodes`: `sessions` x `perSession` sockets (one session each and no session, for plain). */
interface Fleet {
  key: string;
  label: string;
  nodes: Node[];
  plain: boolean;
  /** Sessions through plain socket.io-client with the cookie (the recipe's client), not `connectWithSession`. */
  plainClient?: boolean;
  sessions: number;
  perSession: number;
  data: Record<string, unknown>;
}

interface Slice {
  eventsPerSecond: number;
  cpuUsPerEvent: number;
}

/** A fleet's sockets, open: `slice()` runs its increments for a while; acked events add up per session until `close()`. */
class OpenFleet {
  private readonly acked: number[];
  private errors = 0;

  private constructor(
    readonly fleet: Fleet,
    private readonly clients: Child[],
    private readonly cookies: string[],
    private readonly specs: Array<SocketSpec & { session: number }>,
  ) {
    this.acked = new Array<number>(fleet.sessions).fill(0);
  }

  static async open(fleet: Fleet, clients: Child[]): Promise<OpenFleet> {
    const cookies = fleet.plain ? [] : await seed(fleet.nodes[0]!, fleet.sessions, fleet.data);
    const specs: Array<SocketSpec & { session: number }> = [];
    for (let s = 0; s < fleet.sessions; s++) {
      for (let k = 0; k < fleet.perSession; k++) specs.push({ url: fleet.nodes[specs.length % fleet.nodes.length]!.url, cookie: cookies[s], plain: fleet.plainClient, session: s });
    }
    await openAll(clients, fleet.key, specs);
    return new OpenFleet(fleet, clients, cookies, specs);
  }

  /** Every socket increments for `seconds`: throughput, and server CPU per event. */
  async slice(seconds: number): Promise<Slice> {
    const cpuBefore = await cpuUs(this.fleet.nodes);
    const runs = await Promise.all(this.clients.map((c) => c.call<{ acked: number[]; errors: number; start: number; end: number }>('inc', { name: this.fleet.key, seconds })));
    const cpu = (await cpuUs(this.fleet.nodes)) - cpuBefore;
    let events = 0;
    runs.forEach((run, p) =>
      run.acked.forEach((n, m) => {
        this.acked[this.specs[m * this.clients.length + p]!.session]! += n;
        events += n;
      }),
    );
    this.errors += sum(runs.map((r) => r.errors));
    const window = Math.max(...runs.map((r) => r.end)) - Math.min(...runs.map((r) => r.start));
    return { eventsPerSecond: (events / window) * 1000, cpuUsPerEvent: cpu / events };
  }

  /** Closes the sockets; lost = acked increments - the stored counters (0 for plain). */
  async close(): Promise<{ lost: number; errors: number }> {
    await closeAll(this.clients, this.fleet.key);
    const url = this.fleet.nodes[0]!.url;
    const stored = await Promise.all(this.cookies.map((cookie) => storedCounter(url, cookie)));
    return { lost: this.fleet.plain ? 0 : sum(this.acked.map((n, s) => n - stored[s]!)), errors: this.errors };
  }
}

/**
 * A fleet and those measured against it (its recipe, "before" and plain-client fleets, when the run has them):
 * they take their slices in one group, each slice next to the others', so "vs recipe" and "vs
 * before" compare runs seconds apart, not minutes (issue 16 item 7: the machine's speed moves
 * more than the difference measured).
 */
function groupsOf(ours: OpenFleet[]): OpenFleet[][] {
  const byKey = new Map(ours.map((f) => [f.fleet.key, f]));
  const partnered = new Set<string>();
  for (const f of ours) {
    const { key } = f.fleet;
    if (PEERS.some((prefix) => key.startsWith(prefix))) continue;
    for (const peer of PEERS.map((prefix) => prefix + key)) if (byKey.has(peer)) partnered.add(peer);
  }
  return ours
    .filter((f) => !partnered.has(f.fleet.key))
    .map((f) => [f, ...PEERS.map((prefix) => prefix + f.fleet.key).flatMap((peer) => (partnered.has(peer) ? [byKey.get(peer)!] : []))]);
}

/**
 * All fleets' sockets stay open (idle ones cost nothing); one warm-up slice each. Each repetition
 * runs every group (a fleet with its recipe, "before" and plain-client fleets, see {@link groupsOf}) for SLICES
 * rounds; a round is one slice of each member and one of plain, in an order that rotates, so each
 * comparison is between runs seconds apart (the shared machine's load changes from one second to
 * the next); a repetition's value is the median of its slices (the group's members share plain's).
 */
async function incWorkload(fleets: Fleet[], clients: Child[]): Promise<Map<string, Row>> {
  const open: OpenFleet[] = [];
  try {
    for (const fleet of fleets) open.push(await OpenFleet.open(fleet, clients));
    const [plain, ...ours] = open as [OpenFleet, ...OpenFleet[]];
    log(`warm-up: ${fleets.map((f) => f.key).join(', ')}`);
    for (const f of open) await f.slice(Math.min(1, SECONDS));
    const reps = new Map<string, Array<{ ours: Slice; plain: Slice }>>(ours.map((f) => [f.fleet.key, []]));
    const groups = groupsOf(ours);
    const mid = (xs: Slice[]): Slice => ({ eventsPerSecond: median(xs.map((x) => x.eventsPerSecond)), cpuUsPerEvent: median(xs.map((x) => x.cpuUsPerEvent)) });
    for (let rep = 0; rep < REPS; rep++) {
      for (let k = 0; k < groups.length; k++) {
        const group = groups[(rep + k) % groups.length]!;
        const round = [plain, ...group];
        const slices = new Map<OpenFleet, Slice[]>(round.map((f) => [f, []]));
        for (let i = 0; i < SLICES; i++) {
          for (let j = 0; j < round.length; j++) {
            const f = round[(rep + k + i + j) % round.length]!;
            slices.get(f)!.push(await f.slice(SECONDS));
          }
        }
        const plainMid = mid(slices.get(plain)!);
        for (const f of group) {
          const pair = { ours: mid(slices.get(f)!), plain: plainMid };
          reps.get(f.fleet.key)!.push(pair);
          log(
            `rep ${rep + 1}/${REPS} ${f.fleet.key}: ${pair.ours.eventsPerSecond.toFixed(0)} events/s (${pair.ours.cpuUsPerEvent.toFixed(0)} µs CPU/event), ` +
              `plain ${pair.plain.eventsPerSecond.toFixed(0)} (${pair.plain.cpuUsPerEvent.toFixed(0)} µs): ${(pair.ours.eventsPerSecond / pair.plain.eventsPerSecond).toFixed(2)}x`,
          );
        }
      }
    }
    const closed = new Map<string, { lost: number; errors: number }>();
    for (const f of open.splice(0)) closed.set(f.fleet.key, await f.close());
    return new Map(
      ours.map((f) => {
        const of = (pick: (pair: { ours: Slice; plain: Slice }) => number) => reps.get(f.fleet.key)!.map(pick);
        const { lost, errors } = closed.get(f.fleet.key)!;
        const row: Row = {
          key: f.fleet.key,
          label: f.fleet.label,
          unit: 'events/s',
          compare: 'ratio',
          ours: of((p) => p.ours.eventsPerSecond),
          plain: of((p) => p.plain.eventsPerSecond),
          extra: [
            { name: 'server CPU µs/event', values: of((p) => p.ours.cpuUsPerEvent) },
            { name: "plain's", values: of((p) => p.plain.cpuUsPerEvent) },
            { name: 'CPU ratio', values: of((p) => p.plain.cpuUsPerEvent / p.ours.cpuUsPerEvent) },
            { name: 'lost', values: [lost], total: true },
            { name: 'ack timeouts', values: [errors], total: true },
          ],
        };
        return [f.fleet.key, row];
      }),
    );
  } finally {
    await Promise.all(open.map((f) => closeAll(clients, f.fleet.key).catch(() => undefined)));
  }
}

/**
 * Workloads 1-3 in BENCH_PASSES passes, each with its own server processes (started, measured for REPS repetitions,
 * stopped), their repetitions pooled: a server process keeps a speed of its own for its life (two processes of the
 * same code and variant measured 0.68x and 1.00x against one recipe process in one run, bench/paired.ts on
 * 2026-12-08), so a comparison between variants needs several processes of each, not only several repetitions.
 */
async function singleNodeIncrements(redisUrl: string, clients: Child[]): Promise<Section[]> {
  const passes: Array<Map<string, Row>> = [];
  for (let pass = 0; pass < PASSES; pass++) {
    if (PASSES > 1) log(`pass ${pass + 1}/${PASSES}: fresh server processes`);
    passes.push(await singleNodePass(redisUrl, clients));
  }
  const rows = againstBase(againstRecipe(pooled(passes)));
  return incrementSections(rows);
}

/** The rows of several passes as one: each row's per-repetition values, one pass after another. */
function pooled(passes: Array<Map<string, Row>>): Map<string, Row> {
  const [first, ...more] = passes as [Map<string, Row>, ...Array<Map<string, Row>>];
  for (const next of more) {
    for (const [key, row] of first) {
      const other = next.get(key)!;
      row.ours.push(...other.ours);
      row.plain.push(...other.plain);
      row.extra?.forEach((extra, i) => extra.values.push(...other.extra![i]!.values));
    }
  }
  return first;
}

/** One pass of workloads 1-3: their servers started, every fleet measured (incWorkload), the servers stopped. */
async function singleNodePass(redisUrl: string, clients: Child[]): Promise<Map<string, Row>> {
  const perMessage = (store: 'memory' | 'redis', prefix: string, lock = false, lib?: string) => startNode({ redisUrl, lib, sessions: { perMessage: true, store, prefix, lock } });
  const fleet = async (key: string, label: string, node: Promise<Node>, shape: Partial<Fleet> = {}): Promise<Fleet> => ({ key, label, nodes: [await node], plain: false, sessions: 50, perSession: 1, data: SMALL, ...shape });
  const recipe = (key: string, label: string, store: 'memory' | 'redis', prefix: string, shape: Partial<Fleet> = {}) =>
    fleet(`recipe-${key}`, `socket.io's recipe, ${label}`, startNode({ redisUrl, recipe: { store, prefix } }), { plainClient: true, ...shape });
  const fleets: Fleet[] = [await fleet('plain', 'plain socket.io', startNode({}), { plain: true })];
  if (ONLY.has('1')) fleets.push(await fleet('memory', 'MemoryStore', perMessage('memory', 'w1m:')), await fleet('redis', 'Redis', perMessage('redis', 'w1:')));
  if (ONLY.has('1') && BASE_LIB) {
    fleets.push(await fleet(`${BASE}memory`, 'MemoryStore, before', perMessage('memory', 'w1bm:', false, BASE_LIB)), await fleet(`${BASE}redis`, 'Redis, before', perMessage('redis', 'w1b:', false, BASE_LIB)));
  }
  if (ONLY.has('1') && RECIPE) fleets.push(await recipe('memory', 'MemoryStore', 'memory', 'w1rm:'), await recipe('redis', 'Redis', 'redis', 'w1r:'));
  if (ONLY.has('1') && PLAIN_CLIENTS) {
    const viaPlain = { plainClient: true };
    fleets.push(await fleet(`${PLAIN_CLIENTS}memory`, 'MemoryStore, plain socket.io-client', perMessage('memory', 'w1pm:'), viaPlain));
    fleets.push(await fleet(`${PLAIN_CLIENTS}redis`, 'Redis, plain socket.io-client', perMessage('redis', 'w1p:'), viaPlain));
  }
  if (ONLY.has('1') && FLOOR) {
    const floor = (key: string, label: string, store: 'memory' | 'redis', prefix: string) =>
      fleet(`${FLOOR}${key}`, `the floor (one store.set per event), ${label}`, startNode({ redisUrl, recipe: { store, prefix, floor: true } }), { plainClient: true });
    fleets.push(await floor('memory', 'MemoryStore', 'memory', 'w1fm:'), await floor('redis', 'Redis', 'redis', 'w1f:'));
  }
  if (ONLY.has('1') && AA) fleets.push(await fleet('aa', 'plain socket.io on a second server (A/A check: should be 1.00x)', startNode({}), { plain: true }));
  if (ONLY.has('2')) {
    fleets.push(await fleet('cart-memory', 'MemoryStore, 7.7 KB session', perMessage('memory', 'w2m:'), { data: CART }));
    fleets.push(await fleet('cart-redis', 'Redis, 7.7 KB session', perMessage('redis', 'w2:'), { data: CART }));
  }
  if (ONLY.has('2') && BASE_LIB) {
    fleets.push(await fleet(`${BASE}cart-memory`, 'MemoryStore, 7.7 KB session, before', perMessage('memory', 'w2bm:', false, BASE_LIB), { data: CART }));
    fleets.push(await fleet(`${BASE}cart-redis`, 'Redis, 7.7 KB session, before', perMessage('redis', 'w2b:', false, BASE_LIB), { data: CART }));
  }
  if (ONLY.has('2') && PLAIN_CLIENTS) {
    const viaPlain = { plainClient: true, data: CART };
    fleets.push(await fleet(`${PLAIN_CLIENTS}cart-memory`, 'MemoryStore, 7.7 KB session, plain socket.io-client', perMessage('memory', 'w2pm:'), viaPlain));
    fleets.push(await fleet(`${PLAIN_CLIENTS}cart-redis`, 'Redis, 7.7 KB session, plain socket.io-client', perMessage('redis', 'w2p:'), viaPlain));
  }
  if (ONLY.has('2') && RECIPE) {
    fleets.push(await recipe('cart-memory', 'MemoryStore, 7.7 KB session', 'memory', 'w2rm:', { data: CART }));
    fleets.push(await recipe('cart-redis', 'Redis, 7.7 KB session', 'redis', 'w2r:', { data: CART }));
  }
  if (ONLY.has('3')) {
    fleets.push(await fleet('shared-redis', 'Redis, 5 sessions x 10 sockets', perMessage('redis', 'w3:'), { sessions: 5, perSession: 10 }));
    fleets.push(await fleet('shared-redis-lock', 'Redis + lock, 5 sessions x 10 sockets', perMessage('redis', 'w3l:', true), { sessions: 5, perSession: 10 }));
  }
  if (ONLY.has('3') && BASE_LIB) {
    fleets.push(await fleet(`${BASE}shared-redis`, 'Redis, 5 sessions x 10 sockets, before', perMessage('redis', 'w3b:', false, BASE_LIB), { sessions: 5, perSession: 10 }));
    fleets.push(await fleet(`${BASE}shared-redis-lock`, 'Redis + lock, 5 sessions x 10 sockets, before', perMessage('redis', 'w3bl:', true, BASE_LIB), { sessions: 5, perSession: 10 }));
  }
  try {
    return await incWorkload(fleets, clients);
  } finally {
    await Promise.all(fleets.flatMap((f) => f.nodes.map(stopNode)));
  }
}

/** The sections of workloads 1-3 from their pooled rows. */
function incrementSections(rows: Map<string, Row>): Section[] {
  const pick = (...keys: string[]) => keys.flatMap((k) => [k, ...PEERS.slice(1).map((prefix) => prefix + k)]).flatMap((k) => (rows.has(k) ? [rows.get(k)!] : []));
  const common =
    `${CLIENT_PROCS} client processes; every socket has one acked \`inc\` in flight at a time; throughput = acked events / time. ` +
    `All variants' sockets stay open; per repetition each variant runs ${SLICES} slices of ${SECONDS} s, each next to a slice of plain and, for per-message rows, ` +
    "of the recipe's and the \"before\" variant's (in rounds whose order rotates, so each comparison spans seconds), and the repetition's value is the median of its slices. " +
    '"CPU ratio" = plain\'s server CPU per event / ours (less sensitive to the machine\'s load than throughput).' +
    (PASSES > 1 ? ` Each variant ran in ${PASSES} server processes, one after another (a pass of ${REPS} repetitions each, pooled): a process keeps a speed of its own for its life.` : '');
  const sections: Section[] = [];
  const RECIPE_HOW =
    "\"socket.io's recipe\": socket.io's documented express-session set-up, `io.engine.use(session(...))`, in its per-event form: the handler calls " +
    '`socket.request.session.reload()`, increments, `save()`, then acks (the same two store calls per event as per-message mode; its clients are plain socket.io-client with the cookie). ' +
    '"vs recipe" (per-message rows) = per-message\'s ratio / the recipe\'s, per repetition (at or above 1: per-message is at least as fast). ' +
    (FLOOR
      ? '"The floor": plain socket.io whose handler writes the session the handshake loaded with one `store.set` per event, then acks (no reload, none of express-session\'s bookkeeping): the least any library that keeps every acked increment in the store can do; its "vs recipe" is what of the recipe\'s cost can be removed at all, and how far this machine\'s noise moves a ratio. '
      : '') +
    (PLAIN_CLIENTS ? 'Per-message runs twice: with the SDK\'s clients (`connectWithSession`) and, in the "plain socket.io-client" rows, with the recipe\'s clients, to tell the server\'s part from the client\'s (the clients share the machine\'s two cores with the server). ' : '');
  if (ONLY.has('1'))
    sections.push({
      id: 'per-message-small',
      title: '1. Per-message, 50 clients x acked increments, 2-key session',
      how: `50 sockets, one session each ({ user, counter }), per-message mode; plain socket.io increments a process counter. ${RECIPE ? RECIPE_HOW : ''}${common} "lost" = acked increments - the sessions' stored counters, after all slices.`,
      rows: pick('memory', 'recipe-memory', 'redis', 'recipe-redis', 'aa'),
    });
  if (ONLY.has('2'))
    sections.push({
      id: 'per-message-cart',
      title: '2. Per-message, 50 clients, 7.7 KB session (a cart of 200 items)',
      how: `As 1, but each session also holds \`cart\`: 200 items stored at login (the session is ${JSON.stringify(CART).length} bytes of JSON without its cookie); the handler only increments the counter. ${RECIPE ? 'Recipe rows as in 1. ' : ''}${common}`,
      rows: pick('cart-memory', 'recipe-cart-memory', 'cart-redis', 'recipe-cart-redis'),
    });
  if (ONLY.has('3'))
    sections.push({
      id: 'per-message-shared',
      title: '3. Per-message, 10 sockets per session',
      how: `5 sessions x 10 sockets (50 sockets), 2-key session, per-message mode on Redis, without and with \`lock: redisLock(client)\`; against plain socket.io with 50 sockets as in 1. ${common}`,
      rows: pick('shared-redis', 'shared-redis-lock'),
    });
  return sections;
}

/** Each per-message row that has a recipe row gets "vs recipe": per repetition, its ratio over plain / the recipe's. */
function againstRecipe(rows: Map<string, Row>): Map<string, Row> {
  for (const [key, row] of rows) {
    const own = PEERS.slice(1).find((prefix) => key.startsWith(prefix));
    const peer = rows.get(`recipe-${own ? key.slice(own.length) : key}`);
    if (!peer) continue;
    const theirs = compared(peer);
    row.extra = [{ name: 'vs recipe', values: compared(row).map((ours, i) => ours / theirs[i]!) }, ...(row.extra ?? [])];
  }
  return rows;
}

/** With BENCH_BASE_LIB, each row that has a "before" row gets "vs before": per repetition, its ratio over plain / the before row's. */
function againstBase(rows: Map<string, Row>): Map<string, Row> {
  for (const [key, row] of rows) {
    const base = rows.get(BASE + key);
    if (!base) continue;
    const theirs = compared(base);
    row.extra = [{ name: 'vs before', values: compared(row).map((ours, i) => ours / theirs[i]!) }, ...(row.extra ?? [])];
  }
  return rows;
}

async function twoNodes(redisUrl: string, clients: Child[]): Promise<Section[]> {
  const ours: ServerSpec = { redisUrl, adapter: true, sessions: { perMessage: true, store: 'redis', prefix: 'w4:', lock: true } };
  const fleets: Fleet[] = [
    { key: 'plain', label: 'plain socket.io, two nodes', nodes: [await startNode({ redisUrl, adapter: true }), await startNode({ redisUrl, adapter: true })], plain: true, sessions: 50, perSession: 1, data: {} },
    { key: 'two-nodes-lock', label: 'two nodes, Redis + lock + adapter, 5 sessions x 10 sockets', nodes: [await startNode(ours), await startNode(ours)], plain: false, sessions: 5, perSession: 10, data: SMALL },
  ];
  try {
    const rows = await incWorkload(fleets, clients);
    return [
      {
        id: 'two-nodes',
        title: '4. Two nodes on one Redis, with the lock',
        how:
          'Two server processes on one redis-server, both with @socket.io/redis-adapter; ours per-message on connect-redis with `lock: redisLock(client)`. ' +
          '5 sessions x 10 sockets, each session with 5 sockets on each node; plain: two plain socket.io nodes (with the adapter), 25 sockets each. ' +
          `Server CPU is the sum of both nodes. ${CLIENT_PROCS} client processes, slices as in 1. "lost" = acked increments - the stored counter (must be 0).`,
        rows: [...rows.values()],
      },
    ];
  } finally {
    await Promise.all(fleets.flatMap((f) => f.nodes.map(stopNode)));
  }
}

// ---------------------------------------------------------------------------------------------
// workload 5: heap per connected socket

/** Fresh server; heap after GC before and after `count` sockets connect; bytes per socket. */
async function heapPerSocket(spec: ServerSpec, clients: Child[], count: number): Promise<number> {
  const node = await startNode(spec);
  try {
    let t = now();
    const cookies = spec.sessions ? await seed(node, count, SMALL) : [];
    log(`  ${cookies.length} sessions: ${(now() - t).toFixed(0)} ms`);
    const specs = Array.from({ length: count }, (_, i): SocketSpec => ({ url: node.url, cookie: cookies[i] }));
    // Warm up: code paths run and lazily made structures exist before the baseline.
    await openAll(clients, 'warm-up', specs.slice(0, 100));
    await closeAll(clients, 'warm-up');
    await delay(300);
    const baseline = await node.child.call<number>('heap');
    t = now();
    await openAll(clients, 'heap', specs);
    log(`  ${count} sockets open: ${(now() - t).toFixed(0)} ms`);
    const { sockets } = await node.child.call<{ sockets: number }>('stats');
    if (sockets !== count) throw new Error(`server has ${sockets} sockets, expected ${count}`);
    await delay(500);
    const loaded = await node.child.call<number>('heap');
    await closeAll(clients, 'heap');
    return (loaded - baseline) / count;
  } finally {
    await stopNode(node);
  }
}

async function memory(clients: Child[]): Promise<Section[]> {
  const variants: Array<[string, string, ServerSpec]> = [
    ['plain', 'plain socket.io', {}],
    ['per-connection', 'per-connection, MemoryStore', { sessions: { perMessage: false, store: 'memory' } }],
    ['per-message', 'per-message, MemoryStore', { sessions: { perMessage: true, store: 'memory' } }],
  ];
  if (BASE_LIB) {
    for (const [key, label, spec] of variants.slice(1)) variants.push([BASE + key, `${label}, before`, { ...spec, lib: BASE_LIB }]);
  }
  const bytes = new Map<string, number[]>(variants.map(([key]) => [key, []]));
  for (let rep = 0; rep < HEAP_REPS; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const [key, , spec] = variants[(rep + k) % variants.length]!;
      const perSocket = await heapPerSocket(spec, clients, HEAP_SOCKETS);
      bytes.get(key)!.push(perSocket);
      log(`rep ${rep + 1}/${HEAP_REPS} heap ${key}: ${perSocket.toFixed(0)} B/socket`);
    }
  }
  return [
    {
      id: 'heap',
      title: `5. Heap per connected socket over plain, ${HEAP_SOCKETS.toLocaleString('en-US')} sockets`,
      how:
        `A fresh server process per measurement (node --expose-gc); sessions variants: ${HEAP_SOCKETS} sessions ({ user, counter }) in the store first. ` +
        `heapUsed after forced GC before and after ${HEAP_SOCKETS} websocket clients (spread over ${clients.length} client processes) connect, divided by the count; "now" = ours - plain.`,
      rows: variants.slice(1).map(([key, label]) => ({ key, label, unit: 'B', compare: 'diff', ours: bytes.get(key)!, plain: bytes.get('plain')! })),
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// workload 6: connect with a fetched ticket

async function connects(client: Child): Promise<Section[]> {
  // A server per kind: one serving several kinds would be warmer than plain's (see connectTimes).
  const servers: Array<[ConnectKind, Node]> = [];
  try {
    for (const kind of ['plain', 'cookie', 'ticketFirst', 'ticketOverlapped'] as const) servers.push([kind, await startNode(kind === 'plain' ? {} : { sessions: { perMessage: false, store: 'memory' } })]);
    const targets = Object.fromEntries(
      await Promise.all(servers.map(async ([kind, node]) => [kind, { url: node.url, cookie: kind === 'plain' ? undefined : (await seed(node, 1, SMALL))[0] }])),
    ) as Record<ConnectKind, SocketSpec>;
    const medians: Record<string, number[]> = {};
    for (let rep = 0; rep < REPS; rep++) {
      for (const oneWayMs of [0, ONE_WAY_MS]) {
        const iterations = oneWayMs ? Math.ceil(CONNECTS / 3) : CONNECTS;
        const samples = await client.call<Record<string, number[]>>('connectTimes', { targets, iterations, warmup: rep === 0 ? 20 : 5, oneWayMs });
        for (const [name, xs] of Object.entries(samples)) (medians[name + (oneWayMs ? '@latency' : '')] ??= []).push(median(xs));
        log(`rep ${rep + 1}/${REPS} connect ms (${oneWayMs} ms one-way): ${Object.entries(samples).map(([n, xs]) => `${n} ${median(xs).toFixed(2)}`).join(', ')}`);
      }
    }
    const row = (key: string, label: string): Row => ({ key, label, unit: 'ms', compare: 'ratio', ours: medians[key]!, plain: medians[key.endsWith('@latency') ? 'plain@latency' : 'plain']! });
    const far = ` (${ONE_WAY_MS} ms one-way latency)`;
    return [
      {
        id: 'connect',
        title: '6. Connect with a fetched ticket, sequential websocket connects',
        how:
          `One client process connects one socket at a time (websocket transport only), ${CONNECTS} times per kind and repetition, the kinds interleaved; ` +
          'the time from the start (of the fetch, where there is one) to `connect`, median per repetition. ' +
          '"fetched first": GET /socket.io-sessions/token with the cookie, then `connectWithSession(url, { auth: { sessionTicket } })`; ' +
          '"overlapped": `connectWithSession(url, { credential: tickets({ source: fetch of the token endpoint }) })`; ' +
          '"cookie": `connectWithSession` with the cookie. Servers: per-connection mode, MemoryStore, `sio.tokenHandler()`; one server process per kind ' +
          '(a server that serves more requests answers faster, so one shared by three kinds made them look faster than plain). ' +
          `The last three rows go through a loopback proxy (bench/latency-proxy.ts) that delays each direction by ${ONE_WAY_MS} ms (plain through it too), ${Math.ceil(CONNECTS / 3)} connects per kind: ` +
          'there a round trip is waiting, which overlapping can hide; on bare loopback it is CPU on both ends, which it cannot.',
        rows: [
          row('ticketFirst', 'ticket fetched first, then connect'),
          row('ticketOverlapped', 'ticket fetch overlapped (tickets())'),
          row('cookie', 'cookie (for reference)'),
          row('ticketFirst@latency', 'ticket fetched first' + far),
          row('ticketOverlapped@latency', 'ticket fetch overlapped' + far),
          row('cookie@latency', 'cookie' + far),
        ],
      },
    ];
  } finally {
    await Promise.all(servers.map(([, node]) => stopNode(node)));
  }
}

// ---------------------------------------------------------------------------------------------
// workload 7: restart storm

/** Short delays, so the herd meets the restarted server at once (the defaults, 1 s to 5 s with jitter, spread it over seconds). */
const STORM_RECONNECTION: Reconnection = { reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 1000 };

interface Storm {
  allMs: number;
  medianMs: number;
  /** CPU of the restarted server from listening to the last reconnect. */
  cpuMs: number;
  invalid: number;
  unavailable: number;
}

/** `count` reconnecting sockets on `node`; SIGKILL it, start it again on its port; time from listening to every socket back. */
async function storm(node: Node, cookies: string[], clients: Child[], count: number, plain?: boolean): Promise<{ node: Node; result: Storm }> {
  const specs = Array.from({ length: count }, (_, i): SocketSpec => ({ url: node.url, cookie: cookies[i], plain }));
  await openAll(clients, 'storm', specs, { reconnection: STORM_RECONNECTION });
  await Promise.all(clients.map((c) => c.call('arm', { name: 'storm' })));
  await node.child.kill('SIGKILL');
  const restarted = await startNode(node.spec); // its spec has the port
  const listening = now();
  const cpuBefore = await cpuUs([restarted]);
  const results = await Promise.all(clients.map((c) => c.call<{ times: number[]; missing: number; invalid: number; unavailable: number }>('reconnected', { name: 'storm', timeoutMs: 60_000 })));
  const cpuMs = ((await cpuUs([restarted])) - cpuBefore) / 1000;
  await closeAll(clients, 'storm');
  const missing = sum(results.map((r) => r.missing));
  if (missing > 0) throw new Error(`${missing} of ${count} sockets did not reconnect within 60 s`);
  const times = results.flatMap((r) => r.times.map((t) => t - listening));
  return {
    node: restarted,
    result: { allMs: Math.max(...times), medianMs: median(times), cpuMs, invalid: sum(results.map((r) => r.invalid)), unavailable: sum(results.map((r) => r.unavailable)) },
  };
}

interface StormVariant {
  key: 'plain' | 'ours';
  node: Node;
  cookies: string[];
  /** With the cookie, socket.io-client itself instead of `connectWithSession`. */
  plainClient?: boolean;
}

/** Storms on every variant, interleaved (each repetition rotates which goes first); each variant's results. */
async function storms(variants: StormVariant[], clients: Child[]): Promise<(key: StormVariant['key'], pick: (s: Storm) => number) => number[]> {
  const results = new Map<string, Storm[]>(variants.map((v) => [v.key, []]));
  try {
    for (let rep = 0; rep < REPS; rep++) {
      for (let k = 0; k < variants.length; k++) {
        const variant = variants[(rep + k) % variants.length]!;
        const { node, result } = await storm(variant.node, variant.cookies, clients, STORM_CLIENTS, variant.plainClient);
        variant.node = node;
        results.get(variant.key)!.push(result);
        log(`rep ${rep + 1}/${REPS} storm ${variant.key}: all back ${result.allMs.toFixed(0)} ms, median ${result.medianMs.toFixed(0)} ms, server CPU ${result.cpuMs.toFixed(0)} ms, invalid ${result.invalid}, unavailable ${result.unavailable}`);
      }
    }
  } finally {
    await Promise.all(variants.map((v) => stopNode(v.node)));
  }
  return (key, pick) => results.get(key)!.map(pick);
}

/** The rows of a storm section: all back, median, server CPU; with "false invalid" and "unavailable" of ours. */
function stormRows(of: (key: StormVariant['key'], pick: (s: Storm) => number) => number[]): Row[] {
  const extra = [
    { name: 'false invalid', values: of('ours', (s) => s.invalid), total: true },
    { name: 'unavailable answers', values: of('ours', (s) => s.unavailable), total: true },
  ];
  return [
    { key: 'all', label: 'time until all reconnected', unit: 'ms', compare: 'ratio', ours: of('ours', (s) => s.allMs), plain: of('plain', (s) => s.allMs), extra },
    { key: 'median', label: 'median reconnect time', unit: 'ms', compare: 'ratio', ours: of('ours', (s) => s.medianMs), plain: of('plain', (s) => s.medianMs) },
    { key: 'cpu', label: 'server CPU from listening to all back', unit: 'ms', compare: 'ratio', ours: of('ours', (s) => s.cpuMs), plain: of('plain', (s) => s.cpuMs) },
  ];
}

const STORM_HOW =
  `both reconnect with socket.io-client's reconnection, with delays of ${STORM_RECONNECTION.reconnectionDelay} ms growing to ${STORM_RECONNECTION.reconnectionDelayMax} ms (jitter 0.5) so that the herd arrives at once ` +
  "(with the defaults, 1 s growing to 5 s, the backoff's phase decides the times). Times from the new server listening to a socket's `connect`: " +
  'the last one ("all back") and the median; and the restarted server\'s CPU time until all are back (steadier than wall times on a busy machine). ' +
  '"false invalid": clients told their (valid) session is invalid (must be 0). Plain and ours alternate which goes first.';

async function restartStorm(redisUrl: string, clients: Child[]): Promise<Section[]> {
  const variants: StormVariant[] = [
    { key: 'plain', node: await startNode({ port: await freePort() }), cookies: [] },
    { key: 'ours', node: await startNode({ redisUrl, port: await freePort(), sessions: { perMessage: false, store: 'redis', prefix: 'w7:' } }), cookies: [] },
  ];
  variants[1]!.cookies = await seed(variants[1]!.node, STORM_CLIENTS, SMALL);
  const of = await storms(variants, clients);
  return [
    {
      id: 'restart-storm',
      title: `7. Per-connection mode, cookie connect, ${STORM_CLIENTS.toLocaleString('en-US')}-client restart storm`,
      how:
        `${STORM_CLIENTS} websocket clients (spread over ${clients.length} client processes) connected: plain socket.io-client, or \`connectWithSession\` with the session cookie ` +
        '(per-connection mode, connect-redis, so the sessions outlive the server). The server process is killed (SIGKILL) and started again on its port; ' +
        STORM_HOW,
      rows: stormRows(of),
    },
  ];
}

/** Workload 8: the reference server (what users copy) against socket.io's own session recipe, both on the SQLite store. */
async function referenceStorm(clients: Child[]): Promise<Section[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-w8-'));
  const app = async (kind: 'reference' | 'recipe') => startNode({ port: await freePort(), app: { kind, dataDir: join(dataDir, kind) } });
  const variants: StormVariant[] = [
    { key: 'plain', node: await app('recipe'), cookies: [], plainClient: true },
    { key: 'ours', node: await app('reference'), cookies: [] },
  ];
  for (const v of variants) v.cookies = await seed(v.node, STORM_CLIENTS, SMALL);
  try {
    const of = await storms(variants, clients);
    return [
      {
        id: 'reference-storm',
        title: `8. The reference server (\`npm start\`), ${STORM_CLIENTS.toLocaleString('en-US')}-client restart storm`,
        how:
          `${STORM_CLIENTS} websocket clients (spread over ${clients.length} client processes) connected with their session cookie: to server-stub/app.js as \`npm start\` runs it ` +
          '(per-message mode, its SQLite store, its demo connection count) through `connectWithSession`, or ("plain") to socket.io with express-session on the same SQLite store ' +
          "through socket.io's documented `io.engine.use(session(...))`, through plain socket.io-client. The server process is killed (SIGKILL) and started again on its port; " +
          STORM_HOW,
        rows: stormRows(of),
      },
    ];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const settings = { ...(BASE_LIB && { before: `${BASE_LIB} (${libVersion(BASE_LIB).commit})` }), reps: REPS, passes: PASSES, heapReps: HEAP_REPS, seconds: SECONDS, slices: SLICES, connects: CONNECTS, heapSockets: HEAP_SOCKETS, stormClients: STORM_CLIENTS, clientProcs: CLIENT_PROCS, quick: QUICK };
  const results: Results = { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', machine: machine(), lib: libVersion(), settings, note: process.env.BENCH_NOTE, sections: [] };
  log(`measuring ${results.lib.dir} (${results.lib.commit}${results.lib.dirty ? ', src/ modified' : ''}); ${JSON.stringify(settings)}`);
  // Sessions in Redis are the library's cost, not the disk's: no persistence.
  const redis = await startRedis({ args: ['--appendonly', 'no'] });
  const clients = await Promise.all(Array.from({ length: CLIENT_POOL }, async () => new Child('./client.ts', [])));
  try {
    const few = clients.slice(0, CLIENT_PROCS);
    if (['1', '2', '3'].some((w) => ONLY.has(w))) results.sections.push(...(await singleNodeIncrements(redis.url, few)));
    if (ONLY.has('4')) results.sections.push(...(await twoNodes(redis.url, few)));
    if (ONLY.has('5')) results.sections.push(...(await memory(clients)));
    if (ONLY.has('6')) results.sections.push(...(await connects(clients[0]!)));
    if (ONLY.has('7')) results.sections.push(...(await restartStorm(redis.url, clients)));
    if (ONLY.has('8')) results.sections.push(...(await referenceStorm(clients)));
  } finally {
    await Promise.all(clients.map((c) => c.kill('SIGTERM')));
    await redis.dispose();
  }
  results.machine.loadavgEnd = loadavg();
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  const md = markdown(results, before);
  if (DOC) writeFileSync(DOC, md);
  console.log(md);
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; results in ${OUT}${DOC ? ` and ${DOC}` : ''}`);
}

await main();
