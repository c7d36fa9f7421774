/**
 * `node --import tsx bench/event-path.ts`: the server's own CPU per per-message event, without the
 * network: one process, EVENT_PATH_CONCURRENCY sessions with one socket each and one event in
 * flight on each (as the bench's 50 sockets: a turn of the event loop serves several, so a store's
 * deferred answer costs a share of a turn, not a whole one), and each event given straight to the
 * listener socket.io would call (per-message: the library's wrapper, taken with the public
 * `rawListeners`; the recipe: its handler, which reloads, increments, saves, then acks), interleaved
 * rounds. What it leaves out is the same for both but for one part: socket.io's packet decoding and
 * dispatch, the ack's encoding and write, the kernel's share (most of a server's CPU per event in
 * `npm run bench`) and the client; and per-message's packet middleware (`socket.use`), which only
 * per-message has. So it shows what the library's event path costs against the recipe's own work,
 * with less of the machine's noise than the throughput rows, and not the whole difference.
 * With EVENT_PATH_CONCURRENCY=1 (events one at a time, as before) every deferred store answer costs
 * a whole turn of the loop, which the recipe (two per event) pays twice: it overstates the recipe.
 *
 * Knobs: EVENT_PATH_STORES (memory,redis), EVENT_PATH_EVENTS (events per round, 3000),
 * EVENT_PATH_ROUNDS (20), EVENT_PATH_CONCURRENCY (50), EVENT_PATH_THRASH_KB (0; see `thrash`), BENCH_LIB (as for the bench:
 * the library's dist/ from that checkout).
 */
import express from 'express';
import session, { MemoryStore, type Store } from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { startRedis } from '../test/helpers/redis.js';
import { serverLib } from './lib.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const STORES = env('EVENT_PATH_STORES', 'memory,redis').split(',') as Array<'memory' | 'redis'>;
const EVENTS = Number(env('EVENT_PATH_EVENTS', '3000'));
const ROUNDS = Number(env('EVENT_PATH_ROUNDS', '20'));
const SECRET = 'event-path secret';

type Ack = (n: number) => void;
type Run = () => Promise<unknown>;
/** Sessions (one socket each) with an event in flight at once, as the bench's 50 sockets: a turn of the event loop serves several, as on the network. */
const CONCURRENCY = Number(env('EVENT_PATH_CONCURRENCY', '50'));

/** An HTTP + socket.io server on `store` with a logged-in session and one connected socket; `run` gives one event to its listener. */
async function serve(store: Store, kind: 'ours' | 'recipe', closers: Array<() => unknown>): Promise<Run[]> {
  const app = express();
  const middleware = session({ store, secret: SECRET, resave: false, saveUninitialized: false });
  app.use(middleware);
  app.post('/login', (req, res) => {
    Object.assign(req.session, { user: 'alice', counter: 0 });
    req.session.save(() => res.json({}));
  });
  const http = createServer(app);
  const io = new Server(http);
  if (kind === 'ours') {
    const { sessions } = await serverLib();
    const sio = sessions(io, { store, secret: SECRET, perMessage: true });
    sio.on('sconnection', (socket) =>
      socket.on('inc', (ack: Ack) => {
        socket.session.counter = ((socket.session.counter as number | undefined) ?? 0) + 1;
        ack(socket.session.counter as number);
      }),
    );
    closers.push(() => sio.close());
  } else {
    io.engine.use(middleware);
    io.on('connection', (socket) => socket.on('inc', (ack: Ack) => recipeInc(socket.request as express.Request, ack)));
  }
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  closers.push(() => io.close());
  const runs: Run[] = [];
  for (let i = 0; i < CONCURRENCY; i++) {
    const cookie = (await fetch(`${url}/login`, { method: 'POST' })).headers.get('set-cookie')!.split(';')[0]!;
    const client = connect(url, { transports: ['websocket'], extraHeaders: { cookie }, forceNew: true });
    closers.push(() => client.close());
    await new Promise((resolve) => client.once('connect', () => resolve(undefined)));
    await client.timeout(5000).emitWithAck('inc'); // the library wraps a listener at its first packet
    const socket = io.of('/').sockets.get(client.id!) as Socket;
    const [listener] = socket.rawListeners('inc') as Array<(ack: Ack) => void>;
    runs.push(() => new Promise((resolve) => listener!.call(socket, resolve)));
  }
  return runs;
}

/** The recipe's handler, as bench/server.ts has it. */
function recipeInc(req: express.Request, ack: Ack): void {
  req.session.reload((err) => {
    if (err) throw err;
    const data = req.session as unknown as { counter?: number };
    data.counter = (data.counter ?? 0) + 1;
    req.session.save((saveErr) => {
      if (saveErr) throw saveErr;
      ack(data.counter!);
    });
  });
}

/**
 * EVENT_PATH_THRASH_KB: after each event, read that much memory (one load per 64-byte line), as the
 * network's share of a server's work does between two events of one session on the network (socket.io,
 * ws, the kernel's buffers): what the event path keeps in long-lived objects is then out of the CPU's
 * caches at the next event. The read costs every variant the same; what differs is how much more each
 * path then costs (compare each with its own run without it).
 */
const THRASH_DOUBLES = Number(env('EVENT_PATH_THRASH_KB', '0')) * 128;
const junk = new Float64Array(Math.max(1, THRASH_DOUBLES));
let sink = 0;
function thrash(): void {
  for (let i = 0; i < THRASH_DOUBLES; i += 8) sink += junk[i]!;
}

async function cpuPerEvent(runs: Run[], events: number): Promise<number> {
  const before = process.cpuUsage();
  let left = events;
  await Promise.all(
    runs.map(async (run) => {
      while (left-- > 0) {
        await run();
        if (THRASH_DOUBLES > 0) thrash();
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / events;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const closers: Array<() => unknown> = [];
const redis = STORES.includes('redis') ? await startRedis({ args: ['--appendonly', 'no'] }) : undefined;
try {
  for (const store of STORES) {
    const makeStore = async (prefix: string): Promise<Store> => {
      if (store === 'memory') return new MemoryStore();
      const client = createClient({ url: redis!.url });
      await client.connect();
      closers.push(() => client.quit());
      return new RedisStore({ client, prefix });
    };
    const ours = await serve(await makeStore('ours:'), 'ours', closers);
    const recipe = await serve(await makeStore('recipe:'), 'recipe', closers);
    await cpuPerEvent(ours, EVENTS);
    await cpuPerEvent(recipe, EVENTS);
    const us = { ours: [] as number[], recipe: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 ? (['ours', 'recipe'] as const) : (['recipe', 'ours'] as const)) us[kind].push(await cpuPerEvent(kind === 'ours' ? ours : recipe, EVENTS));
    }
    const ratios = us.ours.map((o, i) => o / us.recipe[i]!);
    console.log(
      `${store}: CPU per event, per-message ${median(us.ours).toFixed(2)} µs, the recipe ${median(us.recipe).toFixed(2)} µs; ` +
        `per-message / recipe ${median(ratios).toFixed(3)} (rounds ${Math.min(...ratios).toFixed(2)} - ${Math.max(...ratios).toFixed(2)})`,
    );
  }
} finally {
  for (const close of closers.reverse()) await close();
  await redis?.dispose();
}
process.exit(0);
