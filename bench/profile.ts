/**
 * `node --import tsx bench/profile.ts`: where a server's CPU goes per acked event, for the variants
 * of workload 1 (per-message, socket.io's recipe, plain; MemoryStore and Redis). Each variant's
 * server runs in its own process (bench/server.ts) with the sockets in client processes, as in
 * `npm run bench`. All variants' servers run at once; after a warm-up each profiles (the inspector's
 * sampling profiler, so start-up and connects stay out) while the variants take turns in one-second
 * slices, so all are measured under the same load; then the async resources one event makes are
 * counted in a second window. Prints, per event: self time by function and by library, and promises, ticks,
 * immediates and timers. The profiles are kept in PROFILE_DIR for a closer look (Chrome DevTools).
 *
 * Knobs: PROFILE_VARIANTS (pm-memory,recipe-memory,pm-redis,recipe-redis,plain), PROFILE_SOCKETS
 * (20), PROFILE_SECONDS (8 slices of one second per variant), PROFILE_TOP (25), PROFILE_DIR (a temp dir), PROFILE_DATA (small | cart),
 * BENCH_LIB (as for the bench), PROFILE_SERVER_FLAGS (Node flags for the servers, e.g. --trace-gc). A variant written `pm-redis@<checkout>` is served from that
 * checkout's dist/ (before/after under the same load).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { startRedis } from '../test/helpers/redis.js';
import { Child } from './ipc.js';
import { closeAll, cpuOf, open, type Open } from './variants.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const VARIANTS = env('PROFILE_VARIANTS', 'pm-memory,recipe-memory,pm-redis,recipe-redis,plain').split(',');
const SOCKETS = Number(env('PROFILE_SOCKETS', '20'));
const SECONDS = Number(env('PROFILE_SECONDS', '8'));
const TOP = Number(env('PROFILE_TOP', '25'));
/** Node flags for the servers (e.g. `--trace-gc`: its lines carry the server's pid). */
const SERVER_FLAGS = env('PROFILE_SERVER_FLAGS', '').split(' ').filter(Boolean);
const DIR = env('PROFILE_DIR', mkdtempSync(join(tmpdir(), 'sio-sessions-profile-')));
const SMALL = { user: 'alice', counter: 0 };
const DATA = env('PROFILE_DATA', 'small') === 'cart' ? { ...SMALL, cart: Array.from({ length: 200 }, (_, i) => ({ sku: `A${10000 + i}`, qty: 1 + (i % 3), price: 1999 + i })) } : SMALL;

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code comes from: this library, one of the packages it sits on, Node, or V8's own buckets. */
function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.includes('/dist/server/')) return 'socket.io-sessions';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node';
  return basename(url);
}

/** Self time (µs) by function and by origin. */
function selfTimes(file: string): { byFunction: Map<string, number>; byOrigin: Map<string, number>; total: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = frames.get(id)!;
    const us = profile.timeDeltas[i] ?? 0;
    if (frame.functionName === '(idle)') return;
    total += us;
    const where = origin(frame.url, frame.functionName);
    const key = `${frame.functionName || '(anonymous)'} ${frame.url ? `${basename(frame.url)}:${frame.lineNumber + 1}` : ''} [${where}]`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + us);
  });
  return { byFunction, byOrigin, total };
}

const table = (rows: Array<[string, number]>, events: number) => rows.map(([name, us]) => `  ${(us / events).toFixed(2).padStart(8)} µs  ${name}`).join('\n');

const clientCpu = async (clients: Child[]) => (await Promise.all(clients.map(cpuOf))).reduce((a, b) => a + b, 0);

/**
 * Every variant profiled over the same stretch of time, in alternating one-second slices (the
 * shared machine's load changes from one second to the next; sequential runs are not comparable).
 */
async function profileAll(servers: Open[], clients: Child[]): Promise<void> {
  for (const s of servers) await s.inc(2); // warm-up: the JIT, the sessions loaded
  const cpu = new Map<string, number>();
  /** The server's kernel time (system CPU), apart: what its socket writes cost in the kernel shows here. */
  const kernel = new Map<string, number>();
  const sys = new Map<string, Record<string, number>>();
  const clientUs = new Map<string, number>();
  const before = new Map<string, number>();
  for (const s of servers) before.set(s.variant, await s.server.call<number>('profileStart', { intervalUs: 100 }));
  for (let i = 0; i < SECONDS; i++) {
    for (const s of servers) {
      const c0 = await cpuOf(s.server);
      const u0 = await s.server.call<NodeJS.CpuUsage>('cpu');
      const k0 = await clientCpu(clients);
      const s0 = await s.server.call<Record<string, number>>('sys');
      await s.inc(1);
      cpu.set(s.variant, (cpu.get(s.variant) ?? 0) + (await cpuOf(s.server)) - c0);
      kernel.set(s.variant, (kernel.get(s.variant) ?? 0) + (await s.server.call<NodeJS.CpuUsage>('cpu')).system - u0.system);
      clientUs.set(s.variant, (clientUs.get(s.variant) ?? 0) + (await clientCpu(clients)) - k0);
      const s1 = await s.server.call<Record<string, number>>('sys');
      const total = sys.get(s.variant) ?? {};
      for (const key of Object.keys(s1)) total[key] = (total[key] ?? 0) + s1[key]! - s0[key]!;
      sys.set(s.variant, total);
    }
  }
  for (const s of servers) {
    const file = join(DIR, `${s.variant.replace(/[^\w-]+/g, '_')}.cpuprofile`);
    const events = (await s.server.call<number>('profileStop', { file })) - before.get(s.variant)!;
    await s.server.call('countStart');
    await s.inc(1);
    const counted = await s.server.call<{ events: number; counts: Record<string, number> }>('countStop');
    report(s.variant, file, events, cpu.get(s.variant)!, counted);
    console.log(`server kernel (system) CPU per event: ${(kernel.get(s.variant)! / events).toFixed(1)} µs; client CPU per event: ${(clientUs.get(s.variant)! / events).toFixed(1)} µs`);
    console.log(`system calls and context switches per event: ${Object.entries(sys.get(s.variant)!).map(([k, n]) => `${k} ${(n / events).toFixed(2)}`).join(', ')}`);
  }
}

function report(variant: string, file: string, events: number, cpuUs: number, counted: { events: number; counts: Record<string, number> }): void {
  const { byFunction, byOrigin, total } = selfTimes(file);
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  console.log(`\n=== ${variant}: ${events} events in ${SECONDS} s; server CPU ${(cpuUs / events).toFixed(1)} µs/event (profiled), sampled busy ${(total / events).toFixed(1)} µs/event; profile ${file}`);
  console.log(`async resources per event: ${Object.entries(counted.counts).map(([type, n]) => `${type} ${(n / counted.events).toFixed(2)}`).join(', ')}`);
  console.log('self time by origin:');
  console.log(table(sorted(byOrigin), events));
  console.log(`top ${TOP} functions by self time:`);
  console.log(table(sorted(byFunction).slice(0, TOP), events));
  console.log('socket.io-sessions functions:');
  console.log(table(sorted(byFunction).filter(([k]) => k.endsWith('[socket.io-sessions]')), events));
}

const redis = await startRedis({ args: ['--appendonly', 'no'] });
const clients = [new Child('./client.ts', []), new Child('./client.ts', [])];
const servers: Open[] = [];
try {
  for (const variant of VARIANTS) servers.push(await open(variant, redis.url, clients, { sockets: SOCKETS, data: DATA, serverFlags: SERVER_FLAGS }));
  await profileAll(servers, clients);
} finally {
  await closeAll(servers, clients);
  await redis.dispose();
}
process.exit(0);
