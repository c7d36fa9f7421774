/**
 * The reference server: Express + express-session on an embedded SQLite store, Socket.IO,
 * and socket.io-sessions sharing that store and secret. `npm start` runs it (server.js);
 * the browser tests start it as a child process.
 *
 * With `redisUrl` (env REDIS_URL) it scales out instead: sessions in Redis (connect-redis),
 * the Socket.IO Redis adapter (cross-node events, logout on one node reaches sockets on every
 * node), and the library's Redis lock (per-message units of work and HTTP writes of one session
 * run one at a time across nodes) unless `lock: false` (env SESSION_LOCK=off). Run several
 * nodes side by side with different PORTs and the same SESSION_SECRET.
 *
 * @example
 *   const { url, close } = await createServer({ port: 0, dataDir: '/tmp/demo' });
 *   const node = await createServer({ port: 3001, redisUrl: 'redis://127.0.0.1:6379', secret: 's3cret' });
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, STATUS_CODES } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { sessions, redisLock } from 'socket.io-sessions/server';
import { SqliteStore } from './sqlite-store.js';

const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');
const ONE_DAY_MS = 24 * 60 * 60 * 1000;
const COOKIE_NAME = 'connect.sid';
/** The demo's connection count goes to every socket at most this often (ms). */
const COUNT_PUSH_MS = 1000;
/** How long close() lets open connections finish before cutting them. */
const CLOSE_GRACE_MS = 1500;

/**
 * Builds and starts the reference server.
 *
 * @param {object} [options]
 * @param {number} [options.port=3000]  0 picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {string} [options.dataDir='.data']  holds sessions.db and the generated secret
 * @param {boolean} [options.perMessage=true]  socket.io-sessions per-message mode
 * @param {string|string[]} [options.secret]  default: env SESSION_SECRET, else a secret persisted in dataDir
 * @param {number} [options.pagePort]  a second listener for the same app (not Socket.IO) whose pages
 *   connect to the socket server cross-origin with tickets: pages on http://localhost:pagePort,
 *   sockets on http://127.0.0.1:port. 0 picks a free port; undefined: none.
 * @param {number} [options.ticketTtl=60000]  lifetime of session tickets, ms
 * @param {string} [options.redisUrl]  sessions in Redis + the Socket.IO Redis adapter, instead of SQLite
 * @param {boolean} [options.lock=true]  with Redis: the library's cross-node session lock (sockets and HTTP writes)
 * @param {number} [options.revalidateInterval]  how often open sockets check (and, if active, touch) their session, ms
 * @param {number} [options.cookieMaxAge=86400000]  session cookie (and store TTL) lifetime, ms
 */
export async function createServer({
  port = 3000,
  host = '127.0.0.1',
  dataDir = '.data',
  perMessage = true,
  secret,
  pagePort,
  ticketTtl,
  redisUrl,
  lock = true,
  revalidateInterval,
  cookieMaxAge = ONE_DAY_MS,
} = {}) {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // its sessions and secret: for this user only
  if (redisUrl && !secret && !process.env.SESSION_SECRET) {
    console.warn('socket.io-sessions reference server: REDIS_URL without SESSION_SECRET; every node needs the same secret (this one uses the secret in its DATA_DIR)');
  }
  secret ??= process.env.SESSION_SECRET || loadOrCreateSecret(join(dataDir, 'secret'));
  const redis = redisUrl ? await connectRedis(redisUrl, lock) : undefined;
  const store = redis ? redis.store : new SqliteStore({ path: join(dataDir, 'sessions.db'), keep: worthKeeping });

  const app = express();
  app.disable('x-powered-by');
  const httpServer = createHttpServer(app);
  // The page origin's pages reach the socket server cross-origin: allow it for polling (CORS).
  // Ticket handshakes are bound to the page origin by the ticket itself; cookie handshakes from it
  // would need `origins` too, and are not used.
  const pageOrigins = [];
  const io = new Server(httpServer, { cors: { origin: (origin, cb) => cb(null, pageOrigins.includes(origin)), credentials: true } });
  // Before sessions(): the library sees whether the adapter reaches other nodes.
  if (redis) io.adapter(redis.adapter);
  const sio = sessions(io, { store, secret, perMessage, ticketTtl, revalidateInterval, lock: redis?.lock });

  // The token endpoint (GET /socket.io-sessions/token): before express-session, since it reads the
  // cookie itself (one store read, and a typed 503 instead of express-session's 500 when the store
  // fails); and before the lock: minting reads only (its ?renew=1 takes the lock itself).
  app.use(sio.tokenHandler());
  // Login CSRF and the like: a browser sends this user's cookie with another site's form post, so a
  // request that may change a session must come from a page of the origin it is sent to (the check
  // `sessions()` makes of cookie handshakes). Browsers send Origin on every POST; a client without
  // one (curl, a Node client) is no other site's page. Before the lock and the session: a refused
  // request loads nothing.
  app.use((req, res, next) => {
    const { origin } = req.headers;
    if (req.method === 'GET' || req.method === 'HEAD' || origin === undefined || origin === `${req.protocol}://${req.headers.host}`) return next();
    res.status(403).json({ error: 'cross-origin request refused' });
  });
  // With the lock, an HTTP request that may write the session holds it from before express-session
  // loads the session until the response is finished (after express-session saved it).
  if (redis?.lock) app.use(sio.httpLock());
  app.use(
    session({
      store,
      secret,
      name: COOKIE_NAME,
      saveUninitialized: false,
      resave: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: cookieMaxAge },
    }),
  );

  // Pages that need a session create one on first visit; modifying it makes express-session save it
  // (with SQLite, in memory until it is worth keeping: see the store's `keep`).
  const ensureSession = (req, _res, next) => {
    req.session.createdAt ??= Date.now();
    next();
  };
  // Set once listening: the socket server's origin, and the page origin's (when there is a page listener).
  let socketUrl = '';
  let pageUrl;
  // The demo pages, with their navigation bar (one for all of them) and the socket server's URL filled
  // in. Links are relative on the socket origin; from the page origin they point back to the socket origin.
  const page = (file, { fromPageOrigin = false } = {}) => (_req, res, next) => {
    readFile(join(PUBLIC_DIR, file), 'utf8').then((html) => {
      const nav = navBar(file, fromPageOrigin ? socketUrl : '', pageUrl);
      // (No `no-store` on the socket origin's pages: it would keep them out of the back/forward cache.)
      if (fromPageOrigin) res.set('Cache-Control', 'no-store');
      res.type('html').send(html.replace('<!-- demo-nav -->', nav).replaceAll('%SOCKET_URL%', socketUrl));
    }, next);
  };

  app.get(['/', '/index.html'], ensureSession, page('index.html'));
  // The seed's example page, byte for byte (no navigation bar). `root`, not an absolute path: send()
  // refuses any path with a dot-directory in it (e.g. ~/.cache/…).
  app.get('/ping.html', ensureSession, (_req, res) => res.sendFile('ping.html', { root: PUBLIC_DIR }));
  // Deliberately no ensureSession: this page shows the SDK giving up on an invalid session.
  app.get('/no-session.html', page('no-session.html'));

  app.get('/api/session', (req, res) => {
    res.set('Cache-Control', 'no-store');
    res.json(publicView(req.session));
  });

  // An HTTP write of the session the sockets write too (the demo's counter), for the lock's guarantee.
  app.post('/api/increment', (req, res, next) => {
    req.session.counter = (req.session.counter || 0) + 1;
    req.session.save((err) => (err ? next(err) : res.set('Cache-Control', 'no-store').json(publicView(req.session))));
  });

  app.post('/login', express.json(), express.urlencoded({ extended: false }), (req, res, next) => {
    const name = typeof req.body?.name === 'string' ? req.body.name.trim().slice(0, 64) : '';
    if (!name) return res.status(400).json({ error: 'name is required' });
    // A new id on privilege change (session fixation); destroying the old one tells its sockets.
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = name;
      req.session.createdAt = Date.now();
      req.session.save((err) => {
        if (err) return next(err);
        res.json({ ok: true, ...publicView(req.session) });
      });
    });
  });

  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie(COOKIE_NAME, { path: '/', httpOnly: true, sameSite: 'lax' });
      res.json({ ok: true });
    });
  });

  // Served on the page origin: connects to the socket server of the other origin with tickets.
  app.get('/cross-origin.html', ensureSession, page('cross-origin.html', { fromPageOrigin: true }));

  app.use(express.static(PUBLIC_DIR, { index: false }));

  // Instead of Express's default error page, which shows the stack unless NODE_ENV=production: a
  // short answer (a bad request body, a failed store), the error in the log when it is the server's.
  app.use((err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const status = err.status >= 400 && err.status < 600 ? err.status : 500;
    if (status >= 500) console.error('socket.io-sessions reference server:', err);
    res.status(status).json({ error: STATUS_CODES[status] });
  });

  // The demo page shows how many connections the server holds (with shared tabs: one per browser).
  // Pushed at most once per COUNT_PUSH_MS, not per connection: a broadcast to every socket on every
  // connect is quadratic when thousands reconnect at once after a restart.
  let opened = 0;
  let countPush;
  const connectionCount = () => ({ open: io.engine.clientsCount, opened });
  const pushCount = () => {
    countPush ??= setTimeout(() => {
      countPush = undefined;
      io.emit('connections', connectionCount());
    }, COUNT_PUSH_MS).unref();
  };
  io.on('connection', (socket) => {
    opened += 1;
    pushCount();
    socket.on('disconnect', pushCount);
  });

  sio.on('sconnection', (socket, _session) => {
    // Per-message mode reloads socket.session before each handler and saves it before the ack goes out.
    socket.on('increment', (ack) => {
      socket.session.counter = (socket.session.counter || 0) + 1;
      if (typeof ack === 'function') ack({ counter: socket.session.counter });
    });
    socket.on('state', (ack) => {
      if (typeof ack === 'function') ack({ counter: socket.session.counter ?? 0, user: socket.session.user ?? null, connections: connectionCount() });
    });
    if (perMessage) {
      // The seed's per-message API: a client `socket.send(msg, cb)` arrives here; the library acks after the save.
      socket.on('smessage', (message, _session) => {
        socket.send(message);
      });
    } else {
      // The seed's per-connection API: plain `message` events, acked by the app.
      socket.on('message', (message, ack) => {
        socket.send(message);
        if (typeof ack === 'function') ack();
      });
    }
  });

  sio.on('sinvalid', (socket, reason) => {
    if (process.env.DEBUG_SESSIONS) console.log(`sinvalid: ${reason} (socket ${socket.id})`);
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const actualPort = httpServer.address().port;
  const shownHost = host === '127.0.0.1' || host === '::1' || host === 'localhost' ? 'localhost' : host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  socketUrl = `http://127.0.0.1:${actualPort}`;

  // The second origin: the same app (pages, token endpoint, sessions), no Socket.IO.
  let pageServer;
  if (pagePort !== undefined) {
    pageServer = createHttpServer(app);
    await new Promise((resolve, reject) => {
      pageServer.once('error', (err) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`socket.io-sessions reference server: port ${pagePort}, for the cross-origin demo page, is taken (PAGE_PORT=0 picks a free one)`, { cause: err }) : err),
      );
      pageServer.listen(pagePort, host, resolve);
    });
    pageUrl = `http://localhost:${pageServer.address().port}`;
    pageOrigins.push(pageUrl);
  }
  // Printed once every listener is up (a page port already taken ended the process after "on http://...").
  if (redis) console.log(`socket.io-sessions reference server: sessions in Redis (${redact(redisUrl)}), Redis adapter, lock ${redis.lock ? 'on' : 'off'}`);
  console.log(`socket.io-sessions reference server on http://${shownHost}:${actualPort}`);
  if (pageServer) console.log(`socket.io-sessions cross-origin page on ${pageUrl}/cross-origin.html (sockets to ${socketUrl})`);

  // Every TCP connection, so a shutdown can end the ones that do not close by themselves.
  const connections = new Set();
  httpServer.on('connection', (conn) => {
    connections.add(conn);
    conn.once('close', () => connections.delete(conn));
  });

  let closing;
  const close = ({ grace = CLOSE_GRACE_MS } = {}) =>
    (closing ??= new Promise((resolve) => {
      // After the grace period, connections still open (a hung request, a websocket whose close
      // handshake never completes) are cut, so shutdown cannot hang on a client.
      const cut = setTimeout(() => {
        if (connections.size === 0) return;
        console.log(`socket.io-sessions reference server: closing ${connections.size} lingering connection(s)`);
        for (const conn of connections) conn.destroy();
      }, grace);
      cut.unref();
      // io.close() disconnects every socket (the library saves sessions on disconnect) and then
      // closes the http server; only after that may the database go.
      clearTimeout(countPush);
      sio.close();
      pageServer?.close();
      pageServer?.closeAllConnections();
      io.close(() => {
        clearTimeout(cut);
        if (redis) redis.close().then(resolve, resolve);
        else {
          store.close();
          resolve();
        }
      });
    }));

  return { httpServer, io, sio, store, app, url, pageUrl, close };
}

/**
 * Redis for scaling out: one client for sessions (and the lock), two more for the adapter's
 * pub/sub. Loaded only when asked for, so the SQLite default does not need them installed.
 * Connection errors are logged, not thrown: node-redis reconnects by itself, and while Redis is
 * down the store fails fast (no offline queue), which the library turns into the retryable
 * SESSION_UNAVAILABLE instead of letting handshakes hang.
 */
async function connectRedis(url, lockWanted) {
  const [{ createClient }, { RedisStore }, { createAdapter }] = await Promise.all([
    import('redis'),
    import('connect-redis'),
    import('@socket.io/redis-adapter'),
  ]);
  // One log line per failure and per recovery, not one per reconnect attempt.
  const logged = (redisClient, name) => {
    let down = false;
    redisClient.on('error', (err) => {
      if (!down) console.error(`socket.io-sessions reference server: redis ${name} client: ${err?.message ?? err}`);
      down = true;
    });
    redisClient.on('ready', () => {
      if (down) console.log(`socket.io-sessions reference server: redis ${name} client ready again`);
      down = false;
    });
    return redisClient;
  };
  const client = logged(createClient({ url, disableOfflineQueue: true }), 'session');
  // The adapter publishes without awaiting: its clients keep the offline queue, so a publish while
  // Redis restarts is delivered afterwards instead of rejecting unhandled.
  const pubClient = settledPublishes(logged(client.duplicate({ disableOfflineQueue: false }), 'pub'));
  const subClient = logged(client.duplicate({ disableOfflineQueue: false }), 'sub');
  await Promise.all([client.connect(), pubClient.connect(), subClient.connect()]);
  const lock = lockWanted ? redisLock(client) : undefined;
  return {
    store: new RedisStore({ client }),
    adapter: createAdapter(pubClient, subClient),
    lock,
    async close() {
      await Promise.allSettled([client, pubClient, subClient].map((c) => (c.isOpen ? c.quit() : undefined)));
    },
  };
}

/**
 * The adapter publishes without awaiting: a publish still waiting for its reply when the connection
 * drops (Redis killed or restarted) would reject unhandled and end the process. That broadcast is
 * lost either way (the adapter's documented behaviour); the publish resolves to 0 receivers instead.
 */
function settledPublishes(pubClient) {
  const publish = pubClient.publish.bind(pubClient);
  pubClient.publish = (...args) => publish(...args).catch(() => 0);
  return pubClient;
}

/** A Redis URL without its password, for logs. */
function redact(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis';
  }
}

/**
 * The demo pages' navigation bar: `base` ('' for links on the socket server's origin, else that
 * origin), the cross-origin page on `pageUrl` when there is a page listener. The seed's page is
 * linked, but left as it is.
 */
function navBar(current, base, pageUrl) {
  const links = [
    [`${base}/`, 'index.html', 'Demo'],
    [`${base}/no-session.html`, 'no-session.html', 'No session'],
    ...(pageUrl ? [[`${pageUrl}/cross-origin.html`, 'cross-origin.html', 'Cross-origin, tickets']] : []),
    [`${base}/ping.html`, 'ping.html', "The seed's page"],
  ];
  const items = links.map(([href, file, text]) => (file === current ? `<strong aria-current="page">${text}</strong>` : `<a href="${href}">${text}</a>`));
  return `<nav id="demo-nav" style="display:flex;gap:1rem;padding-bottom:.5rem;border-bottom:1px solid #ddd">${items.join('')}</nav>`;
}

/**
 * Whether the SQLite store writes a session to its file: once it holds something besides its cookie
 * and `createdAt` (a login, a counter). A first visit's session stays in memory until then, so a
 * crawler or a `curl` loop does not grow sessions.db.
 */
function worthKeeping(sess) {
  return Object.keys(sess).some((key) => key !== 'cookie' && key !== 'createdAt');
}

/** What the demo may see of a session: never its id, only a short non-reversible tag. */
function publicView(sess) {
  return {
    counter: sess?.counter ?? 0,
    user: sess?.user ?? null,
    id: sess?.createdAt ? createHash('sha256').update(sess.id).digest('base64url').slice(0, 8) : null,
  };
}

/** A random secret created once per data dir, so sessions survive a restart without configuration. */
function loadOrCreateSecret(file) {
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing) return existing;
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('base64url');
  try {
    // 'wx': if another process won the race, use its secret instead of overwriting it.
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (err) {
    if (err.code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
}
