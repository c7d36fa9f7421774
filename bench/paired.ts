/**
 * `node --import tsx bench/paired.ts`: a few server variants against one reference, paired slice by
 * slice, for changes too small for `npm run bench` to show (a few per cent). This machine's speed moves
 * by up to 2x within minutes; a slice of each variant runs next to a slice of every other, in every
 * order of the variants in turn (the same variant is not always after the same one), and each variant's
 * slice is divided by the reference's slice of the same round. Prints, per variant, the median
 * throughput and server CPU per event, and against the reference the median of the per-round ratios
 * (and of the CPU differences). Even so the median of 24 rounds moves by about ±2 µs of server CPU
 * per event from run to run here: run it more than once, or with more rounds.
 *
 * Variants as in bench/variants.ts (`pmp-memory`: per-message with the recipe's plain clients, so that
 * only the servers differ; `pm-memory` with the SDK's; `recipe-redis`, `plain`, `pmp-memory@<checkout>`...).
 * Knobs: PAIRED_VARIANTS (default pmp-memory,recipe-memory; e.g. pmp-memory@<checkout>,pmp-memory,recipe-memory:
 * per-message before, now, and the recipe), PAIRED_REF (the first variant),
 * PAIRED_ROUNDS (24), PAIRED_SECONDS (1 s per slice), PAIRED_SOCKETS (50).
 */
import { startRedis } from '../test/helpers/redis.js';
import { Child } from './ipc.js';
import { median } from './report.js';
import { closeAll, cpuOf, open, type Open } from './variants.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const VARIANTS = env('PAIRED_VARIANTS', 'pmp-memory,recipe-memory').split(',');
const REF = env('PAIRED_REF', VARIANTS[0]!);
const ROUNDS = Number(env('PAIRED_ROUNDS', '24'));
const SECONDS = Number(env('PAIRED_SECONDS', '1'));
const SOCKETS = Number(env('PAIRED_SOCKETS', '50'));
const DATA = { user: 'alice', counter: 0 };

/** Every order of `xs`. */
const orders = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest])));

async function slice(s: Open): Promise<{ eventsPerSecond: number; cpuUsPerEvent: number }> {
  const before = await cpuOf(s.server);
  const runs = await s.inc(SECONDS);
  const cpu = (await cpuOf(s.server)) - before;
  const events = runs.flatMap((run) => run.acked).reduce((a, b) => a + b, 0);
  return { eventsPerSecond: events / SECONDS, cpuUsPerEvent: cpu / events };
}

if (!VARIANTS.includes(REF)) throw new Error(`PAIRED_REF ${REF} is not one of PAIRED_VARIANTS`);
const redis = VARIANTS.some((v) => v.split('@')[0]!.endsWith('redis')) ? await startRedis({ args: ['--appendonly', 'no'] }) : undefined;
const clients = [new Child('./client.ts', []), new Child('./client.ts', [])];
const servers: Open[] = [];
try {
  for (const variant of VARIANTS) servers.push(await open(variant, redis?.url ?? '', clients, { sockets: SOCKETS, data: DATA }));
  for (const s of servers) await s.inc(2); // warm-up: the JIT, the sessions loaded
  const all = orders(servers.map((_, i) => i));
  const slices = new Map<string, Array<{ eventsPerSecond: number; cpuUsPerEvent: number }>>(VARIANTS.map((v) => [v, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of all[round % all.length]!) slices.get(servers[i]!.variant)!.push(await slice(servers[i]!));
  }
  const ref = slices.get(REF)!;
  for (const [variant, xs] of slices) {
    const line = [`${variant}: ${Math.round(median(xs.map((x) => x.eventsPerSecond)))} events/s, server CPU ${median(xs.map((x) => x.cpuUsPerEvent)).toFixed(1)} µs/event`];
    if (variant !== REF) {
      const throughput = median(xs.map((x, r) => x.eventsPerSecond / ref[r]!.eventsPerSecond));
      const cpu = median(xs.map((x, r) => x.cpuUsPerEvent - ref[r]!.cpuUsPerEvent));
      line.push(`against ${REF}: throughput ${throughput.toFixed(3)}x, server CPU ${cpu >= 0 ? '+' : ''}${cpu.toFixed(2)} µs/event (medians of ${ROUNDS} rounds)`);
    }
    console.log(line.join('; '));
  }
} finally {
  await closeAll(servers, clients);
  await redis?.dispose();
}
process.exit(0);
