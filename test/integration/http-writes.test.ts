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
import { sessions } from '../../src/server/index.js';

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
