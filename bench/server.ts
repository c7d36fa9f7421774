/**
 * One server the bench measures, in its own process (forked by bench/run.ts with the variant as
 * a JSON argument, see {@link ServerSpec}): plain socket.io, or express + express-session +
 * socket.io + socket.io-sessions (loaded from BENCH_LIB's dist/) on a MemoryStore or connect-redis,
 * optionally with the Redis lock and the Socket.IO Redis adapter; or socket.io's own express-session
 * recipe (`recipe`). Every socket has an acked `inc` event: plain increments a process counter,
 * the others the session's `counter`.
 *
 * HTTP (sessions only): the token endpoint (sio.tokenHandler(), before express-session) and
 * GET /session (the session as HTTP sees it, through express-session).
 * IPC commands: seed (sessions written through the store, as express-session writes them at a
 * login; much faster than thousands of HTTP logins), cpu, heap (after forced GC; needs
 * --expose-gc), stats, exit.
 */
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHook } from 'node:async_hooks';
import { Session as Inspector } from 'node:inspector/promises';
import { randomBytes } from 'node:crypto';
import { sign } from 'cookie-signature';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import express from 'express';
import session, { MemoryStore, type SessionData, type Store } from 'express-session';
import { Server } from 'socket.io';
import { createClient } from 'redis';
import { RedisStore } from 'connect-redis';
import { createAdapter } from '@socket.io/redis-adapter';
import { LIB_DIR, serverLib } from './lib.js';
import { serve, announce } from './ipc.js';

export const SECRET = 'bench secret';

export interface ServerSpec {
  /** Absent: plain socket.io. */
  sessions?: {
    perMessage: boolean;
    store: 'memory' | 'redis';
    /** `lock: redisLock(client)` (Redis only). */
    lock?: boolean;
    /** Key prefix of the Redis store, so variants sharing one redis-server keep apart. */
    prefix?: string;
  };
  /**
   * Instead of `sessions`: socket.io's own express-session recipe, per event (issue 16 item 7):
   * `io.engine.use(sessionMiddleware)`, and in the handler `socket.request.session.reload()`,
   * increment, `save()`, ack. The same two store calls per event as per-message mode.
   */
  recipe?: {
    store: 'memory' | 'redis';
    prefix?: string;
    /**
     * The floor, not the recipe: per event, one `store.set` of the session the handshake loaded
     * (no reload, none of express-session's save bookkeeping), then the ack. Less than any library
     * that keeps every acked increment in the store can do: what is left of the recipe's cost to remove.
     */
    floor?: boolean;
  };
  redisUrl?: string;
  /** Another checkout whose dist/ serves this variant (BENCH_BASE_LIB: "before" measured in the same run). */
  lib?: string;
  /** @socket.io/redis-adapter on `redisUrl` (several nodes). */
  adapter?: boolean;
  /** 0 (default): any free port. */
  port?: number;
  /**
   * Instead of the above, a whole app on an SQLite store in `dataDir` (workload 8): `reference`, the
   * reference server itself (server-stub/app.js, as `npm start` runs it); `recipe`, plain socket.io
   * with express-session on the same store, through socket.io's documented `io.engine.use(session(...))`.
   */
  app?: { kind: 'reference' | 'recipe'; dataDir: string };
}

const spec: ServerSpec = JSON.parse(process.argv[2] ?? '{}');
const redisClients: Array<ReturnType<typeof createClient>> = [];
const redis = async () => {
  const client = createClient({ url: spec.redisUrl });
  client.on('error', () => undefined); // the restart storm kills this process, not Redis; nothing to report
  redisClients.push(client);
  await client.connect();
  return client;
};

/** `events`: acked `inc` events of every variant (a CPU profile's denominator). */
const stats = { counter: 0, events: 0, sinvalid: 0, serror: 0 };
let store: Store | undefined;
let app = express();
let httpServer = createServer(app);
let io = new Server(httpServer);
if (spec.adapter) io.adapter(createAdapter(await redis(), await redis()));

if (spec.app) {
  ({ app, httpServer, io, store } = await appOnSqlite(spec.app));
} else if (spec.recipe) {
  const client = spec.recipe.store === 'redis' ? await redis() : undefined;
  store = client ? new RedisStore({ client, prefix: spec.recipe.prefix }) : new MemoryStore();
  const middleware = httpSession(store);
  io.engine.use(middleware);
  const inc = spec.recipe.floor ? floorInc : recipeInc;
  io.on('connection', (socket) => socket.on('inc', (ack: (n: number) => void) => inc(socket.request as express.Request, ack)));
} else if (spec.sessions) {
  const { sessions, redisLock } = await serverLib();
  const { perMessage, prefix } = spec.sessions;
  let lock;
  if (spec.sessions.store === 'redis') {
    const client = await redis();
    store = new RedisStore({ client, prefix });
    if (spec.sessions.lock) lock = redisLock(client);
  } else {
    store = new MemoryStore();
  }
  const sio = sessions(io, { store, secret: SECRET, perMessage, lock });
  sio.on('sconnection', (socket) =>
    socket.on('inc', (ack: (n: number) => void) => {
      socket.session.counter = (socket.session.counter ?? 0) + 1;
      stats.events++;
      ack(socket.session.counter);
    }),
  );
  sio.on('sinvalid', () => stats.sinvalid++);
  sio.on('serror', () => stats.serror++);
  app.use(sio.tokenHandler()); // before express-session: it reads the cookie itself
  httpSession(store);
} else {
  io.on('connection', (socket) => socket.on('inc', (ack: (n: number) => void) => (stats.events++, ack(++stats.counter))));
}

/** express-session on `store` for the app, with GET /session (the session as HTTP sees it); the middleware. */
function httpSession(sessionStore: Store) {
  const middleware = session({ store: sessionStore, secret: SECRET, resave: false, saveUninitialized: false });
  app.use(middleware);
  app.get('/session', (req, res) => {
    const { cookie: _cookie, ...data } = req.session as unknown as Record<string, unknown>;
    res.json(data);
  });
  return middleware;
}

/**
 * The recipe's handler: reload the session from the store, increment, save, then ack. A store
 * error is counted and left unacked, so the run reports it as an ack timeout.
 */
function recipeInc(req: express.Request, ack: (n: number) => void): void {
  req.session.reload((err) => {
    if (err) return void stats.serror++;
    // reload() replaced req.session with the stored copy: read it only now.
    const data = req.session as unknown as { counter?: number };
    data.counter = (data.counter ?? 0) + 1;
    req.session.save((saveErr) => (saveErr ? void stats.serror++ : (stats.events++, ack(data.counter!))));
  });
}

/** The floor's handler (see `ServerSpec.recipe.floor`): increment the handshake's session object, write it, ack. */
function floorInc(req: express.Request, ack: (n: number) => void): void {
  const data = req.session as unknown as { counter?: number };
  data.counter = (data.counter ?? 0) + 1;
  store!.set(req.sessionID, req.session as SessionData, (err) => (err ? void stats.serror++ : (stats.events++, ack(data.counter!))));
}

/** Workload 8's servers, listening on `spec.port`: the reference server, or socket.io's own recipe on the same SQLite store. */
async function appOnSqlite({ kind, dataDir }: NonNullable<ServerSpec['app']>) {
  const port = spec.port ?? 0;
  if (kind === 'reference') {
    const { createServer: reference } = await import(pathToFileURL(resolve(LIB_DIR, 'server-stub/app.js')).href);
    return (await reference({ port, dataDir, secret: SECRET })) as { app: express.Express; httpServer: ReturnType<typeof createServer>; io: Server; store: Store };
  }
  const { SqliteStore } = await import(pathToFileURL(resolve(LIB_DIR, 'server-stub/sqlite-store.js')).href);
  const recipeStore: Store = new SqliteStore({ path: join(dataDir, 'sessions.db') });
  const recipeApp = express();
  const server = createServer(recipeApp);
  const recipeIo = new Server(server);
  const middleware = session({ store: recipeStore, secret: SECRET, resave: false, saveUninitialized: false });
  recipeApp.use(middleware);
  recipeIo.engine.use(middleware);
  recipeIo.on('connection', (socket) => socket.on('inc', (ack: (n: number) => void) => ack(++stats.counter)));
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return { app: recipeApp, httpServer: server, io: recipeIo, store: recipeStore };
}

/** A new session with `data` (and express-session's cookie) in the store; its signed Cookie header value. */
function seedOne(data: Record<string, unknown>): Promise<string> {
  const sid = randomBytes(24).toString('base64url');
  return new Promise((resolve, reject) =>
    store!.set(sid, { cookie: new session.Cookie(), ...data } as SessionData, (err) => (err ? reject(err) : resolve(`connect.sid=${encodeURIComponent(`s:${sign(sid, SECRET)}`)}`))),
  );
}

/** A CPU profile of a window of the run (bench/profile.ts), not of start-up and connects as `--cpu-prof` would be. */
const profile = {
  inspector: undefined as Inspector | undefined,
  async start({ intervalUs = 100 }: { intervalUs?: number }) {
    const inspector = (this.inspector ??= new Inspector());
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await inspector.post('Profiler.start');
    // What outlives the young generation's collections (promoted, then left for the costly full ones): where it was allocated.
    if (process.env.PROFILE_PROMOTED) await inspector.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false } as never);
    return stats.events;
  },
  async stop({ file }: { file: string }) {
    const { profile: result } = await this.inspector!.post('Profiler.stop');
    if (process.env.PROFILE_PROMOTED) writeFileSync(file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify((await this.inspector!.post('HeapProfiler.stopSampling')).profile));
    this.inspector!.disconnect();
    writeFileSync(file, JSON.stringify(result));
    return stats.events;
  },
};

/** Async resources made in a window (promises, ticks, immediates, timers), by type: their count per event says how much machinery one event costs. */
const asyncCount = {
  counts: new Map<string, number>(),
  events: 0,
  hook: createHook({ init: (_id, type) => void asyncCount.counts.set(type, (asyncCount.counts.get(type) ?? 0) + 1) }),
  start() {
    this.counts.clear();
    this.events = stats.events;
    this.hook.enable();
  },
  stop() {
    this.hook.disable();
    return { events: stats.events - this.events, counts: Object.fromEntries(this.counts) };
  },
};

serve({
  async seed({ count, data }: { count: number; data: Record<string, unknown> }) {
    if (!store) throw new Error('a plain server has no sessions');
    const cookies: string[] = [];
    for (let i = 0; i < count; i += 100) cookies.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => seedOne(data)))));
    return cookies;
  },
  cpu: () => process.cpuUsage(),
  heap: async () => {
    if (!global.gc) throw new Error('start the server with --expose-gc');
    for (let i = 0; i < 3; i++) {
      global.gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return process.memoryUsage().heapUsed;
  },
  stats: () => ({ ...stats, sockets: io.engine.clientsCount }),
  profileStart: (options: { intervalUs?: number }) => profile.start(options),
  profileStop: (options: { file: string }) => profile.stop(options),
  /** System calls (reads, writes) and context switches so far: an event's cost outside JavaScript. */
  sys: () => {
    const io = Object.fromEntries(readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((line) => line.split(': ')).map(([k, v]) => [k, Number(v)]));
    const { voluntaryContextSwitches, involuntaryContextSwitches } = process.resourceUsage();
    return { syscr: io.syscr, syscw: io.syscw, voluntary: voluntaryContextSwitches, involuntary: involuntaryContextSwitches };
  },
  countStart: () => asyncCount.start(),
  countStop: () => asyncCount.stop(),
  exit: () => {
    // Answer first; then leave at once (a --cpu-prof profile is written on exit).
    setImmediate(async () => {
      setTimeout(() => process.exit(0), 2000).unref();
      io.close();
      await Promise.allSettled(redisClients.map((c) => c.quit()));
      process.exit(0);
    });
  },
});

if (!httpServer.listening) await new Promise<void>((done) => httpServer.listen(spec.port ?? 0, '127.0.0.1', done));
const { port } = httpServer.address() as AddressInfo;
announce({ ready: { url: `http://127.0.0.1:${port}`, port } });
