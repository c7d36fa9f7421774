/**
 * `npm run bench`: connect time of plain socket.io vs socket.io-sessions (cookie, and a fetched
 * ticket overlapped with the transport handshake, and fetched first as a naive client would),
 * against servers in a child process (bench/server.ts) on loopback, measured in the same run,
 * interleaved round by round so drift hits every mode alike. Reports medians and ratios to plain socket.io, and one
 * HTTP round trip for scale. Writes docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { io as ioClient, type Socket } from 'socket.io-client';
import { connectWithSession } from '../src/client/index.js';
import { tickets } from '../src/client/tickets.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);
const WARMUP = 30;

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

/** The JSON line bench/server.ts prints once it listens. */
function firstLine(stream: NodeJS.ReadableStream): Promise<{ plainUrl: string; url: string; cookie: string }> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    lines.once('line', (text) => resolve(JSON.parse(text)));
    lines.once('close', () => reject(new Error('bench server exited')));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

async function main() {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./server.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { plainUrl, url, cookie } = await firstLine(child.stdout!);
  const server = { url };
  const fetchTicket = async () => (await fetch(`${server.url}/socket.io-sessions/token`, { headers: { cookie } })).json();
  const base = { forceNew: true, reconnection: false, onInvalid: 'none' as const };

  const modes: Record<string, () => Promise<number>> = {
    'plain socket.io': () => connectTime(() => ioClient(plainUrl, { forceNew: true, reconnection: false })),
    'sessions, cookie': () => connectTime(() => connectWithSession(server.url, { ...base, extraHeaders: { cookie } })),
    'sessions, fetched ticket (overlapped)': () => connectTime(() => connectWithSession(server.url, { ...base, credential: tickets({ source: fetchTicket }) })),
    'sessions, ticket fetched first (naive)': async () => {
      const started = performance.now();
      const { token } = (await fetchTicket()) as { token: string };
      await connectTime(() => connectWithSession(server.url, { ...base, auth: { sessionTicket: token } }));
      return performance.now() - started;
    },
    'one HTTP round trip (GET)': async () => {
      const started = performance.now();
      await (await fetch(`${server.url}/rtt`)).text();
      return performance.now() - started;
    },
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (const [name, run] of Object.entries(modes)) {
      const ms = await run();
      if (round >= WARMUP) samples[name]!.push(ms);
    }
  }
  child.kill();

  const plain = median(samples['plain socket.io']!);
  const rows = Object.entries(samples).map(([name, xs]) => `| ${name} | ${median(xs).toFixed(2)} | ${p90(xs).toFixed(2)} | ${(median(xs) / plain).toFixed(2)} |`);
  const cookieMs = median(samples['sessions, cookie']!);
  const overlapped = median(samples['sessions, fetched ticket (overlapped)']!);
  const rtt = median(samples['one HTTP round trip (GET)']!);
  const table = [
    `Connect time, ${ROUNDS} connects per mode after ${WARMUP} warm-up rounds, Node ${process.version}, socket.io-client default transports (polling, then upgrade), loopback, servers in a child process.`,
    '',
    '| mode | median ms | p90 ms | × plain socket.io |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
    '',
    `Fetched ticket over cookie: +${(overlapped - cookieMs).toFixed(2)} ms, ${((overlapped - cookieMs) / rtt).toFixed(2)} of one HTTP round trip (${rtt.toFixed(2)} ms).`,
  ].join('\n');
  console.log(table);
  writeFileSync(
    new URL('../docs/benchmarks.md', import.meta.url),
    `# Benchmarks\n\nMade by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}; numbers from one run on a 2-core machine.\n\n${table}\n`,
  );
}

await main();
