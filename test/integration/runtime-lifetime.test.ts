/**
 * A session's runtime (docs/architecture.md, "The files and what each owns": runtime/index.ts) lives
 * while the session has sockets in the process or work queued: its sockets on every namespace share
 * one copy, and it is forgotten only once its last socket left and that socket's save ran. Sequences
 * of ordinary steps around that moment: a socket that leaves while another of the session connects,
 * and the logout that follows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { FaultyStore } from '../helpers/stores.js';
import { connectClient, connected, eventually, once, sidOf, startServer } from '../helpers/servers.js';
import { leftovers, serverSizes } from '../helpers/internals.js';
import { Events } from '../../src/protocol.js';

test("a socket that connects while the session's last socket is saved on its way out shares the copy, sees that save, and is reached by the logout", async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ store });
  t.after(() => server.close());
  server.sio.on('sconnection', (socket: Socket, session) => {
    socket.on('mark', (value: string, ack: () => void) => {
      (session as unknown as Record<string, unknown>).left = value;
      ack();
    });
    socket.on('read', (ack: (value: unknown) => void) => ack((socket as unknown as { session: Record<string, unknown> }).session.left));
  });
  const cookie = await server.login({ user: 'ann' });
  const sid = sidOf(cookie);

  const first = connectClient(server.url, cookie);
  t.after(() => first.close());
  await connected(first);
  await first.timeout(2000).emitWithAck('mark', 'by the first socket');
  // Its save on the way out takes a while in the store (a slow store, not a failing one).
  store.latency = (op) => (op === 'set' ? 400 : 0);
  const setsBefore = store.calls.set;
  first.disconnect();
  await eventually(() => store.calls.set > setsBefore);

  const second = connectClient(server.url, cookie);
  t.after(() => second.close());
  await connected(second);
  const sizes = serverSizes(server);
  assert.equal(sizes.runtimes, 1, 'one runtime for the session, not a second one beside the leaving socket\'s');
  assert.equal(sizes.live, 1, 'the copy the new socket uses is registered (writes counted, destroys from other nodes found by tag)');

  await eventually(() => (store.peek(sid) as { left?: string } | undefined)?.left === 'by the first socket');
  assert.equal(await second.timeout(2000).emitWithAck('read'), 'by the first socket', 'the new socket sees what the leaving one saved');
  store.latency = 0;

  const told = once<[{ reason: string }]>(second, Events.INVALID);
  await server.logout(cookie);
  const [notice] = await told;
  assert.equal(notice.reason, 'destroyed');
  await eventually(() => !second.connected);
  await server.sio.flush();
  await eventually(() => Object.keys(leftovers(serverSizes(server))).length === 0);
  assert.equal(store.peek(sid), undefined, 'the logout is not undone by a save');
});

for (const perMessage of [false, true]) {
  test(`${perMessage ? 'per-message' : 'per-connection'}: an app that takes every listener off its sockets (socket.removeAllListeners(), the library's disconnect listener too): a socket that leaves is still let go at the next revalidation, its change saved; a socket that stays is kept and served`, async (t) => {
    const store = new FaultyStore();
    const server = await startServer({ store, perMessage, revalidateInterval: 200 });
    t.after(() => server.close());
    server.sio.on('sconnection', (socket: Socket) => {
      socket.removeAllListeners();
      socket.on('inc', (ack: (n: unknown) => void) => {
        const session = (socket as unknown as { session: { counter: number } }).session;
        session.counter += 1;
        ack(session.counter);
      });
    });
    const leaving = await server.login({ counter: 0 });
    const staying = await server.login({ counter: 10 });
    const a = connectClient(server.url, leaving);
    const b = connectClient(server.url, staying);
    t.after(() => b.close());
    await Promise.all([connected(a), connected(b)]);
    assert.equal(await a.timeout(2000).emitWithAck('inc'), 1);
    a.close();
    // The leaving socket's runtime, copy and wheel slot go at a revalidation; the staying one's stay.
    await eventually(() => serverSizes(server).runtimes === 1 && serverSizes(server).wheel === 1, 5000);
    const reads = store.calls.get;
    await eventually(() => store.calls.get >= reads + 3, 5000); // three more revalidations of the staying session
    assert.equal(await b.timeout(2000).emitWithAck('inc'), 11, 'the staying socket is served');
    assert.equal((store.peek(sidOf(leaving)) as { counter: number }).counter, 1, 'the leaving socket\'s change is saved');
    b.close();
    await eventually(() => Object.keys(leftovers(serverSizes(server))).length === 0, 5000);
  });
}
