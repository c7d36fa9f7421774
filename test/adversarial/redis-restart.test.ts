// Redis crashes under load (issue 15 case 8): the reference server (server-stub/server.js with
// REDIS_URL and the lock, in its own process, so a crash is a crash) keeps serving while
// redis-server is SIGKILLed and restarted empty (no persistence). Before the fix it exited every time:
// `redis pub client: read ECONNRESET`, then an unhandled rejection.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectWithSession, type SessionSocket, type InvalidContext, type UnavailableContext } from '../../src/client/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startReferenceServer, type ReferenceServer } from '../helpers/reference-server.js';
import { connectClient, connected, delay, eventually } from '../helpers/servers.js';

const SECRET = 'redis restart secret';
const SESSIONS = 8;
const EMIT_EVERY_MS = 100;

interface Client {
  name: string;
  socket: SessionSocket;
  headers: { cookie: string };
  acks: number;
  invalid: InvalidContext[];
  unavailable: UnavailableContext[];
}

let redis: TestRedis | undefined;
let server: ReferenceServer | undefined;
after(async () => {
  await server?.dispose();
  await redis?.dispose();
});

async function login(name: string): Promise<string> {
  const res = await fetch(`${server!.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  assert.equal(res.status, 200, `login ${name}: HTTP ${res.status}`);
  await res.arrayBuffer(); // the whole body: express-session has saved the session by then
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

/** An SDK client with the session cookie, quick retries, no page reloads; emits `increment` every 100 ms. */
function client(name: string, cookie: string): Client {
  const c: Client = { name, headers: { cookie }, acks: 0, invalid: [], unavailable: [], socket: undefined as unknown as SessionSocket };
  c.socket = connectWithSession(server!.url, {
    forceNew: true,
    transports: ['websocket'],
    extraHeaders: c.headers, // read on every (re)connect: a new login replaces the cookie, as a browser's jar would
    onInvalid: 'none',
    retry: { min: 100, max: 400 },
    reconnectionDelay: 100,
    reconnectionDelayMax: 400,
    on: { invalid: (ctx) => c.invalid.push(ctx), unavailable: (ctx) => c.unavailable.push(ctx) },
  });
  return c;
}

function traffic(clients: Client[], stopped: () => boolean): Promise<void[]> {
  return Promise.all(
    clients.map(async (c) => {
      while (!stopped()) {
        if (c.socket.connected) c.socket.timeout(2000).emit('increment', (err: unknown) => void (err ? undefined : c.acks++));
        await delay(EMIT_EVERY_MS);
      }
    }),
  );
}

test('Redis SIGKILLed and restarted empty under load: the reference server stays up, clients get unavailable, then invalid (sessions gone), and work again after a new login', async (t) => {
  redis = await startRedis({ args: ['--appendonly', 'no'] }); // an unpersisted Redis: a restart loses every key
  server = await startReferenceServer({ env: { REDIS_URL: redis.url, SESSION_SECRET: SECRET, REVALIDATE_INTERVAL: '1000' } });
  // A failure shows how the server ended (the tail of what it printed).
  t.after(() => t.diagnostic(`reference server output, last lines: ${JSON.stringify(server!.output().split('\n').slice(-12))}`));
  const names = Array.from({ length: SESSIONS }, (_, i) => `user${i}`);
  const clients = await Promise.all(names.map(async (name) => client(name, await login(name))));
  t.after(() => clients.forEach((c) => (c.socket.sessions.dispose(), c.socket.close())));
  let stop = false;
  t.after(() => void (stop = true)); // a failed assertion below must not leave the traffic running (it kept the file alive)
  // Plain sockets that leave while Redis hangs: each leave makes the demo broadcast its connection count,
  // a publish of the adapter's that is still waiting for Redis's reply when Redis dies.
  const leaving = clients.slice(0, 3).map((c) => connectClient(server!.url, c.headers.cookie, { transports: ['websocket'] }));
  t.after(() => leaving.forEach((s) => s.close()));
  await Promise.all(leaving.map((s) => connected(s)));
  const running = traffic(clients, () => stop);
  await eventually(() => clients.every((c) => c.acks > 0), 15_000, 50);

  // Hung first (SIGSTOP), then killed, as a supervisor kills a stuck Redis: commands are in flight on every client.
  redis.freeze();
  leaving.forEach((s) => s.close());
  await delay(300); // wall clock: Redis stays hung while commands (the leaving sockets' adapter publishes) are in flight
  await redis.kill();
  const killedAt = Date.now();
  // Long enough for every client's next emits to meet the outage (and node-redis's reconnect attempts).
  await eventually(() => clients.some((c) => c.unavailable.length > 0), 10_000, 50);
  await delay(1000); // wall clock: the outage must last while every client keeps emitting into it (none may hear invalid)
  const invalidWhileDown = clients.flatMap((c) => c.invalid);
  await redis.start();
  t.diagnostic(`redis down ${Date.now() - killedAt} ms`);

  // The sessions went with the data: every client is told invalid and, after its one fresh try, stops.
  await eventually(() => clients.every((c) => c.invalid.some((i) => i.action === 'stop')), 20_000, 50);
  for (const c of clients) c.headers.cookie = await login(c.name);
  const acked = clients.map((c) => c.acks);
  for (const c of clients) c.invalid.at(-1)!.reconnect();
  await eventually(() => clients.every((c, i) => c.socket.connected && c.acks > acked[i]!), 20_000, 50);
  stop = true;
  await running;

  const output = server.output();
  t.diagnostic(`unavailable: ${clients.map((c) => c.unavailable.length).join(',')}; invalid reasons: ${[...new Set(clients.flatMap((c) => c.invalid.map((i) => i.reason)))]}`);
  assert.deepEqual(invalidWhileDown, [], 'an outage is not a logout');
  assert.ok(clients.every((c) => c.unavailable.length > 0), 'every client was told SESSION_UNAVAILABLE while Redis was away');
  // What Node prints when an unhandled rejection or an uncaught error ends the process.
  assert.doesNotMatch(output, /triggerUncaughtException|unhandled ?rejection|Node\.js v\d/i);
  const res = await fetch(`${server.url}/api/session`, { headers: { cookie: clients[0]!.headers.cookie } });
  assert.equal(res.status, 200, 'the server still answers');
  assert.equal(((await res.json()) as { user: string }).user, clients[0]!.name);
});
