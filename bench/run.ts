/**
 * `npm run bench`: socket.io-sessions against plain socket.io, measured in the same run against
 * servers in a child process (bench/server.ts) on loopback, interleaved round by round so drift
 * hits every mode alike. Reports medians, p90 and ratios to plain socket.io. Writes docs/benchmarks.md.
 *
 * 1. Connect time: plain; sessions with the cookie; with a ticket fetched from the token endpoint
 *    overlapped with the transport handshake (tickets()); with the ticket fetched first (naive).
 * 2. An acked event that increments the session counter: plain (a process counter); per-connection
 *    and per-message on MemoryStore; per-message on Redis without and with the cross-node lock.
 */
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { io as ioClient, type Socket } from 'socket.io-client';
import { connectWithSession } from '../src/client/index.js';
import { tickets } from '../src/client/tickets.js';
import { latencyProxy } from './latency-proxy.js';

/** One-way delay of the emulated network for the second connect table. */
const ONE_WAY_MS = 5;

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const WARMUP = 30;

interface Endpoint {
  url: string;
  cookie: string;
}
interface Servers {
  plainUrl: string;
  memory: Endpoint;
  memoryPerMessage: Endpoint;
  redisNoLock: Endpoint;
  redisLocked: Endpoint;
}

/** The JSON line bench/server.ts prints once it listens. */
function firstLine(stream: NodeJS.ReadableStream): Promise<Servers> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    lines.once('line', (text) => resolve(JSON.parse(text)));
    lines.once('close', () => reject(new Error('bench server exited')));
  });
}

function connectTime(open: () => Socket): Promise<number> {
  const started = performance.now();
  const socket = open();
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      const ms = performance.now() - started;
      socket.disconnect();
      resolve(ms);
    });
    socket.once('connect_error', reject);
  });
}

function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => sorted(xs)[Math.floor(xs.length * 0.9)]!;

/** Runs every mode once per round, WARMUP + ROUNDS rounds; returns the samples after warm-up. */
async function measure(modes: Record<string, () => Promise<number>>, rounds = ROUNDS): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
  for (let round = 0; round < WARMUP + rounds; round++) {
    for (const [name, run] of Object.entries(modes)) {
      const ms = await run();
      if (round >= WARMUP) samples[name]!.push(ms);
    }
  }
  return samples;
}

function table(samples: Record<string, number[]>, baseline: string): string {
  const base = median(samples[baseline]!);
  return [
    '| mode | median ms | p90 ms | × plain socket.io |',
    '| --- | ---: | ---: | ---: |',
    ...Object.entries(samples).map(([name, xs]) => `| ${name} | ${median(xs).toFixed(3)} | ${p90(xs).toFixed(3)} | ${(median(xs) / base).toFixed(2)} |`),
  ].join('\n');
}

async function main() {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./server.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  const servers = await firstLine(child.stdout!);
  const { plainUrl, memory } = servers;
  const fetchTicket = async () => (await fetch(`${memory.url}/socket.io-sessions/token`, { headers: { cookie: memory.cookie } })).json();
  const base = { forceNew: true, reconnection: false, onInvalid: 'none' as const };

  // 1. Connect time.
  const connects = await measure({
    'plain socket.io': () => connectTime(() => ioClient(plainUrl, { forceNew: true, reconnection: false })),
    'sessions, cookie': () => connectTime(() => connectWithSession(memory.url, { ...base, extraHeaders: { cookie: memory.cookie } })),
    'sessions, fetched ticket (overlapped)': () => connectTime(() => connectWithSession(memory.url, { ...base, credential: tickets({ source: fetchTicket }) })),
    'sessions, ticket fetched first (naive)': async () => {
      const started = performance.now();
      const { token } = (await fetchTicket()) as { token: string };
      await connectTime(() => connectWithSession(memory.url, { ...base, auth: { sessionTicket: token } }));
      return performance.now() - started;
    },
    'one HTTP round trip (GET)': async () => {
      const started = performance.now();
      await (await fetch(`${memory.url}/rtt`)).text();
      return performance.now() - started;
    },
  });

  // 1b. The same through a proxy that adds network latency: where overlapping can hide a request.
  const proxy = await latencyProxy(Number(new URL(memory.url).port), ONE_WAY_MS);
  const far = `http://127.0.0.1:${proxy.port}`;
  const fetchTicketFar = async () => (await fetch(`${far}/socket.io-sessions/token`, { headers: { cookie: memory.cookie } })).json();
  const farConnects = await measure(
    {
      'sessions, cookie': () => connectTime(() => connectWithSession(far, { ...base, extraHeaders: { cookie: memory.cookie } })),
      'sessions, fetched ticket (overlapped)': () => connectTime(() => connectWithSession(far, { ...base, credential: tickets({ source: fetchTicketFar }) })),
      'sessions, ticket fetched first (naive)': async () => {
        const started = performance.now();
        const { token } = (await fetchTicketFar()) as { token: string };
        await connectTime(() => connectWithSession(far, { ...base, auth: { sessionTicket: token } }));
        return performance.now() - started;
      },
      'one HTTP round trip (GET)': async () => {
        const started = performance.now();
        await (await fetch(`${far}/rtt`)).text();
        return performance.now() - started;
      },
    },
    Math.ceil(ROUNDS / 3),
  );
  proxy.close();

  // 2. Acked session updates, one at a time on an open socket.
  const open = (endpoint: Endpoint) => connected(connectWithSession(endpoint.url, { ...base, transports: ['websocket'], extraHeaders: { cookie: endpoint.cookie } }));
  const sockets = {
    'plain socket.io (process counter)': await connected(ioClient(plainUrl, { forceNew: true, reconnection: false, transports: ['websocket'] })),
    'sessions per-connection, MemoryStore': await open(servers.memory),
    'sessions per-message, MemoryStore': await open(servers.memoryPerMessage),
    'sessions per-message, Redis, no lock': await open(servers.redisNoLock),
    'sessions per-message, Redis, lock': await open(servers.redisLocked),
  };
  const acked = (socket: Socket) => async () => {
    const started = performance.now();
    await socket.emitWithAck('inc');
    return performance.now() - started;
  };
  const updates = await measure(Object.fromEntries(Object.entries(sockets).map(([name, s]) => [name, acked(s)])), ROUNDS * 3);
  Object.values(sockets).forEach((s) => s.disconnect());
  await new Promise((resolve) => setTimeout(resolve, 300)); // let the servers finish their disconnect saves
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();

  const cookieMs = median(connects['sessions, cookie']!);
  const overlapped = median(connects['sessions, fetched ticket (overlapped)']!);
  const naive = median(connects['sessions, ticket fetched first (naive)']!);
  const rtt = median(connects['one HTTP round trip (GET)']!);
  const noLock = median(updates['sessions per-message, Redis, no lock']!);
  const locked = median(updates['sessions per-message, Redis, lock']!);
  const report = [
    `Node ${process.version}; servers in a child process, client in this one, loopback; ${WARMUP} warm-up rounds.`,
    '',
    `### Connect time (${ROUNDS} connects per mode; socket.io-client's default transports: polling, then upgrade)`,
    '',
    table(connects, 'plain socket.io'),
    '',
    `A fetched ticket costs +${(overlapped - cookieMs).toFixed(2)} ms over the cookie when overlapped with the handshake, ` +
      `+${(naive - cookieMs).toFixed(2)} ms when fetched first; one HTTP round trip here is ${rtt.toFixed(2)} ms. ` +
      'On loopback a "round trip" is mostly CPU on a 2-core machine, which overlapping cannot hide; over a network the fetch hides behind the transport handshake.',
    '',
    `### Connect time with ${ONE_WAY_MS} ms of one-way latency (a loopback proxy, bench/latency-proxy.ts; ${Math.ceil(ROUNDS / 3)} connects per mode)`,
    '',
    table(farConnects, 'sessions, cookie').replace('× plain socket.io', '× cookie'),
    '',
    `Here the overlapped fetch costs +${(median(farConnects['sessions, fetched ticket (overlapped)']!) - median(farConnects['sessions, cookie']!)).toFixed(2)} ms over the cookie, ` +
      `fetching first +${(median(farConnects['sessions, ticket fetched first (naive)']!) - median(farConnects['sessions, cookie']!)).toFixed(2)} ms; one round trip is ${median(farConnects['one HTTP round trip (GET)']!).toFixed(2)} ms.`,
    '',
    `### An acked event that increments the session counter (${ROUNDS * 3} per mode, websocket)`,
    '',
    table(updates, 'plain socket.io (process counter)'),
    '',
    `The Redis lock (SET NX PX + compare-and-delete) costs +${(locked - noLock).toFixed(3)} ms per per-message event (${((locked / noLock - 1) * 100).toFixed(0)} %).`,
  ].join('\n');
  console.log(report);
  writeFileSync(
    new URL('../docs/benchmarks.md', import.meta.url),
    `# Benchmarks\n\nMade by \`npm run bench\` (bench/run.ts, servers in bench/server.ts) on ${new Date().toISOString().slice(0, 10)}, one run on the project's 2-core machine. Ratios are against plain socket.io measured in the same run.\n\n${report}\n`,
  );
}

await main();
// Keep-alive fetch connections and closed clients' timers must not hold the process open.
process.exit(0);
