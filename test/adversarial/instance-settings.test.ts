/**
 * Two `sessions()` instances on one store share each session's queue in the process (a session is
 * serialised process-wide, invariant 6 in docs/architecture.md), but each event runs under its own
 * instance's settings: its `lock` and its `storeTimeout`, also when events of both wait together
 * and would otherwise run as one batch (which used the first event's lock and store deadline).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from 'express-session';
import type { Socket } from 'socket.io';
import { sessions, type SessionLock, type SessionServer } from '../../src/server/index.js';
import { FaultyStore } from '../helpers/stores.js';
import { connectClient, connected, eventually, SECRET, sidOf, startServer } from '../helpers/servers.js';
import { noticeOf } from '../../src/protocol.js';

/** A lock of the app's own (the SessionLock interface), counting who holds it. */
function countingLock(): SessionLock & { acquired: number } {
  const lock = {
    acquired: 0,
    async acquire() {
      lock.acquired += 1;
      return async () => undefined;
    },
  };
  return lock;
}

test("two instances on one store: each event runs under its own instance's lock and storeTimeout, in batches they share", async (t) => {
  const store = new FaultyStore();
  const lockA = countingLock();
  const instances: Record<string, SessionServer> = {};
  const server = await startServer({
    store,
    attach(io, s) {
      // /a: its own lock, a store deadline of 150 ms; /b: no lock, 3 s.
      instances.a = sessions(io.of('/a'), { store: s, secret: SECRET, perMessage: true, lock: lockA, storeTimeout: 150 });
      instances.b = sessions(io.of('/b'), { store: s, secret: SECRET, perMessage: true, storeTimeout: 3000, serveClient: false });
      return instances.a;
    },
  });
  t.after(() => server.close());
  t.after(() => instances.b.close());
  for (const [name, sio] of Object.entries(instances)) {
    sio.on('serror', () => undefined); // A's store timeouts are expected
    sio.on('sconnection', (socket: Socket) => {
      socket.on('inc', (ack: (...a: unknown[]) => void) => {
        socket.session[name] = ((socket.session[name] as number | undefined) ?? 0) + 1;
        ack('ok');
      });
    });
  }
  const cookie = await server.login({ user: 'ann' });
  const onA = connectClient(`${server.url}/a`, cookie);
  const onB = connectClient(`${server.url}/b`, cookie);
  t.after(() => onA.close());
  t.after(() => onB.close());
  await Promise.all([connected(onA), connected(onB)]);

  // Every store read now takes 600 ms: past /a's deadline, well within /b's.
  store.latency = (op) => (op === 'get' ? 600 : 0);
  const answer = (socket: typeof onA) => socket.timeout(10_000).emitWithAck('inc').then((reply: unknown) => noticeOf([reply])?.reason ?? reply);
  // Interleaved, all at once: they wait in one runtime's queue behind the first.
  const answers = await Promise.all(Array.from({ length: 4 }, () => [answer(onB), answer(onA)]).flat());
  const fromB = answers.filter((_, i) => i % 2 === 0);
  const fromA = answers.filter((_, i) => i % 2 === 1);

  assert.deepEqual(fromB, ['ok', 'ok', 'ok', 'ok'], "/b's events run with /b's 3 s store deadline");
  assert.ok(
    fromA.every((reason) => reason === 'store-timeout' || reason === 'queue-timeout'),
    `/a's events are told unavailable by /a's 150 ms deadline: ${JSON.stringify(fromA)}`,
  );

  // With the store fast again: /a's events take /a's lock, /b's never do.
  store.latency = 0;
  const before = lockA.acquired;
  assert.deepEqual(await answer(onA), 'ok');
  assert.equal(lockA.acquired, before + 1, "an /a event takes /a's lock");
  await Promise.all([answer(onB), answer(onB)]);
  assert.equal(lockA.acquired, before + 1, "/b's events never take /a's lock");
  const stored = await new Promise<Record<string, unknown>>((resolve, reject) =>
    store.all!((err, all) => (err ? reject(err) : resolve(Object.values(all as Record<string, Record<string, unknown>>)[0]))),
  );
  assert.equal(stored.b, 6, 'every acked /b event is stored');
  assert.equal(stored.a, 1, 'of /a, only the acked event is stored');
});

test("per-connection, two instances with their own saveDelay on one session: a change on the instance with the short saveDelay is saved on its time, whatever the other instance's socket did first", async (t) => {
  const store = new FaultyStore();
  const instances: Record<string, SessionServer> = {};
  const server = await startServer({
    store,
    attach(io, s) {
      instances.slow = sessions(io.of('/slow'), { store: s, secret: SECRET, saveDelay: 60_000 });
      instances.fast = sessions(io.of('/fast'), { store: s, secret: SECRET, saveDelay: 50, serveClient: false });
      return instances.slow;
    },
  });
  t.after(() => server.close());
  t.after(() => instances.fast.close());
  for (const sio of Object.values(instances)) {
    sio.on('sconnection', (socket: Socket) => {
      socket.on('read', (ack: (v: unknown) => void) => ack(socket.session.user));
      socket.on('set', (value: string, ack: () => void) => {
        socket.session.theme = value;
        ack();
      });
    });
  }
  const cookie = await server.login({ user: 'ann' });
  const onSlow = connectClient(`${server.url}/slow`, cookie);
  const onFast = connectClient(`${server.url}/fast`, cookie);
  t.after(() => onSlow.close());
  t.after(() => onFast.close());
  await Promise.all([connected(onSlow), connected(onFast)]);
  assert.equal(await onSlow.emitWithAck('read'), 'ann');
  await onFast.emitWithAck('set', 'dark');
  // Before: the session's one debounce timer was armed by /slow's packet for 60 s; /fast's change waited for it (or a disconnect).
  await eventually(() => (store.peek(sidOf(cookie)) as { theme?: string } | undefined)?.theme === 'dark', 3000);
});

test('two instances on one namespace: the socket has one binding, started once (its packets counted once against maxPendingEvents), each instance tells sconnection once, and closing both gives the store back once the socket left', async (t) => {
  const store = new MemoryStore();
  const instances: SessionServer[] = [];
  const server = await startServer({
    store,
    attach(io, s) {
      instances.push(sessions(io, { store: s, secret: SECRET, perMessage: true, maxPendingEvents: 4 }));
      instances.push(sessions(io, { store: s, secret: SECRET, perMessage: true, maxPendingEvents: 4, serveClient: false }));
      return instances[0]!;
    },
  });
  t.after(() => server.close());
  t.after(() => instances[1]!.close());
  const told: string[] = [];
  let arrived = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  instances.forEach((sio, i) =>
    sio.on('sconnection', (socket: Socket) => {
      told.push(`instance ${i}`);
      if (i === 1) socket.use((_packet, next) => (arrived++, next())); // after the library's packet filter: what it let through
      if (i === 0) socket.on('slow', async (ack: (v: string) => void) => (await released, ack('ok')));
    }),
  );
  const client = connectClient(server.url, await server.login({ user: 'ann' }));
  t.after(() => client.close());
  await connected(client);
  assert.deepEqual(told, ['instance 0', 'instance 1']);
  // Four events in flight, maxPendingEvents 4: none is refused (started twice, each packet counted twice: two were 'queue-full').
  const answers = [1, 2, 3, 4].map(() => client.timeout(5000).emitWithAck('slow'));
  await eventually(() => arrived === 4, 3000);
  release();
  assert.deepEqual(await Promise.all(answers), ['ok', 'ok', 'ok', 'ok']);
  client.close();
  await Promise.all(instances.map((sio) => sio.close()));
  // The socket counted once and stopped once: the last close gives the store its own methods back.
  await eventually(() => store.set === MemoryStore.prototype.set, 3000);
});

test('instances on one namespace must share the mode (a per-connection binding under per-message listeners acked before the save): another mode is refused while one is open; a logout tells sinvalid on every instance that told sconnection', async (t) => {
  const instances: SessionServer[] = [];
  const server = await startServer({
    attach(io, s) {
      instances.push(sessions(io, { store: s, secret: SECRET, perMessage: true }));
      assert.throws(() => sessions(io, { store: s, secret: SECRET, perMessage: false }), (err: Error) => err.name === 'SessionOptionsError' && /per-message mode/.test(err.message));
      assert.throws(() => sessions(io, { store: s, secret: SECRET }), (err: Error) => err.name === 'SessionOptionsError', 'the default mode is per-connection');
      instances.push(sessions(io, { store: s, secret: SECRET, perMessage: true, serveClient: false }));
      // Another namespace is another matter.
      instances.push(sessions(io.of('/other'), { store: s, secret: SECRET, serveClient: false }));
      return instances[0]!;
    },
  });
  t.after(() => server.close());
  t.after(() => instances.slice(1).forEach((sio) => sio.close()));
  const told: string[] = [];
  instances.forEach((sio, i) => {
    sio.on('sconnection', () => told.push(`sconnection ${i}`));
    sio.on('sinvalid', (_socket, reason) => told.push(`sinvalid ${i} ${reason}`));
  });
  const cookie = await server.login({ user: 'ann' });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  const gone = new Promise((resolve) => client.once('disconnect', resolve));
  await server.logout(cookie);
  await gone;
  assert.deepEqual(told.sort(), ['sconnection 0', 'sconnection 1', 'sinvalid 0 destroyed', 'sinvalid 1 destroyed']);
  // Once the per-message ones are closed, the namespace may take the other mode.
  instances[0]!.close();
  instances[1]!.close();
  sessions(server.io, { store: server.store, secret: SECRET, serveClient: false }).close();
});

test("two instances on one store: an event of the instance with the shorter storeTimeout, waiting behind one of the other's, is answered at its own deadline (queue-timeout), not at the other's", async (t) => {
  const store = new FaultyStore();
  const server = await startServer({ perMessage: true, store, storeTimeout: 5000, handlerTimeout: 8000 });
  t.after(() => server.close());
  const short = sessions(server.io.of('/b'), { store, secret: SECRET, perMessage: true, storeTimeout: 300 });
  t.after(() => short.close());
  let release!: () => void;
  const hang = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  server.sio.on('sconnection', (socket: Socket) => {
    socket.on('hang', async (ack: (v: unknown) => void) => {
      started();
      await hang;
      ack('late');
    });
    socket.on('inc', (ack: (v: unknown) => void) => ack('a'));
  });
  short.on('sconnection', (socket: Socket) => socket.on('inc', (ack: (v: unknown) => void) => ack('b')));
  short.on('serror', () => undefined); // (the queue-timeout is reported: expected here)
  const cookie = await server.login();
  const a = connectClient(server.url, cookie);
  t.after(() => a.close());
  await connected(a);
  const b = a.io.socket('/b'); // the same connection: its packets come after a's, in order
  await connected(b);
  const hung = a.emitWithAck('hang');
  await running;
  const waiting = a.emitWithAck('inc'); // behind the hanging handler, its deadline 5 s away
  const sent = Date.now();
  const answer = await b.emitWithAck('inc'); // then this one, its deadline 300 ms away
  const took = Date.now() - sent;
  assert.equal(noticeOf([answer])?.reason, 'queue-timeout');
  // Before: answered when the sweep armed for the other instance's event fired, about 5 s later.
  assert.ok(took < 2500, `answered after ${took} ms (storeTimeout 300)`);
  release();
  assert.deepEqual([await hung, await waiting], ['late', 'a']);
  b.disconnect();
});
