/**
 * A client process of the bench (forked by bench/run.ts; several run at once). It holds groups
 * of sockets and runs what the orchestrator asks over IPC:
 * - open: connect a group's sockets (plain socket.io-client, or `connectWithSession` with the session cookie),
 * - inc: every socket of a group sends acked `inc` events, one in flight at a time, until a deadline,
 * - arm / reconnected: a restart storm (mark a group's sockets, then wait until all have reconnected),
 * - connectTimes: sequential connects of each kind (plain, cookie, tickets), interleaved,
 * - close: disconnect a group's sockets.
 * Times are epoch milliseconds with sub-millisecond precision, comparable across processes.
 */
import { io, type Socket } from 'socket.io-client';
import { clientLib, ticketsLib } from './lib.js';
import { serve } from './ipc.js';
import { latencyProxy } from './latency-proxy.js';

const { connectWithSession } = await clientLib();
const { tickets } = await ticketsLib();

export const now = () => performance.timeOrigin + performance.now();

export type ConnectKind = 'plain' | 'cookie' | 'ticketFirst' | 'ticketOverlapped';

/** One socket to open: with `cookie`, through `connectWithSession` (or, with `plain`, socket.io-client sending the cookie); without, plain socket.io-client. */
export interface SocketSpec {
  url: string;
  cookie?: string;
  plain?: boolean;
}

interface Tracked {
  socket: Socket;
  /** Set on every `connect`; cleared by `arm`. */
  connectedAt?: number;
}

const groups = new Map<string, Tracked[]>();
const group = (name: string) => groups.get(name) ?? [];
const counts = { invalid: 0, unavailable: 0 };

const base = { forceNew: true, transports: ['websocket'], onInvalid: 'none' as const };

/** socket.io-client's reconnection options (`reconnection: false` unless given). */
export interface Reconnection {
  reconnection?: boolean;
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
}

function openSocket({ url, cookie, plain }: SocketSpec, reconnection: Reconnection): Socket {
  const options = { ...base, reconnection: false, ...reconnection };
  if (cookie === undefined) return io(url, options);
  if (plain) return io(url, { ...options, extraHeaders: { cookie } });
  const socket = connectWithSession(url, { ...options, extraHeaders: { cookie } });
  socket.sessions.on('invalid', () => counts.invalid++);
  socket.sessions.on('unavailable', () => counts.unavailable++);
  return socket;
}

function connected(socket: Socket, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('connect timed out')), ms);
    socket.once('connect', () => (clearTimeout(timer), resolve()));
    socket.once('connect_error', (err) => (clearTimeout(timer), reject(err)));
  });
}

/** Runs `task` over `items`, at most `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Time from `started` (default: now) to the socket `open()` returns being connected; then it is closed. */
async function timeConnect(open: () => Socket, started = performance.now()): Promise<number> {
  const socket = open();
  try {
    await connected(socket, 10_000);
    return performance.now() - started;
  } finally {
    socket.disconnect();
  }
}

serve({
  cpu: () => process.cpuUsage(),
  async open({ name, specs, reconnection = {}, concurrency = 20 }: { name: string; specs: SocketSpec[]; reconnection?: Reconnection; concurrency?: number }) {
    const started = now();
    let failed = 0;
    const sockets: Tracked[] = [];
    groups.set(name, sockets);
    await pool(specs, concurrency, async (spec) => {
      const tracked: Tracked = { socket: openSocket(spec, reconnection) };
      tracked.socket.on('connect', () => (tracked.connectedAt = now()));
      sockets.push(tracked);
      await connected(tracked.socket).catch(() => failed++);
    });
    return { ms: now() - started, failed };
  },

  async inc({ name, seconds }: { name: string; seconds: number }) {
    const start = now();
    const deadline = start + seconds * 1000;
    let errors = 0;
    let end = start;
    const acked = await Promise.all(
      group(name).map(async ({ socket }) => {
        let n = 0;
        while (now() < deadline) {
          try {
            await socket.timeout(10_000).emitWithAck('inc');
            n++;
            end = now();
          } catch {
            errors++;
          }
        }
        return n;
      }),
    );
    return { acked, errors, start, end };
  },

  arm({ name }: { name: string }) {
    for (const tracked of group(name)) tracked.connectedAt = undefined;
    counts.invalid = counts.unavailable = 0;
  },

  async reconnected({ name, timeoutMs }: { name: string; timeoutMs: number }) {
    const sockets = group(name);
    const deadline = now() + timeoutMs;
    while (sockets.some((t) => t.connectedAt === undefined) && now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const times = sockets.flatMap((t) => (t.connectedAt === undefined ? [] : [t.connectedAt]));
    return { times, missing: sockets.length - times.length, ...counts };
  },

  close({ name }: { name: string }) {
    for (const { socket } of group(name)) socket.disconnect();
    groups.delete(name);
  },

  /**
   * Each kind connects to its own server (`targets`): a server that serves more requests per
   * second answers faster (it stays scheduled and warm), so sharing one would favour some kinds.
   * With `oneWayMs`, every connection (and fetch) goes through a loopback proxy that delays each
   * direction by that much.
   */
  async connectTimes({ targets, iterations, warmup, oneWayMs }: { targets: Record<ConnectKind, SocketSpec>; iterations: number; warmup: number; oneWayMs?: number }) {
    const proxies: Array<{ close(): void }> = [];
    const via = async ({ url, cookie }: SocketSpec): Promise<{ url: string; cookie: string }> => {
      if (!oneWayMs) return { url, cookie: cookie ?? '' };
      const proxy = await latencyProxy(Number(new URL(url).port), oneWayMs);
      proxies.push(proxy);
      return { url: `http://127.0.0.1:${proxy.port}`, cookie: cookie ?? '' };
    };
    const [plain, cookie, first, overlapped] = await Promise.all([targets.plain, targets.cookie, targets.ticketFirst, targets.ticketOverlapped].map(via));
    const once = { ...base, reconnection: false };
    const fetchTicket = (target: { url: string; cookie: string }) => async () => {
      const res = await fetch(`${target.url}/socket.io-sessions/token`, { headers: { cookie: target.cookie } });
      if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status}`);
      return (await res.json()) as { token: string; expiresIn: number };
    };
    const variants: Record<ConnectKind, () => Promise<number>> = {
      plain: () => timeConnect(() => io(plain!.url, once)),
      cookie: () => timeConnect(() => connectWithSession(cookie!.url, { ...once, extraHeaders: { cookie: cookie!.cookie } })),
      ticketFirst: async () => {
        const started = performance.now();
        const { token } = await fetchTicket(first!)();
        return timeConnect(() => connectWithSession(first!.url, { ...once, auth: { sessionTicket: token } }), started);
      },
      ticketOverlapped: () => timeConnect(() => connectWithSession(overlapped!.url, { ...once, credential: tickets({ source: fetchTicket(overlapped!) }) })),
    };
    const names = Object.keys(variants) as ConnectKind[];
    const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
    for (let i = 0; i < warmup + iterations; i++) {
      // Rotate the order, so no kind always follows the same one.
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length]!;
        const ms = await variants[name]!();
        if (i >= warmup) samples[name]!.push(ms);
      }
    }
    for (const proxy of proxies) proxy.close();
    return samples;
  },
});
