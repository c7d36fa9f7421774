/**
 * `npm run compare`: the same app built three ways (apps.ts), the same scenarios against each, real
 * servers on 127.0.0.1 (one node on MemoryStore; two nodes on a real redis-server with connect-redis
 * and the Redis adapter), clients as socket.io-client in Node. "Tabs" are sockets sharing one cookie
 * jar, as a browser's tabs do: a login in one changes the cookie the others reconnect with. The recipe
 * and express-socket.io-session pages use plain socket.io-client, ours `connectWithSession`.
 *
 * Prints the table and writes it into docs/migration.md between the `compare` markers, with the
 * machine and the date (`--no-write` to only print).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { io as ioClient, type Socket } from 'socket.io-client';
import { connectWithSession } from '../../src/client/core.js';
import { startRedis } from '../../test/helpers/redis.js';
import { startApp, VARIANTS, type App, type AppOptions, type Variant } from './apps.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Jar = { cookie: string };

async function login(url: string, jar: Jar, name: string): Promise<void> {
  const res = await fetch(`${url}/login`, { method: 'POST', headers: { cookie: jar.cookie, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
  const set = res.headers.get('set-cookie');
  if (set) jar.cookie = set.split(';')[0];
}

async function httpGet(url: string, path: string, cookie: string): Promise<unknown> {
  return (await fetch(`${url}${path}`, { headers: { cookie } })).json();
}

/** A tab: the variant's client, connected with the jar's cookie (the jar object itself, so reconnects read its current cookie). */
async function tab(variant: Variant, url: string, jar: Jar): Promise<{ socket: Socket; ended: Promise<string> }> {
  const options = { transports: ['websocket'], extraHeaders: jar as unknown as Record<string, string> };
  let end!: (how: string) => void;
  const ended = new Promise<string>((resolve) => (end = resolve));
  let socket: Socket;
  if (variant === 'socket.io-sessions') {
    const s = connectWithSession(url, { ...options, onInvalid: 'none' });
    s.sessions.on('invalid', (ctx) => end(`told, reason \`${ctx.reason}\``));
    socket = s;
  } else {
    socket = ioClient(url, options);
    socket.on('disconnect', (reason) => end(`disconnected (${reason})`));
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    setTimeout(() => reject(new Error(`${variant}: no connect`)), 5000);
  });
  return { socket, ended };
}

async function ask(socket: Socket, event: string, ...args: unknown[]): Promise<unknown> {
  if (!socket.connected) return 'disconnected';
  return socket.timeout(2000).emitWithAck(event, ...args).catch(() => 'no answer');
}

const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, sleep(ms).then(() => undefined)]);

type Result = string;

async function withApp<T>(variant: Variant, options: Partial<AppOptions>, run: (app: App, jar: Jar) => Promise<T>): Promise<T> {
  const app = await startApp(variant, { store: new session.MemoryStore(), ...options });
  const jar = { cookie: '' };
  try {
    return await run(app, jar);
  } finally {
    await app.close();
  }
}

/** Two tabs, 30 adds each at once: how many of the 60 are in the cart afterwards. */
async function concurrentAdds(socketsAndUrl: Array<{ socket: Socket }>, readCart: () => Promise<unknown>): Promise<Result> {
  await Promise.all(socketsAndUrl.flatMap(({ socket }, t) => Array.from({ length: 30 }, (_, i) => ask(socket, 'add', `t${t}-${i}`))));
  await sleep(300); // express-socket.io-session saves after the ack
  const cart = (await readCart()) as string[] | null;
  return `${cart?.length ?? 0} of 60`;
}

/** Tab A logs in as someone else; tab B acts at once (every 250 ms for 4 s): the last answer it gets. */
const reLogin = (variant: Variant) =>
  withApp(variant, {}, async (app, jar) => {
    await login(app.url, jar, 'ann');
    const b = await tab(variant, app.url, jar);
    await login(app.url, jar, 'bob');
    // Asked every 250 ms for 4 s (a client reconnecting by itself gets the time to): the last answer.
    let who: unknown;
    for (let i = 0; i < 16 && who !== 'bob'; i++) {
      await sleep(250);
      who = await ask(b.socket, 'whoami');
    }
    const reconnecting = b.socket.active;
    b.socket.close();
    if (who === 'bob') return 'follows to the new user (bob)';
    if (who === 'ann') return 'keeps acting as the old user (ann)';
    return reconnecting ? `${who} after 4 s` : `${who} for good`;
  });

/** The outcomes of `n` tries, with their counts when they differ. */
async function tries(n: number, run: () => Promise<Result>): Promise<Result> {
  const counts = new Map<Result, number>();
  for (let i = 0; i < n; i++) {
    const result = await run();
    counts.set(result, (counts.get(result) ?? 0) + 1);
  }
  return counts.size === 1 ? [...counts.keys()][0] : [...counts].map(([result, count]) => `${result} (${count} of ${n})`).join('; ');
}

const SCENARIOS: Record<string, (variant: Variant) => Promise<Result>> = {
  '2 tabs × 30 concurrent cart adds (kept)': (variant) =>
    withApp(variant, {}, async (app, jar) => {
      await login(app.url, jar, 'ann');
      const tabs = [await tab(variant, app.url, jar), await tab(variant, app.url, jar)];
      const result = await concurrentAdds(tabs, () => httpGet(app.url, '/cart', jar.cookie));
      tabs.forEach(({ socket }) => socket.close());
      return result;
    }),
  'logout in tab A reaches tab B': (variant) =>
    withApp(variant, {}, async (app, jar) => {
      await login(app.url, jar, 'ann');
      const oldCookie = jar.cookie;
      const b = await tab(variant, app.url, jar);
      await fetch(`${app.url}/logout`, { method: 'POST', headers: { cookie: jar.cookie } });
      const reached = await within(b.ended, 1500);
      let result = reached ? `yes: ${reached}` : 'no';
      if (!reached) {
        await ask(b.socket, 'add', 'after logout');
        await sleep(300);
        const back = await httpGet(app.url, '/whoami', oldCookie);
        if (back) result += `; tab B's next event saves the destroyed session back (logged in as ${back} again)`;
      }
      b.socket.close();
      return result;
    }),
  're-login in tab A (as bob): tab B (5 tries)': (variant) => tries(5, () => reLogin(variant)),
  'idle socket past the session expiry (1.5 s)': (variant) =>
    withApp(variant, { maxAge: 1500 }, async (app, jar) => {
      await login(app.url, jar, 'ann');
      const started = Date.now();
      const b = await tab(variant, app.url, jar);
      const ended = await within(b.ended, 4000);
      b.socket.close();
      return ended ? `ended ${((Date.now() - started) / 1000).toFixed(1)} s after login: ${ended}` : 'stays connected (4 s)';
    }),
  'an active socket keeps the session alive': (variant) =>
    withApp(variant, { maxAge: 1500 }, async (app, jar) => {
      await login(app.url, jar, 'ann');
      const b = await tab(variant, app.url, jar);
      for (let i = 0; i < 10; i++) {
        await ask(b.socket, 'whoami');
        await sleep(300);
      }
      const user = await httpGet(app.url, '/whoami', jar.cookie);
      b.socket.close();
      return user ? 'yes (session alive after 3 s of socket activity)' : 'no (expired at 1.5 s despite the activity)';
    }),
  'two nodes on Redis: 2 × 30 adds kept; logout on node A reaches node B': async (variant) => {
    const redis = await startRedis();
    const clients: Array<ReturnType<typeof createClient>> = [];
    const client = async () => {
      const c = createClient({ url: redis.url });
      c.on('error', () => undefined);
      clients.push(c);
      return c.connect();
    };
    const store = new RedisStore({ client: await client() });
    const nodes: App[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const pub = await client();
        const sub = pub.duplicate();
        sub.on('error', () => undefined);
        clients.push(sub);
        await sub.connect();
        nodes.push(await startApp(variant, { store, redis: { pub, sub, lock: await client() } }));
      }
      const jar = { cookie: '' };
      await login(nodes[0].url, jar, 'ann');
      const tabs = [await tab(variant, nodes[0].url, jar), await tab(variant, nodes[1].url, jar)];
      const kept = await concurrentAdds(tabs, () => httpGet(nodes[0].url, '/cart', jar.cookie));
      await fetch(`${nodes[0].url}/logout`, { method: 'POST', headers: { cookie: jar.cookie } });
      const reached = await within(tabs[1].ended, 1500);
      tabs.forEach(({ socket }) => socket.close());
      return `${kept}; logout ${reached ? `crosses (${reached})` : 'does not cross'}`;
    } finally {
      for (const node of nodes) await node.close();
      for (const c of clients) await c.quit().catch(() => undefined);
      await redis.dispose();
    }
  },
};

async function main(): Promise<void> {
  const rows: string[] = [`| scenario | ${VARIANTS.join(' | ')} |`, `|---|${VARIANTS.map(() => '---').join('|')}|`];
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    const cells: string[] = [];
    for (const variant of VARIANTS) cells.push(await scenario(variant).catch((err: Error) => `failed: ${err.message}`));
    rows.push(`| ${name} | ${cells.join(' | ')} |`);
    console.log(rows.at(-1));
  }
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const block = `Last run: ${new Date().toISOString().slice(0, 10)}, ${machine} (\`npm run compare\`).\n\n${rows.join('\n')}`;
  if (process.argv.includes('--no-write')) return;
  const page = fileURLToPath(new URL('../../docs/migration.md', import.meta.url));
  const text = readFileSync(page, 'utf8');
  const markers = /<!-- compare:begin -->[\s\S]*?<!-- compare:end -->/;
  if (!markers.test(text)) throw new Error('docs/migration.md has no compare markers');
  const updated = text.replace(markers, () => `<!-- compare:begin -->\n${block}\n<!-- compare:end -->`);
  writeFileSync(page, updated);
  console.log('docs/migration.md updated');
}

await main();
process.exit(0);
