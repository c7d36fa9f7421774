// The peer range (`socket.io ^4.8.0`) holds at its oldest version: socket.io@4.8.0 and
// socket.io-client@4.8.0 (with the engine.io, adapter and parser they pull in, under this
// package's security overrides) are installed into a fixture project under .tmp/ (cached by
// version), and a short scenario runs against them: connect with a session, acked per-message
// writes, recovery with the session, logout → invalid. The newest version is the one every other
// test runs on (this repository's node_modules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import session, { MemoryStore } from 'express-session';
import { sessions } from '../../src/server/index.js';
import { Events, ErrorCode } from '../../src/protocol.js';
import { ROOT, sh } from '../helpers/packed.js';

const OLDEST = '4.8.0';
const SECRET = 'peer range secret';

/** socket.io and socket.io-client at `version` in .tmp/peer-socket.io-<version>/ (installed once). */
async function fixture(version: string) {
  const dir = join(ROOT, '.tmp', `peer-socket.io-${version}`);
  const done = join(dir, 'installed');
  if (!existsSync(done)) {
    mkdirSync(dir, { recursive: true });
    const { overrides } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { overrides: Record<string, string> };
    const pkg = { name: 'peer-fixture', private: true, dependencies: { 'socket.io': version, 'socket.io-client': version }, overrides };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
    await sh('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], dir);
    writeFileSync(done, '');
  }
  const require = createRequire(join(dir, 'package.json'));
  // Read from the files: socket.io's `exports` does not list package.json.
  const installed = (path: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', path, 'package.json'), 'utf8')) as { version: string }).version;
  return {
    Server: (require('socket.io') as typeof import('socket.io')).Server,
    ioClient: (require('socket.io-client') as typeof import('socket.io-client')).io,
    versions: { 'socket.io': installed('socket.io'), 'socket.io-client': installed('socket.io-client'), 'engine.io': installed('engine.io'), 'socket.io-adapter': installed('socket.io-adapter') },
  };
}

function next<T = unknown>(emitter: { once(event: string, fn: (...args: any[]) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event}`)), 5000);
    emitter.once(event, (value: T) => (clearTimeout(timer), resolve(value)));
  });
}

test(`socket.io ${OLDEST} (the peer range's oldest): session at connect, acked per-message writes, recovery with the session, logout → invalid`, { timeout: 120_000 }, async (t) => {
  const { Server, ioClient, versions } = await fixture(OLDEST);
  t.diagnostic(`installed ${JSON.stringify(versions)}`);
  assert.equal(versions['socket.io'], OLDEST);

  const store = new MemoryStore();
  const app = express();
  app.use(session({ store, secret: SECRET, resave: false, saveUninitialized: false }));
  app.post('/login', (req, res) => {
    (req.session as unknown as Record<string, unknown>).user = 'alice';
    req.session.save(() => res.json({ ok: true }));
  });
  app.post('/logout', (req, res) => req.session.destroy(() => res.json({ ok: true })));
  const httpServer = createServer(app);
  const io = new Server(httpServer, { connectionStateRecovery: { skipMiddlewares: true } });
  const sio = sessions(io, { store, secret: SECRET, perMessage: true });
  t.after(() => new Promise<void>((resolve) => (sio.close(), io.close(() => resolve()))));
  sio.on('sconnection', (socket) => {
    void socket.join('user:alice');
    socket.on('inc', (ack: (n: number) => void) => {
      const s = socket.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      ack(s.n);
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  const login = await fetch(`${url}/login`, { method: 'POST' });
  await login.arrayBuffer(); // the whole body: express-session has saved the session by then
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;

  const client = ioClient(url, { transports: ['websocket'], reconnection: false, extraHeaders: { cookie } });
  t.after(() => client.close());
  await next(client, 'connect');
  assert.deepEqual([await client.timeout(5000).emitWithAck('inc'), await client.timeout(5000).emitWithAck('inc')], [1, 2], 'acked writes');

  const news = next(client, 'news');
  io.to('user:alice').emit('news', 1); // the client gets an offset
  await news;
  const serverSide = io.of('/').sockets.get(client.id!)!;
  const dropped = Promise.all([next(client, 'disconnect'), next(serverSide, 'disconnect')]);
  client.io.engine.close();
  await dropped;
  const back = next(client, 'connect');
  client.connect();
  await back;
  assert.equal(client.recovered, true, 'recovered');
  assert.equal(await client.timeout(5000).emitWithAck('inc'), 3, 'the recovered socket has its session');

  const told = next(client, Events.INVALID);
  await fetch(`${url}/logout`, { method: 'POST', headers: { cookie } });
  assert.equal(((await told) as { code: string }).code, ErrorCode.SESSION_INVALID);
  await sio.flush();
  assert.equal(io.of('/').adapter.rooms.get('user:alice')?.size ?? 0, 0, 'out of its room');
});
