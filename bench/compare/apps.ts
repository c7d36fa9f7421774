/**
 * One small app built three ways, each written from its own documented usage (none of their code
 * is copied): socket.io's "How to use with express-session" recipe (`io.engine.use(sessionMiddleware)`,
 * reload and save by hand, `socket.join(session.id)` + `io.in(id).disconnectSockets()` at logout, the
 * reload timer for expiry), express-socket.io-session (`io.use(sharedsession(session, { autoSave }))`),
 * and this library (`sessions(io, { perMessage: true })` + `httpLock()`).
 *
 * The app: POST /login { name } (a new session id, as apps should), POST /logout, GET /cart; socket
 * events `add(item, ack)` (appends to the session's cart) and `whoami(ack)`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import express from 'express';
import session, { type Store } from 'express-session';
import { Server, type Socket } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { createClient } from 'redis';
import { redisLock, sessions } from '../../src/server/index.js';

export type Variant = 'recipe' | 'express-socket.io-session' | 'socket.io-sessions';
export const VARIANTS: Variant[] = ['recipe', 'express-socket.io-session', 'socket.io-sessions'];

type RedisClient = ReturnType<typeof createClient>;

export interface AppOptions {
  store: Store;
  /** express-session's cookie maxAge (the expiry scenarios use a short one). */
  maxAge?: number;
  /** Two nodes: the adapter's clients and one for the lock. */
  redis?: { pub: RedisClient; sub: RedisClient; lock: RedisClient };
}

export interface App {
  url: string;
  close(): Promise<void>;
}

const SECRET = 'compare secret';
const RELOAD_INTERVAL = 500; // the recipe's hand-written expiry check, and our revalidateInterval

declare module 'express-session' {
  interface SessionData {
    user: string;
    cart: string[];
  }
}

type Ack = (...args: unknown[]) => void;
type Handlers = { add(session: session.Session & Partial<session.SessionData>, item: string): number };
const cartAdd: Handlers['add'] = (s, item) => (s.cart = [...(s.cart ?? []), item]).length;

export async function startApp(variant: Variant, { store, maxAge, redis }: AppOptions): Promise<App> {
  const app = express();
  const httpServer = createServer(app);
  const io = new Server(httpServer);
  if (redis) io.adapter(createAdapter(redis.pub, redis.sub));
  const sessionMiddleware = session({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie: { maxAge } });
  let beforeSession: express.RequestHandler | undefined;
  let onLogout: (sid: string) => void = () => undefined;
  let closeLib = () => undefined as void;

  if (variant === 'recipe') {
    io.engine.use(sessionMiddleware);
    io.on('connection', (socket: Socket) => {
      const req = socket.request as express.Request;
      void socket.join(req.session.id);
      const timer = setInterval(() => req.session.reload((err) => err && socket.conn.close()), RELOAD_INTERVAL);
      socket.on('disconnect', () => clearInterval(timer));
      socket.on('add', (item: string, ack: Ack) =>
        req.session.reload((err) => {
          if (err) return socket.disconnect();
          const size = cartAdd(req.session, item);
          req.session.save(() => ack(size));
        }),
      );
      socket.on('whoami', (ack: Ack) => req.session.reload((err) => (err ? socket.disconnect() : ack(req.session.user))));
    });
    onLogout = (sid) => io.in(sid).disconnectSockets();
  } else if (variant === 'express-socket.io-session') {
    const require = createRequire(import.meta.url);
    const sharedsession = require('express-socket.io-session') as (s: unknown, o: { autoSave: boolean }) => Parameters<Server['use']>[0];
    io.use(sharedsession(sessionMiddleware, { autoSave: true }));
    io.on('connection', (socket: Socket) => {
      const s = (socket.handshake as unknown as { session: session.Session & Partial<session.SessionData> }).session;
      // autoSave: the library touches and saves the session after each event by itself.
      socket.on('add', (item: string, ack: Ack) => ack(cartAdd(s, item)));
      socket.on('whoami', (ack: Ack) => ack(s.user));
    });
  } else {
    const sio = sessions(io, { store, secret: SECRET, perMessage: true, revalidateInterval: RELOAD_INTERVAL, lock: redis ? redisLock(redis.lock) : undefined });
    beforeSession = sio.httpLock();
    sio.on('sconnection', (socket) => {
      socket.on('add', (item: string, ack: Ack) => ack(cartAdd(socket.session, item)));
      socket.on('whoami', (ack: Ack) => ack(socket.session.user));
    });
    sio.on('serror', () => undefined); // the scenarios provoke refusals on purpose
    closeLib = () => sio.close();
  }

  if (beforeSession) app.use(beforeSession);
  app.use(sessionMiddleware);
  app.post('/login', express.json(), (req, res, next) =>
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = String(req.body?.name ?? 'ann');
      req.session.save((err2) => (err2 ? next(err2) : res.json({ user: req.session.user })));
    }),
  );
  app.post('/logout', (req, res, next) => {
    const sid = req.session.id;
    req.session.destroy((err) => {
      if (err) return next(err);
      onLogout(sid);
      res.json({ ok: true });
    });
  });
  app.get('/cart', (req, res) => res.json(req.session.cart ?? null));
  app.get('/whoami', (req, res) => res.json(req.session.user ?? null));

  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
    async close() {
      closeLib();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}
