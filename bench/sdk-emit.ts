/**
 * `node --import tsx bench/sdk-emit.ts`: what the SDK costs a client per acked emit, against plain
 * socket.io-client. The per-message rows of `npm run bench` use SDK clients and the recipe's use
 * plain ones, and the clients share the machine with the server: a client's CPU per emit is part of
 * "vs recipe". One plain socket.io server (bench/server.ts) acks every `inc`; each kind of client
 * holds SOCKETS sockets in its own process (bench/client.ts); the kinds take turns in short slices
 * (ROUNDS rounds, order rotating) and each round's client CPU per acked emit is divided by plain's
 * of the same round. Prints the median per kind.
 *
 * Kinds: `plain` (socket.io-client sending the cookie), `sdk` (`connectWithSession`, this checkout's
 * dist/), and with SDK_EMIT_BEFORE=<checkout with a built dist/> `before` (that checkout's SDK).
 * Knobs: SDK_EMIT_SOCKETS (50), SDK_EMIT_ROUNDS (30), SDK_EMIT_SECONDS (0.3).
 */
import { Child } from './ipc.js';
import type { SocketSpec } from './client.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const SOCKETS = Number(env('SDK_EMIT_SOCKETS', '50'));
const ROUNDS = Number(env('SDK_EMIT_ROUNDS', '30'));
const SECONDS = Number(env('SDK_EMIT_SECONDS', '0.3'));
const BEFORE = process.env.SDK_EMIT_BEFORE;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const cpuOf = async (child: Child) => Object.values(await child.call<NodeJS.CpuUsage>('cpu')).reduce((a, b) => a + b, 0);

const server = new Child('./server.ts', [JSON.stringify({})]);
const kinds: Array<{ name: string; client: Child }> = [];
try {
  const { ready } = await server.announced;
  const spec = (plain: boolean): SocketSpec => ({ url: ready.url, cookie: 'sid=bench', plain });
  kinds.push({ name: 'plain', client: new Child('./client.ts', []) }, { name: 'sdk', client: new Child('./client.ts', []) });
  if (BEFORE) kinds.push({ name: 'before', client: new Child('./client.ts', [], [], { BENCH_LIB: BEFORE }) });
  for (const { name, client } of kinds) await client.call('open', { name, specs: Array.from({ length: SOCKETS }, () => spec(name === 'plain')) });
  /** Client CPU (µs) per acked emit of one slice of `kind`. */
  const slice = async ({ name, client }: (typeof kinds)[number], seconds: number) => {
    const before = await cpuOf(client);
    const { acked } = await client.call<{ acked: number[] }>('inc', { name, seconds });
    return ((await cpuOf(client)) - before) / acked.reduce((a, b) => a + b, 0);
  };
  for (const kind of kinds) await slice(kind, 1); // warm-up
  const ratios = new Map(kinds.map(({ name }) => [name, [] as number[]]));
  const plainUs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const us = new Map<string, number>();
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(round + i) % kinds.length]!;
      us.set(kind.name, await slice(kind, SECONDS));
    }
    plainUs.push(us.get('plain')!);
    for (const [name, value] of us) ratios.get(name)!.push(value / us.get('plain')!);
  }
  console.log(`client CPU per acked emit, ${SOCKETS} sockets per kind, ${ROUNDS} rounds of ${SECONDS} s: plain ${median(plainUs).toFixed(1)} µs (median)`);
  for (const [name, values] of ratios) if (name !== 'plain') console.log(`  ${name}: ${median(values).toFixed(3)} x plain (rounds ${Math.min(...values).toFixed(2)} - ${Math.max(...values).toFixed(2)})`);
} finally {
  for (const { client } of kinds) client.proc.kill();
  await server.call('exit').catch(() => undefined);
}
process.exit(0);
