// Each namespace socket has its own session binding, and a session is serialised process-wide:
// (a) over ONE engine.io connection (one Manager), session X on '/a' (cookie) and session Y on
// '/b' (ticket in auth) each see and save their own, never the other's (they share
// `socket.request`, so nothing may be kept there); (b) one session used on '/a' and '/b' with two
// `sessions()` instances on the same store loses no update in per-message mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Manager } from 'socket.io-client';
import type { Socket } from 'socket.io';
import { sessions, type SessionServer } from '../../src/server/index.js';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, eventually, sidOf, delay, SECRET } from '../helpers/servers.js';

/** Handlers on a namespace (async, as real ones often are): `who` answers the session's user, `set` writes a key. */
function handlers(sio: SessionServer) {
  sio.on('sconnection', (socket: Socket) => {
    socket.on('who', async (ack: (user: unknown) => void) => {
      await delay(5);
      ack(socket.session.user);
    });
    socket.on('set', async (key: string, value: unknown, ack: () => void) => {
      await delay(5);
      (socket.session as unknown as Record<string, unknown>)[key] = value;
      ack();
    });
  });
}

for (const perMessage of [false, true]) {
  const mode = perMessage ? 'per-message' : 'per-connection';
  test(`${mode}: over one connection, session X on '/a' (cookie) and session Y on '/b' (ticket) each see and save only their own`, async (t) => {
    const store = new FaultyStore();
    const instances: Record<string, SessionServer> = {};
    const server = await startServer({
      store,
      attach(io, s) {
        for (const name of ['/a', '/b']) instances[name] = sessions(io.of(name), { store: s, secret: SECRET, perMessage, saveDelay: 20, serveClient: name === '/a' });
        return instances['/a']!; // its token endpoint mints the ticket below
      },
    });
    t.after(() => server.close());
    t.after(() => instances['/b']!.close());
    handlers(instances['/a']!);
    handlers(instances['/b']!);
    const cookieX = await server.login({ user: 'xavier' });
    const cookieY = await server.login({ user: 'yvonne' });
    const { token } = await server.ticket(cookieY);

    // One engine.io connection (the cookie header on it is X's), two namespace sockets.
    const manager = new Manager(server.url, { transports: ['websocket'], reconnection: false, extraHeaders: { cookie: cookieX } });
    const onA = manager.socket('/a');
    const onB = manager.socket('/b', { auth: { sessionTicket: token } });
    t.after(() => {
      onA.close();
      onB.close();
      manager.engine?.close();
    });
    await Promise.all([connected(onA), connected(onB)]); // listen to both at once: either may connect first
    assert.equal(manager.engine.id !== undefined && onA.io === onB.io, true, 'one engine.io connection');

    // Both namespaces at once: their handlers overlap.
    const who = () => Promise.all([onA.timeout(2000).emitWithAck('who'), onB.timeout(2000).emitWithAck('who')]);
    const seen = await who();

    const record = (cookie: string) => store.peek(sidOf(cookie)) as Record<string, unknown> | undefined;
    await Promise.all([onA.timeout(2000).emitWithAck('set', 'fromA', 'written on /a'), onB.timeout(2000).emitWithAck('set', 'fromB', 'written on /b')]);
    await eventually(() => record(cookieX)?.fromA === 'written on /a' && record(cookieY)?.fromB === 'written on /b', 2000).catch(() => undefined);
    await Promise.all([instances['/a']!.flush(), instances['/b']!.flush()]); // any save on the wrong session would have run too
    const x = record(cookieX);
    const y = record(cookieY);
    t.diagnostic(`handlers saw ${JSON.stringify(seen)}; X: ${JSON.stringify({ user: x?.user, fromA: x?.fromA, fromB: x?.fromB })}, Y: ${JSON.stringify({ user: y?.user, fromA: y?.fromA, fromB: y?.fromB })}`);
    assert.deepEqual(seen, ['xavier', 'yvonne'], "'/a' sees X and '/b' sees Y");
    assert.deepEqual({ user: x?.user, fromA: x?.fromA, fromB: x?.fromB }, { user: 'xavier', fromA: 'written on /a', fromB: undefined }, "X's record has only '/a''s write");
    assert.deepEqual({ user: y?.user, fromA: y?.fromA, fromB: y?.fromB }, { user: 'yvonne', fromA: undefined, fromB: 'written on /b' }, "Y's record has only '/b''s write");
    // And each namespace still sees its own session afterwards.
    assert.deepEqual(await who(), ['xavier', 'yvonne']);
  });
}

test("per-message: one session on '/a' and '/b' with two sessions() instances: 100 concurrent increments on each all land (counter 200)", async (t) => {
  const store = new FaultyStore({ latency: 1 });
  const instances: SessionServer[] = [];
  const server = await startServer({
    store,
    attach(io, s) {
      for (const name of ['/a', '/b']) instances.push(sessions(io.of(name), { store: s, secret: SECRET, perMessage: true, serveClient: name === '/a' }));
      return instances[0]!;
    },
  });
  t.after(() => server.close());
  t.after(() => instances[1]!.close());
  for (const sio of instances) {
    sio.on('sconnection', (socket: Socket) => {
      // A read-modify-write with an await in between: only serialisation keeps it exact.
      socket.on('inc', async (ack: () => void) => {
        const counter = (socket.session.counter as number | undefined) ?? 0;
        await delay(1);
        socket.session.counter = counter + 1;
        ack();
      });
    });
  }
  const cookie = await server.login({ user: 'alice' });
  const onA = connectClient(`${server.url}/a`, cookie);
  const onB = connectClient(`${server.url}/b`, cookie);
  t.after(() => onA.close());
  t.after(() => onB.close());
  await Promise.all([connected(onA), connected(onB)]);
  const incs = [];
  for (let i = 0; i < 100; i++) incs.push(onA.timeout(20_000).emitWithAck('inc'), onB.timeout(20_000).emitWithAck('inc'));
  await Promise.all(incs);
  const counter = (store.peek(sidOf(cookie)) as { counter?: number }).counter;
  t.diagnostic(`counter ${counter} after 200 acked increments`);
  assert.equal(counter, 200);
});

test("one session on '/pc' (per-connection) and '/' (per-message): the per-connection socket's acked write, not yet saved, survives a per-message handler of the session that throws or times out after it", async (t) => {
  for (const failure of ['throws', 'times out'] as const) {
    const store = new FaultyStore();
    const server = await startServer({
      store,
      attach(io, s) {
        const pc = sessions(io.of('/pc'), { store: s, secret: SECRET, saveDelay: 300 }); // its save comes after the failing event
        pc.on('sconnection', (socket) =>
          socket.on('set', (value: unknown, ack: (v: unknown) => void) => {
            socket.session.pcKey = value;
            ack(value);
          }),
        );
        const pm = sessions(io, { store: s, secret: SECRET, perMessage: true, handlerTimeout: 200 });
        pm.on('serror', () => {});
        pm.on('sconnection', (socket) => {
          socket.on('work', async () => {
            socket.session.pmKey = 'undone';
            if (failure === 'throws') throw new Error('work failed');
            await new Promise(() => undefined); // hangs past handlerTimeout
          });
        });
        return pm;
      },
    });
    const cookie = await server.login({ user: 'alice' });
    const a = connectClient(server.url, cookie);
    const b = connectClient(`${server.url}/pc`, cookie);
    await Promise.all([connected(a), connected(b)]);
    assert.equal(await b.timeout(2000).emitWithAck('set', 'kept'), 'kept');
    const answer = (await a.timeout(2000).emitWithAck('work')) as Record<string, { reason: string }>;
    assert.equal(answer['sio-sessions:notice']?.reason, failure === 'throws' ? 'handler-error' : 'handler-timeout');
    // Before: undone with the failed handler's change (rolled back to the stored state), and never saved.
    await eventually(() => (store.peek(sidOf(cookie)) as Record<string, unknown>).pcKey === 'kept', 3000);
    assert.equal((store.peek(sidOf(cookie)) as Record<string, unknown>).pmKey, undefined, 'the failed handler\'s change is undone');
    a.close();
    b.close();
    await server.close();
  }
});

test("one session on '/pc' (per-connection) and '/' (per-message): when a per-message save fails (store error), the /pc socket's acked write made before it, or while the save was under way, is still saved; the failed event's change is not", async (t) => {
  for (const when of ['before', 'during'] as const) {
    const store = new FaultyStore({ latency: when === 'during' ? 100 : 0 });
    const server = await startServer({
      store,
      attach(io, s) {
        const pc = sessions(io.of('/pc'), { store: s, secret: SECRET, saveDelay: 300 });
        pc.on('serror', () => {});
        pc.on('sconnection', (socket) => {
          socket.on('set', (value: unknown, ack: (v: unknown) => void) => {
            socket.session.pcKey = value;
            ack(value);
          });
          socket.on('inc', (ack: (v: unknown) => void) => ack((socket.session.counter = ((socket.session.counter as number) ?? 0) + 1)));
        });
        const pm = sessions(io, { store: s, secret: SECRET, perMessage: true });
        pm.on('serror', () => {});
        pm.on('sconnection', (socket) =>
          socket.on('work', (ack: (v: unknown) => void) => {
            socket.session.pmKey = 'not stored';
            socket.session.counter = ((socket.session.counter as number) ?? 0) + 100; // the same key as /pc's inc
            ack('worked');
          }),
        );
        return pm;
      },
    });
    const cookie = await server.login({ user: 'alice' });
    const a = connectClient(server.url, cookie);
    const b = connectClient(`${server.url}/pc`, cookie);
    await Promise.all([connected(a), connected(b)]);
    if (when === 'before') assert.equal(await b.timeout(2000).emitWithAck('set', 'kept'), 'kept');
    if (when === 'before') assert.equal(await b.timeout(2000).emitWithAck('inc'), 1);
    store.fault = { op: 'set', kind: 'error' };
    const work = a.timeout(3000).emitWithAck('work') as Promise<Record<string, { reason: string }>>;
    if (when === 'during') {
      await delay(30); // the per-message save is under way (store latency 100 ms)
      assert.equal(await b.timeout(2000).emitWithAck('set', 'kept'), 'kept');
    }
    assert.equal((await work)['sio-sessions:notice']?.reason, 'store-error');
    store.fault = undefined;
    // Before: undone with the failed batch's changes (the whole copy back to the stored state) and never saved.
    await eventually(() => (store.peek(sidOf(cookie)) as Record<string, unknown>).pcKey === 'kept', 3000);
    assert.equal((store.peek(sidOf(cookie)) as Record<string, unknown>).pmKey, undefined, when);
    // A key both touched: back to where the failed batch began (with /pc's acked increment), not to the stored state.
    if (when === 'before') await eventually(() => (store.peek(sidOf(cookie)) as Record<string, unknown>).counter === 1, 3000);
    a.close();
    b.close();
    await server.close();
  }
});

test("a value a per-connection socket stores that cannot be saved (a cycle) does not fail the per-message events of the same session that do not touch it, and stays in memory for the per-connection socket", async (t) => {
  const store = new FaultyStore();
  const instances: Record<string, SessionServer> = {};
  const server = await startServer({
    store,
    attach(io, s) {
      instances.pm = sessions(io, { store: s, secret: SECRET, perMessage: true });
      instances.pc = sessions(io.of('/pc'), { store: s, secret: SECRET, saveDelay: 50, serveClient: false });
      return instances.pm;
    },
  });
  t.after(() => server.close());
  t.after(() => instances.pc.close());
  const reported: string[] = [];
  for (const [name, sio] of Object.entries(instances)) sio.on('serror', (err) => reported.push(`${name} ${(err as { reason?: string }).reason} ${(err as { key?: string }).key}`));
  instances.pc.on('sconnection', (socket: Socket) => {
    socket.on('bad', (ack: () => void) => {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      Object.assign(socket.session, { note: 'from /pc', bad: cycle });
      ack();
    });
    socket.on('peek', (ack: (kind: string) => void) => ack(typeof (socket.session as unknown as { bad?: unknown }).bad));
  });
  instances.pm.on('sconnection', (socket: Socket) => {
    socket.on('inc', (ack: (n: unknown) => void) => {
      socket.session.n = ((socket.session.n as number | undefined) ?? 0) + 1;
      ack(socket.session.n);
    });
  });
  const cookie = await server.login();
  const pc = connectClient(`${server.url}/pc`, cookie);
  const pm = connectClient(server.url, cookie);
  t.after(() => pc.close());
  t.after(() => pm.close());
  await Promise.all([connected(pc), connected(pm)]);
  await pc.emitWithAck('bad');
  // Before: each failed `not-storable` for 'bad', its own change undone, and the /pc socket's value was deleted.
  assert.equal(await pm.emitWithAck('inc'), 1);
  assert.equal(await pm.emitWithAck('inc'), 2);
  assert.equal(await pc.emitWithAck('peek'), 'object');
  await Promise.all([instances.pm.flush(), instances.pc.flush()]);
  const record = store.peek(sidOf(cookie)) as Record<string, unknown>;
  assert.deepEqual([record.n, record.note, Object.hasOwn(record, 'bad')], [2, 'from /pc', false]);
  assert.equal(reported.length, 1, reported.join('; '));
});

test("a per-message handler that only reads an object and is given up on (handlerTimeout) does not take that object from a per-connection handler holding it across an await", async (t) => {
  const store = new FaultyStore({ latency: 5 });
  const instances: Record<string, SessionServer> = {};
  let release!: () => void;
  const server = await startServer({
    store,
    attach(io, s) {
      instances.pm = sessions(io, { store: s, secret: SECRET, perMessage: true, handlerTimeout: 100 });
      instances.pc = sessions(io.of('/pc'), { store: s, secret: SECRET, saveDelay: 50, revalidateInterval: 0, serveClient: false });
      return instances.pm;
    },
  });
  t.after(() => server.close());
  t.after(() => instances.pc.close());
  for (const sio of Object.values(instances)) sio.on('serror', () => {});
  instances.pc.on('sconnection', (socket: Socket) => {
    socket.on('hold', async (ack: (r: string) => void) => {
      const cart = (socket.session as unknown as { cart: string[] }).cart;
      cart.push('pc1');
      await new Promise<void>((resolve) => (release = resolve)); // the app's own slow work
      cart.push('pc2');
      ack('held');
    });
  });
  instances.pm.on('sconnection', (socket: Socket) => {
    socket.on('look', async () => {
      void (socket.session as unknown as { cart: string[] }).cart.length;
      await new Promise(() => {}); // never settles: given up after handlerTimeout
    });
  });
  const cookie = await server.login({ cart: ['init'] });
  const pm = connectClient(server.url, cookie);
  const pc = connectClient(`${server.url}/pc`, cookie);
  t.after(() => pm.close());
  t.after(() => pc.close());
  await Promise.all([connected(pm), connected(pc)]);
  const held = pc.emitWithAck('hold');
  await eventually(() => release !== undefined);
  const answer = (await pm.timeout(3000).emitWithAck('look')) as Record<string, { reason?: string }>;
  assert.equal(Object.values(answer)[0]?.reason, 'handler-timeout');
  release();
  assert.equal(await held, 'held');
  await instances.pc.flush();
  // Before: the timeout swapped the cart the look handler had read for a copy: pc2 went to the orphan.
  assert.deepEqual((store.peek(sidOf(cookie)) as { cart: string[] }).cart, ['init', 'pc1', 'pc2']);
});
