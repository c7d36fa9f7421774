/**
 * A socket's save writes only the keys it changed, merged into a fresh read of the store's record
 * (docs/server.md; invariant 2 in docs/architecture.md). An HTTP request's save that the store refuses (or
 * never finishes) while the merge reads must never reach the store through the socket's save: a version of
 * a fix tried on 2026-12-08 took the newest whole-record write's record as the merge's base and wrote it.
 * (Without `httpLock()`, express-session's whole-copy saves and a socket's merged saves can still undo each
 * other under concurrent writes: docs/server.md, the known limitation; `httpLock()` orders them.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { FaultyStore } from '../helpers/stores.js';
import { connectClient, connected, eventually, sidOf, startServer } from '../helpers/servers.js';

/** A server whose sockets count `inc` in the session's `n`, a session with a cart, and its socket, connected; `serror`s collected. */
async function counterServer(t: { after(fn: () => unknown): void }, store: FaultyStore, options: Partial<Parameters<typeof startServer>[0]>) {
  const server = await startServer({ store, saveDelay: 1, ...options });
  t.after(() => server.close());
  const errors: unknown[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  server.sio.on('sconnection', (socket: Socket) =>
    socket.on('inc', (ack: () => void) => {
      socket.session.n = ((socket.session.n as number | undefined) ?? 0) + 1;
      ack();
    }),
  );
  const cookie = await server.login({ cart: ['first'] });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return { server, cookie, client, errors };
}


test('a merged save never writes the record of an HTTP save the store refused (or never finished) while the merge read', async (t) => {
  for (const kind of ['error', 'hang'] as const) {
    const store = new FaultyStore();
    const { server, cookie, client } = await counterServer(t, store, { storeTimeout: 1000 });
    // The socket's save reads slowly (the next read: 200 ms); an HTTP save of `poison` starts meanwhile and fails.
    let slowNext = true;
    const gets = store.calls.get;
    store.latency = (op) => (op === 'get' && slowNext ? ((slowNext = false), 200) : 0);
    assert.equal(await client.timeout(5000).emitWithAck('inc'), undefined);
    await eventually(() => store.calls.get > gets, 2000, 2);
    store.fault = { op: 'set', kind };
    const sets = store.calls.set;
    const refused = fetch(`${server.url}/session`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ poison: 'never accepted' }), signal: AbortSignal.timeout(500) }).then(
      (res) => res.status,
      () => 'no answer',
    );
    await eventually(() => store.calls.set > sets, 2000, 2); // the request's save, refused
    store.fault = undefined;
    assert.equal(await refused, kind === 'error' ? 500 : 'no answer');
    await server.sio.flush();
    const stored = store.peek(sidOf(cookie)) as Record<string, unknown>;
    assert.equal(stored.n, 1, `${kind}: the socket's change is stored`);
    assert.equal(stored.poison, undefined, `${kind}: the refused request's key is not`);
    server.httpServer.closeAllConnections(); // (the hung request's)
  }
});

test('flush() saves a copy whose save failed and waits for its retry (its changes were given back to it)', async (t) => {
  const store = new FaultyStore();
  const { server, cookie, client, errors } = await counterServer(t, store, {});
  store.fault = { op: 'set', kind: 'error' };
  assert.equal(await client.timeout(5000).emitWithAck('inc'), undefined);
  await eventually(() => errors.length > 0, 2000, 2); // the save failed (reported); its retry is a second away
  store.fault = undefined;
  await server.sio.flush();
  assert.equal((store.peek(sidOf(cookie)) as { n?: number }).n, 1, 'flush() wrote it, not the retry');
});
