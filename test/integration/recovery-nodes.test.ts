// connectionStateRecovery across two nodes (invariant 9): @socket.io/redis-adapter does not support
// recovery, @socket.io/redis-streams-adapter does. Sessions in connect-redis, one redis-server. The
// client reaches the nodes through a TCP proxy (a load balancer): after the drop it lands on the
// other node, which recovers the socket (rooms, offset) and must bind its session there; after a
// logout on the first node, the recovered socket is told invalid and leaves its room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server as NetServer, type Socket as NetSocket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Events, ErrorCode } from '../../src/protocol.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisNode } from '../helpers/redis-node.js';
import { connectClient, connected, eventually, once, sidOf } from '../helpers/servers.js';
import { StoreHub } from '../../src/server/store.js';
import { sessionTag } from '../../src/server/invalidation.js';
import { recoveryApp, connectAndDrop } from '../helpers/recovery.js';

/** A TCP proxy whose target can be switched: new connections go to `target`, open ones stay where they are. */
async function switchableProxy(target: number): Promise<{ port: number; target: number; close(): Promise<void> }> {
  const open = new Set<NetSocket>();
  const proxy = { port: 0, target, close: () => new Promise<void>((resolve) => (open.forEach((s) => s.destroy()), server.close(() => resolve()))) };
  const server: NetServer = createServer((down) => {
    const up = connect(proxy.target, '127.0.0.1');
    for (const s of [down, up]) {
      open.add(s);
      s.on('error', () => undefined).on('close', () => (open.delete(s), down.destroy(), up.destroy()));
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as AddressInfo).port;
  return proxy;
}

for (const skipMiddlewares of [true, false]) {
  test(`two nodes (redis-streams-adapter), per-message, skipMiddlewares ${skipMiddlewares}: recovered on the other node with its session; after a logout there, told invalid and out of its room`, { timeout: 30_000 }, async (t) => {
    const redis = await startRedis();
    const cleanup: Array<() => unknown> = [() => redis.dispose()];
    t.after(async () => {
      for (const step of cleanup.reverse()) await step(); // client, proxy, nodes, then redis
    });
    const options = {
      perMessage: true,
      ioOptions: { connectionStateRecovery: { skipMiddlewares, maxDisconnectionDuration: 60_000 } },
      // A short blocking read, so a closed node's reader stops at once.
      createAdapter: (pub: Parameters<typeof createAdapter>[0]) => createAdapter(pub, { blockTimeInMs: 100 }),
    };
    const a = await startRedisNode(redis.url, options);
    cleanup.push(() => a.close());
    const b = await startRedisNode(redis.url, options);
    cleanup.push(() => b.close());
    const seenA = recoveryApp(a.server.sio);
    const seenB = recoveryApp(b.server.sio);
    const proxy = await switchableProxy(a.server.port);
    cleanup.push(() => proxy.close());

    const cookie = await a.server.login({ user: 'alice' });
    const client = connectClient(`http://127.0.0.1:${proxy.port}`, cookie);
    cleanup.push(() => client.close());
    const id = await connectAndDrop(a.server.io, client);

    // Back through the balancer, to node B: recovered there, with its session, its event run with it.
    proxy.target = b.server.port;
    const answered = new Promise<unknown>((resolve) => client.once('connect', () => client.timeout(5000).emit('write', 'on b', (_e: unknown, user: unknown) => resolve(user))));
    client.connect();
    assert.equal(await answered, 'alice');
    assert.equal(client.recovered, true);
    assert.deepEqual(seenB, [{ id, recovered: true }]);
    assert.equal(seenA.length, 1);
    assert.equal(b.server.io.of('/').adapter.rooms.get('user:alice')?.size, 1, 'in its room on node B');
    assert.equal((await a.server.httpSession(cookie)).written, 'on b', 'the acked write is stored');

    // Dropped again; logged out through node A while away; back to node B: told invalid, out of its room.
    const dropped = Promise.all([once(client, 'disconnect'), once(b.server.io.of('/').sockets.get(id)!, 'disconnect')]);
    client.io.engine.close();
    await dropped;
    let missed = 0;
    client.on('news', (message: string) => void (message === 'missed' && (missed += 1)));
    let connects = 0;
    client.on('connect', () => (connects += 1));
    a.server.io.to('user:alice').emit('news', 'missed'); // kept for the socket by the adapter (in Redis)
    await a.server.logout(cookie);
    // Node B heard of the logout (the relay through the adapter): it declines the recovery.
    const hubB = StoreHub.acquire(b.server.store);
    cleanup.push(() => hubB.release());
    await eventually(() => hubB.destroyedSet.confirmed(sessionTag(sidOf(cookie))), 5000);
    const told = new Promise<unknown>((resolve) => {
      client.once(Events.INVALID, resolve);
      client.once('connect_error', (err: Error & { data?: unknown }) => resolve(err.data));
    });
    client.connect();
    const data = (await told) as { code: string; reason: string };
    assert.equal(data.code, ErrorCode.SESSION_INVALID);
    assert.ok(['destroyed', 'not-found'].includes(data.reason), data.reason); // destroyed: node A's relay reached B first
    if (client.connected) await once(client, 'disconnect');
    await b.server.sio.flush();
    // Before: recovered on B into user:alice (its missed broadcast replayed, with skipMiddlewares true), then told invalid.
    assert.equal(connects, 0, 'not recovered: refused at its handshake');
    assert.equal(missed, 0, 'the broadcast it missed never reached it');
    assert.equal(b.server.io.of('/').adapter.rooms.get('user:alice')?.size ?? 0, 0, 'nobody in user:alice on node B');
    assert.equal(b.server.io.of('/').sockets.size, 0);
  });
}

for (const skipMiddlewares of [true, false]) {
  test(`one node (redis-streams-adapter, which restores a copy of socket.data), skipMiddlewares ${skipMiddlewares}: a socket coming back with bob's cookie, alice's session still alive, is refused 'session-changed' and keeps none of her rooms`, { timeout: 30_000 }, async (t) => {
    const redis = await startRedis();
    const cleanup: Array<() => unknown> = [() => redis.dispose()];
    t.after(async () => {
      for (const step of cleanup.reverse()) await step();
    });
    const node = await startRedisNode(redis.url, {
      ioOptions: { connectionStateRecovery: { skipMiddlewares, maxDisconnectionDuration: 60_000 } },
      createAdapter: (pub: Parameters<typeof createAdapter>[0]) => createAdapter(pub, { blockTimeInMs: 100 }),
    });
    cleanup.push(() => node.close());
    const invalid: string[] = [];
    node.server.sio.on('sinvalid', (_socket, reason) => invalid.push(reason));
    recoveryApp(node.server.sio);
    const alice = await node.server.login({ user: 'alice' });
    const client = connectClient(node.server.url, alice);
    cleanup.push(() => client.close());
    await connectAndDrop(node.server.io, client);
    (client.io.opts.extraHeaders as Record<string, string>).cookie = await node.server.login({ user: 'bob' });
    const told = skipMiddlewares ? once<[{ reason: string }]>(client, Events.INVALID).then(([data]) => data.reason) : once<[Error & { data?: { reason: string } }]>(client, 'connect_error').then(([err]) => err.data!.reason);
    client.connect();
    // Before: the adapter's copy of socket.data was unknown, so the check never applied: recovered
    // as bob into user:alice, with her missed broadcasts and every later one.
    assert.equal(await told, 'session-changed');
    await eventually(() => !client.connected && (node.server.io.of('/').adapter.rooms.get('user:alice')?.size ?? 0) === 0, 3000);
    assert.deepEqual(invalid, ['session-changed']);
    const fresh = connectClient(node.server.url, (client.io.opts.extraHeaders as Record<string, string>).cookie);
    cleanup.push(() => fresh.close());
    await connected(fresh);
    assert.equal(await fresh.timeout(3000).emitWithAck('write', 'x'), 'bob');
  });
}
