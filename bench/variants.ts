/**
 * The server variants of the small harnesses (bench/profile.ts, bench/paired.ts), by name: `pm-` per-message
 * with the SDK's clients, `pmp-` per-message with plain socket.io-client sending the cookie, `pc-`
 * per-connection, `recipe-` socket.io's own express-session recipe, `floor-` the least any library can do
 * per event (one `store.set`, see bench/server.ts), each `-memory` or `-redis`; `plain`.
 * `name@<checkout>` serves the variant from that checkout's built dist/ (before/after under one load).
 * Each variant's server is its own process (bench/server.ts); its sockets live in the client processes.
 */
import { Child } from './ipc.js';
import type { ServerSpec } from './server.js';
import type { SocketSpec } from './client.js';

export function spec(variant: string, redisUrl: string): ServerSpec {
  const store = variant.endsWith('redis') ? 'redis' : 'memory';
  if (variant.startsWith('pm-') || variant.startsWith('pmp-')) return { sessions: { perMessage: true, store, prefix: 'pm:' }, redisUrl };
  if (variant.startsWith('pc-')) return { sessions: { perMessage: false, store, prefix: 'pc:' }, redisUrl };
  if (variant.startsWith('recipe-')) return { recipe: { store, prefix: 'recipe:' }, redisUrl };
  if (variant.startsWith('floor-')) return { recipe: { store, prefix: 'floor:', floor: true }, redisUrl };
  return {};
}

export interface Open {
  variant: string;
  server: Child;
  inc(seconds: number): Promise<Array<{ acked: number[] }>>;
}

/** The variant's server, with `sockets` sessions holding `data` (one socket each), spread over `clients`. */
export async function open(name: string, redisUrl: string, clients: Child[], { sockets, data, serverFlags = [] }: { sockets: number; data: Record<string, unknown>; serverFlags?: string[] }): Promise<Open> {
  const [variant, lib] = name.split('@') as [string, string | undefined];
  const server = new Child('./server.ts', [JSON.stringify(spec(variant, redisUrl))], serverFlags, lib ? { BENCH_LIB: lib } : undefined);
  const { ready } = await server.announced;
  const cookies: string[] = variant === 'plain' ? [] : await server.call('seed', { count: sockets, data });
  const specs: SocketSpec[] = Array.from({ length: sockets }, (_, i) => ({ url: ready.url, cookie: cookies[i], plain: variant.startsWith('recipe') || variant.startsWith('floor-') || variant.startsWith('pmp-') }));
  await Promise.all(clients.map((c, p) => c.call('open', { name, specs: specs.filter((_, j) => j % clients.length === p) })));
  return { variant: name, server, inc: (seconds) => Promise.all(clients.map((c) => c.call('inc', { name, seconds }))) };
}

/** A process's CPU time so far (user + system), µs. */
export const cpuOf = async (child: Child) => Object.values(await child.call<NodeJS.CpuUsage>('cpu')).reduce((a, b) => a + b, 0);

/** Stop the servers and the clients. */
export async function closeAll(servers: Open[], clients: Child[]): Promise<void> {
  await Promise.all(servers.map(async ({ server }) => (await server.call('exit').catch(() => undefined), await server.exited)));
  for (const c of clients) c.proc.kill();
}
