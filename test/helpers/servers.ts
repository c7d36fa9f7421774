/**
 * Real servers for integration tests: express + express-session + socket.io + this library on
 * a loopback port, and real socket.io-client sockets that carry the session cookie.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session, { MemoryStore, type Store } from 'express-session';
import { Server, type ServerOptions } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import { sign, unsign } from 'cookie-signature';
import { sessions, type SessionServer, type SessionsOptions } from '../../src/server/index.js';
import { unsignSessionCookie } from '../../src/server/session-id.js';

export const SECRET = 'test secret one';

export interface TestServer {
  url: string;
  port: number;
  store: Store;
  io: Server;
  sio: SessionServer;
  httpServer: HttpServer;
  /** Creates a session over HTTP (POST /login) and returns the Cookie header value. */
  login(data?: Record<string, unknown>): Promise<string>;
  /** The session as HTTP sees it (GET /session). */
  httpSession(cookie: string): Promise<Record<string, unknown>>;
  /** Writes keys into the session over HTTP (POST /session). */
  httpWrite(cookie: string, data: Record<string, unknown>): Promise<void>;
  logout(cookie: string): Promise<void>;
  /** GET the token endpoint with this cookie (and Origin, if given); the raw response. */
  tokenResponse(cookie?: string, origin?: string): Promise<Response>;
  /** A ticket for the cookie's session (throws unless 200). */
  ticket(cookie: string, origin?: string): Promise<{ token: string; expiresAt: number; expiresIn: number }>;
  close(): Promise<void>;
}

export interface TestServerOptions extends Partial<SessionsOptions> {
  /** express-session secret, if different from the library's. */
  sessionSecret?: string | string[];
  /** express-session's cookie options (e.g. a short maxAge). */
  sessionCookie?: session.CookieOptions;
  port?: number;
  /** Runs before the library is attached (e.g. io.use or io.on('connection')). */
  before?(io: Server): void;
  /** Attaches the library in place of `sessions(io, { store, secret, ...options })` (e.g. the seed's `enable()`). */
  attach?(io: Server, store: Store): SessionServer;
  /** Extra express routes (e.g. static pages), mounted before the session middleware. */
  routes?(app: express.Express): void;
  /** Options of the socket.io `Server` (e.g. `cors` for pages on another origin). */
  ioOptions?: Partial<ServerOptions>;
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const { sessionSecret, sessionCookie, port = 0, before, attach, routes, ioOptions, ...libraryOptions } = options;
  const store = libraryOptions.store ?? new MemoryStore();
  const secret = libraryOptions.secret ?? SECRET;
  const app = express();
  routes?.(app);
  // The token endpoint at its default path (/socket.io-sessions/token). It reads the cookie itself,
  // so it goes before express-session (which would load the session a second time, and answer 500
  // itself when the store fails). Set once the library is attached below.
  let tokenHandler: express.RequestHandler = (_req, _res, next) => next();
  app.use((req, res, next) => tokenHandler(req, res, next));
  app.use(express.json());
  app.use(session({ store, secret: sessionSecret ?? secret, resave: false, saveUninitialized: false, name: libraryOptions.name, cookie: sessionCookie }));
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      Object.assign(req.session, { user: 'alice', ...req.body });
      req.session.save((err2) => (err2 ? next(err2) : res.json({ ok: true })));
    });
  });
  app.get('/session', (req, res) => {
    const { cookie: _cookie, ...data } = req.session as unknown as Record<string, unknown>;
    res.json(data);
  });
  app.post('/session', (req, res, next) => {
    Object.assign(req.session, req.body);
    req.session.save((err) => (err ? next(err) : res.json({ ok: true })));
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
  const httpServer = createServer(app);
  const io = new Server(httpServer, ioOptions);
  const pollingCloses = awaitingPollingCloses(io);
  before?.(io);
  const sio = attach ? attach(io, store) : sessions(io, { store, secret, ...libraryOptions });
  try {
    tokenHandler = sio.tokenHandler();
  } catch {
    // no secret (a cutter-only set-up): no tickets
  }
  await new Promise<void>((resolve) => httpServer.listen(port, '127.0.0.1', resolve));
  const actualPort = (httpServer.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${actualPort}`;

  const request = async (path: string, cookie?: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(cookie ? { cookie } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res;
  };

  const tokenResponse = (cookie?: string, origin?: string) =>
    fetch(`${url}/socket.io-sessions/token`, { headers: { ...(cookie ? { cookie } : {}), ...(origin ? { origin } : {}) } });

  return {
    url,
    port: actualPort,
    store,
    io,
    sio,
    httpServer,
    async login(data = {}) {
      const res = await request('/login', undefined, data);
      const setCookie = res.headers.get('set-cookie');
      if (!setCookie) throw new Error('login set no cookie');
      return setCookie.split(';')[0];
    },
    async httpSession(cookie) {
      return (await request('/session', cookie)).json() as Promise<Record<string, unknown>>;
    },
    async httpWrite(cookie, data) {
      await request('/session', cookie, data);
    },
    async logout(cookie) {
      await request('/logout', cookie, {});
    },
    tokenResponse,
    async ticket(cookie, origin) {
      const res = await tokenResponse(cookie, origin);
      if (res.status !== 200) throw new Error(`token endpoint: HTTP ${res.status}`);
      return res.json();
    },
    async close() {
      sio.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      // No client polls a closed server: end the transports' wait for one now, not 30 s from now.
      for (const transport of pollingCloses) transport.shouldClose?.();
    },
  };
}

type PollingTransport = { shouldClose?: () => void; once(event: 'close', listener: () => void): unknown };

/**
 * The polling transports of `io` that wait for their client's next poll to close (engine.io sends the
 * close packet in that poll): a connection that ended while its client was not polling (a heartbeat
 * that expired, a page gone mid-handshake, socketio/socket.io#5088). Each waits at most engine.io's
 * closeTimeout, 30 s, on a ref'd timer; once the server is closed no poll comes, and those timers would
 * hold the test's process open for up to 30 s after its last test. `close()` ends the wait at once
 * (`shouldClose`, the transport's own orderly close: engine.io has no public way to do it).
 */
function awaitingPollingCloses(io: Server): Set<PollingTransport> {
  const waiting = new Set<PollingTransport>();
  io.engine.on('connection', (socket: { transport: PollingTransport; once(event: 'close', listener: () => void): unknown }) =>
    socket.once('close', () => {
      // (engine.io closed the socket's transport before this event: a polling one not writable is waiting now)
      const transport = socket.transport;
      if (!transport.shouldClose) return;
      waiting.add(transport);
      transport.once('close', () => waiting.delete(transport));
    }),
  );
  return waiting;
}

/** A plain socket.io-client socket that sends `cookie` (as a browser would) on every transport. */
export function connectClient(url: string, cookie?: string, options: Partial<ManagerOptions & SocketOptions> = {}): ClientSocket {
  return ioClient(url, {
    forceNew: true,
    reconnection: false,
    transports: ['websocket'],
    ...options,
    extraHeaders: { ...(cookie ? { cookie } : {}), ...options.extraHeaders },
  });
}

/** Resolves on `connect`, rejects with the connect_error (its `data` holds the library's code). */
export function connected(socket: ClientSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
}

/** The next `event` on an emitter, with its arguments; fails after `ms`. */
export function once<T extends unknown[] = unknown[]>(emitter: { once(event: string, listener: (...args: any[]) => void): unknown }, event: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${event}"`)), ms);
    emitter.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` until it returns a truthy value or `ms` passes. */
export async function eventually<T>(check: () => T | Promise<T>, ms = 5000, every = 25): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await delay(every);
  }
}

/** Resolves with the connect_error of a refused handshake (its `data` holds the library's code); rejects if the socket connects. */
export function refused(socket: ClientSocket, ms = 5000): Promise<Error & { data?: any }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for connect_error')), ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      reject(new Error('connected, expected connect_error'));
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      resolve(err as Error & { data?: any });
    });
  });
}

/** The raw session id inside a `name=s:<id>.<sig>` Cookie header value, unsigned with `secrets`. */
export function sidOf(cookie: string, secrets: string[] = [SECRET]): string {
  const [name] = cookie.split('=');
  const value = parseCookie(cookie)[name];
  const sid = value === undefined ? false : unsignSessionCookie(value, secrets);
  if (sid === false) throw new Error(`cannot unsign ${cookie}`);
  return sid;
}

/** The Cookie header value express-session would set for `sid` signed with `secret`. */
export function signedCookie(sid: string, secret: string = SECRET, name = 'connect.sid'): string {
  return serializeCookie(name, `s:${sign(sid, secret)}`);
}

/**
 * A tiny Connect-style cookie parser, as the seed's `connect.cookieParser(secret)`: `req.cookies`
 * from the header and, with a secret, `req.signedCookies` (unsigned ids; `false` for a bad signature).
 */
export function tinyCookieParser(secret?: string) {
  return (req: { headers: Record<string, string | string[] | undefined>; cookies?: Record<string, unknown>; signedCookies?: Record<string, unknown> }, _res: unknown, next: (err?: unknown) => void) => {
    const header = req.headers.cookie;
    const cookies: Record<string, unknown> = typeof header === 'string' ? { ...parseCookie(header) } : {};
    const signedCookies: Record<string, unknown> = {};
    if (secret) {
      for (const [name, value] of Object.entries(cookies)) {
        if (typeof value !== 'string' || !value.startsWith('s:')) continue;
        signedCookies[name] = unsign(value.slice(2), secret);
        delete cookies[name];
      }
    }
    req.cookies = cookies;
    req.signedCookies = signedCookies;
    next();
  };
}
