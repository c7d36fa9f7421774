/**
 * State that both HTTP routes and socket handlers read, change and write back (a cart): the README's
 * set-up (per-message mode, `httpLock()` before express-session) loses no write, on one node without
 * any `lock` option. Without httpLock(), express-session's whole-session save of a copy loaded before
 * a socket write (or another request's) overwrites it: the second test shows the loss it prevents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { Server } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { sessions, type SessionLock } from '../../src/server/index.js';

declare module 'express-session' {
  interface SessionData {
    user: string;
    cart: string[];
  }
}

/** The README's server, plus a cart written from both sides. Each write waits a little, as a real route's work would. */
async function cartServer({ httpLock }: { httpLock: boolean }) {
  const store = new session.MemoryStore();
  const secret = 'cart secret';
  const app = express();
  const httpServer = createServer(app);
  const io = new Server(httpServer);
  const sio = sessions(io, { store, secret, perMessage: true });
  if (httpLock) app.use(sio.httpLock());
  app.use(session({ store, secret, resave: false, saveUninitialized: false }));
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = 'ann';
      req.session.save((err2) => (err2 ? next(err2) : res.json({ ok: true })));
    });
  });
  app.post('/cart/:item', async (req, res) => {
    const cart = req.session.cart ?? [];
    await new Promise((resolve) => setTimeout(resolve, 5));
    req.session.cart = [...cart, req.params.item];
    res.json({ size: req.session.cart.length });
  });
  app.get('/cart', (req, res) => res.json(req.session.cart ?? []));
  sio.on('sconnection', (socket) => {
    socket.on('add', async (item: string, ack: (size: number) => void) => {
      const cart = socket.session.cart ?? [];
      await new Promise((resolve) => setTimeout(resolve, 5));
      socket.session.cart = [...cart, item];
      ack(socket.session.cart.length);
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  return {
    url,
    async close() {
      sio.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

async function loggedIn(url: string): Promise<string> {
  const res = await fetch(`${url}/login`, { method: 'POST' });
  await res.arrayBuffer(); // the whole body: express-session has saved the session by then
  return res.headers.get('set-cookie')!.split(';')[0];
}

async function connected(url: string, cookie: string): Promise<ClientSocket> {
  const socket = ioClient(url, { transports: ['websocket'], extraHeaders: { cookie }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** 10 HTTP adds and 10 socket adds, all at once, interleaved; the cart afterwards. */
async function addFromBothSides(url: string, cookie: string, socket: ClientSocket): Promise<string[]> {
  const adds: Array<Promise<unknown>> = [];
  for (let i = 0; i < 10; i++) {
    adds.push(fetch(`${url}/cart/http${i}`, { method: 'POST', headers: { cookie } }).then((r) => assert.equal(r.status, 200)));
    adds.push(socket.timeout(10_000).emitWithAck('add', `socket${i}`));
  }
  await Promise.all(adds);
  return (await fetch(`${url}/cart`, { headers: { cookie } })).json() as Promise<string[]>;
}

/** The cart after 10 HTTP and 10 socket adds at once, on a cart server with or without httpLock(). */
async function cartAfterAdds(httpLock: boolean): Promise<string[]> {
  const server = await cartServer({ httpLock });
  const cookie = await loggedIn(server.url);
  const socket = await connected(server.url, cookie);
  try {
    return await addFromBothSides(server.url, cookie, socket);
  } finally {
    socket.close();
    await server.close();
  }
}

test('the README set-up (per-message mode, httpLock() on one node): 10 HTTP and 10 socket adds to one cart at once, none lost', async () => {
  const cart = await cartAfterAdds(true);
  assert.deepEqual([...cart].sort(), [...Array.from({ length: 10 }, (_, i) => `http${i}`), ...Array.from({ length: 10 }, (_, i) => `socket${i}`)].sort());
});

test('without httpLock(), the same adds lose writes (what httpLock() is for)', async () => {
  const cart = await cartAfterAdds(false);
  assert.ok(cart.length < 20, `expected lost writes without httpLock(), got all ${cart.length}`);
});

/** A lock of the app's own (the SessionLock interface): one holder per session id at a time, in this process. */
function mutex(): SessionLock {
  const tails = new Map<string, Promise<void>>();
  return {
    async acquire(sid) {
      const before = tails.get(sid) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      tails.set(sid, before.then(() => mine));
      await before;
      return async () => release();
    },
  };
}

for (const [perMessage, withLock, leaves] of [
  [true, false, false],
  [true, true, false],
  [false, false, false],
  [false, false, true],
  [false, true, true],
] as const) {
  test(`${perMessage ? 'per-message' : 'per-connection (saveDelay 60 s)'} + httpLock()${withLock ? ' + lock' : ''}: a change the socket made outside a handler (a timer after the handler${leaves ? ', after the socket left' : ''}) is saved before an HTTP request takes its turn, so the request's later write of the same key is not overwritten by it, and neither side's push to the cart is lost`, async (t) => {
    const store = new session.MemoryStore();
    const secret = 'late secret';
    const app = express();
    const httpServer = createServer(app);
    const io = new Server(httpServer);
    const sio = sessions(io, { store, secret, perMessage, saveDelay: 60_000, ...(withLock && { lock: mutex() }) });
    t.after(async () => {
      sio.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    });
    app.use(sio.httpLock());
    app.use(session({ store, secret, resave: false, saveUninitialized: false }));
    app.post('/login', (req, res, next) => {
      req.session.regenerate((err) => {
        if (err) return next(err);
        Object.assign(req.session, { user: 'ann', note: 'initial', cart: ['a'] });
        req.session.save((err2) => (err2 ? next(err2) : res.json({ ok: true })));
      });
    });
    app.post('/note', (req, res) => {
      req.session.note = 'from-http';
      req.session.cart = [...(req.session.cart ?? []), 'http-item'];
      res.json({ ok: true });
    });
    let changedLate!: () => void;
    const late = new Promise<void>((resolve) => (changedLate = resolve));
    sio.on('sconnection', (socket) => {
      socket.on('hold', (ack: () => void) => {
        const cart = socket.session.cart as string[];
        const session = socket.session;
        ack();
        // After the handler: outside any unit (the app's timer, holding the cart it read); with
        // `leaves`, once the socket left (its copy's change then waits out saveDelay on its own).
        const change = () =>
          setTimeout(() => {
            session.note = 'from-socket';
            cart.push('socket-item');
            changedLate();
          }, 10);
        if (leaves) socket.once('disconnect', change);
        else change();
      });
      socket.on('other', (ack: () => void) => ack());
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    const cookie = await loggedIn(url);
    const socket = await connected(url, cookie);
    t.after(() => socket.close());
    await socket.timeout(3000).emitWithAck('hold');
    if (leaves) socket.close();
    await late;
    const written = await fetch(`${url}/note`, { method: 'POST', headers: { cookie } });
    assert.equal(written.status, 200);
    // The session's next unit of work, which saved the socket's change over it; after the socket
    // left, the save due within saveDelay (before: it was not saved before the request, and came after it).
    if (!leaves) await socket.timeout(3000).emitWithAck('other');
    await sio.flush();
    const stored = await new Promise<Record<string, unknown>>((resolve, reject) =>
      store.all!((err, all) => (err ? reject(err) : resolve(Object.values(all as Record<string, Record<string, unknown>>)[0]!))),
    );
    assert.equal(stored.note, 'from-http', "the HTTP request's write came later: it stays");
    assert.deepEqual(stored.cart, ['a', 'socket-item', 'http-item']);
  });
}
