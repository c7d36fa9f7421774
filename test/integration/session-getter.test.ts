/**
 * `socket.session`, a getter on socket.io's Socket prototype (docs/architecture.md): there from a
 * socket's handshake on, for the app's own middlewares and `connection` listeners too, in a fresh
 * process (this file runs in its own); and with two copies of the library in one process (the
 * dual-package hazard: the ESM build beside the CommonJS one, or two installs of the package), each
 * keeping its bindings under its own symbol. Here the sources (what the test helpers import) and the
 * built dist/ are the two copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket as ServerSocket, type Server } from 'socket.io';
import type { Store } from 'express-session';
import { startServer, connectClient, connected, SECRET } from '../helpers/servers.js';

// (Typed as the sources: the same public API, declared twice.)
test("the app's middleware after sessions() and its connection listener registered before it read socket.session from the first socket of a fresh process on", async (t) => {
  assert.equal(Object.getOwnPropertyDescriptor(ServerSocket.prototype, 'session'), undefined, 'a fresh process: no getter yet');
  const seen: Array<[string, unknown]> = [];
  const server = await startServer({ before: (io) => io.on('connection', (socket) => seen.push(['connection', socket.session?.user])) });
  t.after(() => server.close());
  // An app's auth check after sessions(): it refused every socket of a fresh process (the getter came at the first connection).
  server.io.use((socket, next) => {
    seen.push(['middleware', socket.session?.user]);
    next(socket.session?.user === 'alice' ? undefined : new Error('unauthorized'));
  });
  for (let i = 0; i < 2; i++) {
    const client = connectClient(server.url, await server.login({ user: 'alice' }));
    t.after(() => client.close());
    await connected(client);
  }
  assert.deepEqual(seen, [
    ['middleware', 'alice'],
    ['connection', 'alice'],
    ['middleware', 'alice'],
    ['connection', 'alice'],
  ]);
});

const distCopy = (await import('../../dist/server/index.js')) as unknown as typeof import('../../src/server/index.js');

function whoami(server: Awaited<ReturnType<typeof startServer>>): void {
  server.sio.on('sconnection', (socket) => socket.on('whoami', (ack: (user: unknown) => void) => ack(socket.session?.user)));
}

for (const closeFirst of ['sources', 'dist'] as const) {
  test(`two copies of the library: each socket has its own copy's session, also after the ${closeFirst} copy closed; the last close takes the getter away`, { timeout: 20_000 }, async (t) => {
    const sources = await startServer();
    const dist = await startServer({ attach: (io: Server, store: Store) => distCopy.sessions(io, { store, secret: SECRET }) });
    const open = new Set([sources, dist]);
    t.after(async () => {
      for (const server of open) await server.close(); // (a failed assertion left them open)
    });
    whoami(sources);
    whoami(dist);
    const alice = connectClient(sources.url, await sources.login({ user: 'alice' }));
    const bob = connectClient(dist.url, await dist.login({ user: 'bob' }));
    await Promise.all([connected(alice), connected(bob)]);
    assert.equal(await alice.emitWithAck('whoami'), 'alice');
    assert.equal(await bob.emitWithAck('whoami'), 'bob');

    const [first, second] = closeFirst === 'sources' ? [sources, dist] : [dist, sources];
    const [gone, left] = closeFirst === 'sources' ? [alice, bob] : [bob, alice];
    gone.close();
    open.delete(first);
    await first.close();
    assert.equal(await left.emitWithAck('whoami'), left === alice ? 'alice' : 'bob', "the other copy's socket keeps its session");
    assert.ok(Object.getOwnPropertyDescriptor(ServerSocket.prototype, 'session'), 'the getter stays while a copy is open');

    left.close();
    open.delete(second);
    await second.close();
    assert.equal(Object.getOwnPropertyDescriptor(ServerSocket.prototype, 'session'), undefined, 'the last close puts back what was there (nothing)');
    assert.equal(Object.getOwnPropertySymbols(ServerSocket.prototype).length, 0, 'and leaves nothing of its own on the prototype');
  });
}

test("the last close leaves a `session` the app put on the prototype after the library's getter (it puts back only what it replaced)", async (t) => {
  const server = await startServer();
  t.after(() => delete (ServerSocket.prototype as { session?: unknown }).session);
  const client = connectClient(server.url, await server.login({ user: 'alice' }));
  await connected(client);
  Object.defineProperty(ServerSocket.prototype, 'session', { configurable: true, get: () => 'the app' });
  client.close();
  await server.close();
  assert.equal((Object.create(ServerSocket.prototype) as { session?: unknown }).session, 'the app');
});
