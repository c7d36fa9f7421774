/**
 * A socket's save writes only the keys it changed, merged into a fresh read of the store's record
 * (docs/server.md, "keys it did not change keep the store's value"; invariant 2 in docs/architecture.md).
 * Without `httpLock()`, HTTP requests of the same session write beside it: express-session's saves,
 * and its `touch` at the end of every request that changed nothing. A merge whose read such writes kept
 * disturbing (a write started or ended during the read, three reads running) wrote what it had read last,
 * over an HTTP save that landed meanwhile: 39 of 150 of the HTTP cart items below were lost in
 * per-connection mode, 6 of 150 in per-message mode (a probe of 2026-12-08). A merge now writes only a
 * record read while no write of the session through the process started or ended (reading again once the
 * writes under way ended, within `storeTimeout`).
 *
 * A store with a little latency (2 ms reads, 1 ms writes: FaultyStore, a real MemoryStore underneath) so
 * that reads and writes overlap as on a network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { FaultyStore } from '../helpers/stores.js';
import { connectClient, connected, delay, sidOf, startServer } from '../helpers/servers.js';

const ROUNDS = 100;

for (const perMessage of [false, true]) {
  test(`${perMessage ? 'per-message' : 'per-connection'}: a socket changing its own key all the time never undoes an HTTP save of another key (no httpLock(), ${ROUNDS} saves)`, async (t) => {
    const store = new FaultyStore({ latency: (op) => (op === 'get' ? 2 : 1) });
    const server = await startServer({ store, perMessage, saveDelay: 1 });
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
    let going = true;
    let incs = 0;
    const socketing = (async () => {
      while (going) {
        await client.timeout(5000).emitWithAck('inc');
        incs += 1;
        await delay(1);
      }
    })();
    // One HTTP save after another (two overlapping would lose items to each other: express-session's own race),
    // each adding one item to the cart it read; the socket's saves of `n` run among them.
    const items = Array.from({ length: ROUNDS }, (_, i) => `item${i}`);
    const undone: string[] = [];
    for (const item of items) {
      const { cart } = (await server.httpSession(cookie)) as { cart: string[] };
      await server.httpWrite(cookie, { cart: [...cart, item] });
      await delay(3); // (wall clock: the socket's next saves land meanwhile)
      if (!(store.peek(sidOf(cookie)) as { cart: string[] }).cart.includes(item)) undone.push(item);
    }
    going = false;
    await socketing;
    await server.sio.flush();
    const stored = store.peek(sidOf(cookie)) as { cart: string[]; n: number };
    assert.deepEqual(undone, [], 'no HTTP save undone by a socket save, even for a moment');
    assert.deepEqual(stored.cart, ['first', ...items]);
    assert.ok(incs > ROUNDS / 2, `the socket's saves ran among the HTTP saves (${incs})`);
    assert.deepEqual(errors, []);
  });
}
