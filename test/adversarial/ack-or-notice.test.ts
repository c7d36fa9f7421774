// Invariant 7, server side (docs/architecture.md; issue 15 case 6): in per-message mode every client
// emit that asks for an ack is answered exactly once, by its ack or by one typed notice as its ack
// (`{ 'sio-sessions:notice': { code, reason, retryAfter? } }`). Real socket.io server and client;
// the ACK packets are counted on the wire (socket.io-client's Manager `packet` event), because the
// client drops a second ACK for one id silently and a duplicate would go unseen otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io';
import { Events } from '../../src/protocol.js';
import { emit, wire } from '../helpers/acks.js';
import { connectClient, connected, eventually, sidOf, startServer } from '../helpers/servers.js';
import { FaultyStore } from '../helpers/stores.js';
import { watchProcess } from '../helpers/crashes.js';

type Ack = (...args: unknown[]) => void;

async function perMessage(t: { after(fn: () => unknown): void }, options: Parameters<typeof startServer>[0], setup: (socket: Socket) => void) {
  const server = await startServer({ perMessage: true, ...options });
  t.after(() => server.close());
  const errors: unknown[] = [];
  server.sio.on('serror', (err) => errors.push(err));
  server.sio.on('sconnection', (socket) => setup(socket));
  const cookie = await server.login({ counter: 0 });
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  const onWire = wire(client);
  await connected(client);
  return { server, cookie, client, onWire, errors };
}

function counterHandlers(socket: { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown }, hang: Promise<void>): void {
  socket.on('inc', (ack: Ack) => {
    socket.session.counter = (socket.session.counter as number) + 1;
    ack(socket.session.counter);
  });
  socket.on('hang', async (ack: Ack) => {
    socket.session.counter = -1000;
    await hang;
    ack('too late');
  });
}

test('the issue\'s scenario: one hanging handler and 200 events at once get 200 answers, each exactly once, each its ack or a typed notice; the acked increments are stored', async (t) => {
  let release!: () => void;
  const hang = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  const { server, cookie, client, onWire } = await perMessage(t, { handlerTimeout: 1000, maxPendingEvents: 20, storeTimeout: 1500 }, (socket) => counterHandlers(socket as never, hang));
  const answers = [emit(client, 'hang'), ...Array.from({ length: 199 }, () => emit(client, 'inc'))];
  await eventually(() => answers.every((a) => a.args !== undefined), 10_000);
  release();
  await server.sio.flush();

  const reasons = new Map<string, number>();
  for (const a of answers) if (a.notice) reasons.set(a.notice.reason, (reasons.get(a.notice.reason) ?? 0) + 1);
  const acked = answers.slice(1).filter((a) => !a.notice);
  assert.equal(answers[0].notice?.reason, 'handler-timeout', 'the hanging handler is answered when it is given up');
  assert.equal(answers[0].notice?.code, 'EVENT_FAILED');
  assert.equal(reasons.get('queue-full'), 180, `every overflowed event gets queue-full, not only the first: ${JSON.stringify([...reasons])}`);
  for (const a of answers.filter((x) => x.notice?.reason === 'queue-full')) assert.deepEqual(a.notice, { code: 'SESSION_UNAVAILABLE', reason: 'queue-full', retryAfter: 1000 });
  assert.equal(acked.length + (reasons.get('queue-timeout') ?? 0), 20 - 1, 'the 19 queued behind the hang ran (or timed out waiting)');
  assert.deepEqual(acked.map((a) => a.args![0]), acked.map((_, i) => i + 1), 'real acks carry the handler\'s values, in order');
  assert.equal(onWire.acks.size, 200);
  assert.deepEqual(onWire.duplicates(), []);
  assert.equal((await server.httpSession(cookie)).counter, acked.length, 'the acked increments are stored; the given-up handler\'s write is not');
});

test('packets an app middleware after ours stops (never dispatched) do not count against maxPendingEvents later: after more of them than the bound, acked events still run', async (t) => {
  // Our middleware counts a packet it lets through until socket.io dispatches it; one that a later
  // middleware stops is never dispatched, and must not hold a place in the bound for good.
  let stopped = 0;
  const { server, cookie, client, onWire } = await perMessage(t, { maxPendingEvents: 3 }, (socket) => {
    counterHandlers(socket as never, new Promise(() => undefined));
    socket.on('blocked', () => assert.fail('a stopped packet reached its listener'));
    socket.on('error', () => undefined); // socket.io reports a middleware's refusal there
    socket.use((packet, next) => (packet[0] === 'blocked' ? (stopped++, next(new Error('not allowed'))) : next()));
  });
  const queueFull: unknown[] = [];
  client.on(Events.UNAVAILABLE, (data) => queueFull.push(data));
  // One at a time (each in its own read), more than the bound allows at once.
  for (let i = 1; i <= 5; i++) {
    client.emit('blocked', i);
    await eventually(() => stopped === i, 2000);
  }
  const answers = [];
  for (let i = 0; i < 3; i++) {
    const answer = emit(client, 'inc');
    await eventually(() => answer.args !== undefined, 3000);
    answers.push(answer);
  }
  assert.deepEqual(answers.map((a) => a.notice), [undefined, undefined, undefined], `no notice: ${JSON.stringify(answers)}`);
  assert.deepEqual(answers.map((a) => a.args?.[0]), [1, 2, 3]);
  assert.deepEqual(queueFull, [], 'no queue-full push');
  assert.deepEqual(onWire.duplicates(), []);
  await server.sio.flush();
  assert.equal((await server.httpSession(cookie)).counter, 3);
});

test('handlers that throw, reject, hang, ack twice, ack then throw, or ack after returning: one answer each; a failed handler\'s changes are undone and it gets a notice, never its ack', async (t) => {
  const { server, cookie, client, onWire, errors } = await perMessage(t, { handlerTimeout: 300 }, (socket) => {
    const s = socket as unknown as { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown };
    s.on('throw', () => {
      s.session.a = 'thrown';
      throw new Error('sync failure');
    });
    s.on('reject', async () => {
      await Promise.resolve();
      s.session.b = 'rejected';
      throw new Error('async failure');
    });
    s.on('hang', () => new Promise(() => (s.session.c = 'hung')));
    s.on('twice', (ack: Ack) => {
      s.session.d = 'twice';
      ack('first');
      ack('second');
    });
    s.on('ack-then-throw', (ack: Ack) => {
      s.session.e = 'acked then threw';
      ack('acked');
      throw new Error('after the ack');
    });
    s.on('late', (ack: Ack) => {
      s.session.f = 'late';
      setTimeout(() => ack('after returning'), 50);
    });
    s.on('no-ack-throw', () => {
      throw new Error('no ack asked');
    });
  });
  const got = {
    throw: emit(client, 'throw'),
    reject: emit(client, 'reject'),
    hang: emit(client, 'hang'),
    twice: emit(client, 'twice'),
    ackThenThrow: emit(client, 'ack-then-throw'),
    late: emit(client, 'late'),
  };
  client.emit('no-ack-throw');
  await eventually(() => Object.values(got).every((a) => a.args !== undefined), 5000);
  await server.sio.flush();
  assert.deepEqual(got.throw.notice, { code: 'EVENT_FAILED', reason: 'handler-error' });
  assert.deepEqual(got.reject.notice, { code: 'EVENT_FAILED', reason: 'handler-error' });
  assert.deepEqual(got.hang.notice, { code: 'EVENT_FAILED', reason: 'handler-timeout' });
  assert.deepEqual(got.twice.args, ['first'], 'only the first ack counts');
  assert.deepEqual(got.ackThenThrow.notice, { code: 'EVENT_FAILED', reason: 'handler-error' }, 'its changes were undone, so its ack is not sent: the notice is');
  assert.deepEqual(got.late.args, ['after returning'], 'an ack sent after the handler returned still goes out, once');
  const stored = await server.httpSession(cookie);
  assert.deepEqual(
    { a: stored.a, b: stored.b, c: stored.c, d: stored.d, e: stored.e, f: stored.f },
    { a: undefined, b: undefined, c: undefined, d: 'twice', e: undefined, f: 'late' },
  );
  assert.equal(onWire.acks.size, 6, 'the event that asked for no ack got none');
  assert.deepEqual(onWire.duplicates(), []);
  assert.equal(errors.length, 5, 'each failed handler is still reported through serror');
});

test('a session ended while events wait: each waiting (and the running) emit gets session-ended before the socket is told invalid and disconnected', async (t) => {
  let release!: () => void;
  const hang = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  let seen = 0;
  const { server, cookie, client, onWire } = await perMessage(t, {}, (socket) => {
    counterHandlers(socket as never, hang);
    socket.onAny(() => (seen += 1));
  });
  const order: string[] = [];
  const answers = [emit(client, 'hang'), ...Array.from({ length: 5 }, () => emit(client, 'inc'))];
  client.io.on('packet', (packet: { type: number; data?: unknown[] }) => {
    if (packet.type === 3) order.push('answer');
    if (packet.type === 2 && packet.data?.[0] === Events.INVALID) order.push('invalid');
  });
  const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
  await eventually(() => seen === 6); // all six arrived (and were queued on the tick they arrived)
  await server.logout(cookie);
  await disconnected;
  release();
  assert.deepEqual(order, ['answer', 'answer', 'answer', 'answer', 'answer', 'answer', 'invalid']);
  for (const a of answers) assert.deepEqual(a.notice, { code: 'SESSION_INVALID', reason: 'session-ended' });
  assert.deepEqual(onWire.duplicates(), []);
  assert.deepEqual(await server.httpSession(cookie), {}, 'the session stays ended');
});

test('a store that hangs: every waiting emit gets a store-timeout (or queue-timeout) notice with retryAfter, the socket still gets its unavailable push, and the next emit is served once the store is back', async (t) => {
  const store = new FaultyStore();
  const { server, cookie, client, onWire } = await perMessage(t, { store, storeTimeout: 300 }, (socket) => counterHandlers(socket as never, new Promise(() => undefined)));
  const pushes: unknown[] = [];
  client.on(Events.UNAVAILABLE, (data) => pushes.push(data));
  assert.equal(await client.timeout(2000).emitWithAck('inc'), 1);
  store.fault = { kind: 'hang' };
  const answers = Array.from({ length: 5 }, () => emit(client, 'inc'));
  await eventually(() => answers.every((a) => a.args !== undefined), 5000);
  for (const a of answers) {
    assert.equal(a.notice?.code, 'SESSION_UNAVAILABLE');
    assert.ok(a.notice.reason === 'store-timeout' || a.notice.reason === 'queue-timeout', a.notice.reason);
    assert.equal(typeof a.notice.retryAfter, 'number');
  }
  assert.ok(answers.some((a) => a.notice?.reason === 'store-timeout'));
  assert.ok(pushes.length >= 1, 'the status push is kept');
  store.fault = undefined;
  assert.equal(await client.timeout(2000).emitWithAck('inc'), 2, 'the failed increments were not applied');
  await server.sio.flush();
  assert.equal((store.peek(sidOf(cookie)) as { counter: number }).counter, 2);
  assert.deepEqual(onWire.duplicates(), []);
});

test('a lock that cannot be had: each waiting emit gets a lock-timeout notice (SESSION_UNAVAILABLE, retryAfter), once', async (t) => {
  // A lock service that never answers (a frozen Redis): the fault cannot be produced with a real lock cheaply.
  let held = true;
  const lock = { acquire: () => (held ? new Promise<never>(() => undefined) : Promise.resolve(async () => undefined)) };
  const { client, onWire } = await perMessage(t, { lock, storeTimeout: 300 }, (socket) => counterHandlers(socket as never, new Promise(() => undefined)));
  const answers = Array.from({ length: 3 }, () => emit(client, 'inc'));
  await eventually(() => answers.every((a) => a.args !== undefined), 5000);
  for (const a of answers) assert.deepEqual(a.notice, { code: 'SESSION_UNAVAILABLE', reason: 'lock-timeout', retryAfter: 200 });
  held = false;
  assert.equal(await client.timeout(2000).emitWithAck('inc'), 1);
  assert.deepEqual(onWire.duplicates(), []);
});

test("a lock of the app's whose release throws (instead of rejecting) or returns no promise: every emit is still acked, the next events run, and the process keeps running", async (t) => {
  const crashes = watchProcess(t);
  const releases: string[] = [];
  // SessionLock's release returns a promise; an app's own lock may break that. Each release misbehaves in turn.
  const misbehaving = [
    () => {
      releases.push('threw');
      throw new Error('release blew up');
    },
    () => {
      releases.push('no promise');
      return undefined as unknown as Promise<void>;
    },
  ];
  let acquired = 0;
  const lock = { acquire: async () => misbehaving[acquired++ % misbehaving.length]! };
  const { server, cookie, client, onWire } = await perMessage(t, { lock, storeTimeout: 1000 }, (socket) => counterHandlers(socket as never, new Promise(() => undefined)));
  for (let i = 1; i <= 4; i++) assert.equal(await client.timeout(2000).emitWithAck('inc'), i, `event ${i} is acked`);
  assert.deepEqual(releases, ['threw', 'no promise', 'threw', 'no promise'], 'each batch released its lock once');
  await server.sio.flush();
  assert.equal((await server.httpSession(cookie)).counter, 4);
  // (A rejection nobody handles is reported a tick later: let it come, if one is on its way.)
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(crashes, [], 'no unhandled rejection (Node would end the process)');
  assert.deepEqual(onWire.duplicates(), []);
});

test('the listeners are run without touching socket.io\'s private fields: an app middleware after ours still refuses an event, onAny sees it with its ack, and listeners() still lists the app\'s functions', async (t) => {
  const anySeen: unknown[][] = [];
  let serverSocket: Socket | undefined;
  let refusedEvent!: () => void;
  const refused = new Promise<void>((resolve) => (refusedEvent = resolve));
  const handler = (ack: Ack) => ack('ran');
  const { client } = await perMessage(t, {}, (socket) => {
    serverSocket = socket;
    socket.use(([event], next) => (event === 'forbidden' ? next(new Error('not allowed')) : next()));
    socket.on('error', () => refusedEvent()); // socket.io's way to hear a refused event
    socket.onAny((...args: unknown[]) => anySeen.push(args));
    socket.on('allowed', handler);
    socket.on('forbidden', handler);
  });
  assert.equal(await client.timeout(2000).emitWithAck('allowed'), 'ran');
  const forbidden = emit(client, 'forbidden');
  await refused;
  assert.equal(await client.timeout(2000).emitWithAck('allowed'), 'ran', 'the next event still runs');
  assert.equal(forbidden.args, undefined, 'an event the app\'s middleware refused is not run (nor answered: the app refused it, as in plain socket.io)');
  assert.deepEqual(anySeen.map((args) => [args[0], typeof args[1]]), [['allowed', 'function'], ['forbidden', 'function'], ['allowed', 'function']]);
  assert.deepEqual(serverSocket!.listeners('allowed'), [handler]);
  serverSocket!.off('allowed', handler);
  assert.equal(serverSocket!.listenerCount('allowed'), 0);
});

test('an event whose deadline passes while handlers before it in its batch run is not run: queue-timeout, not a late ack', async (t) => {
  let release!: () => void;
  const hang = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  const { server, cookie, client, onWire } = await perMessage(t, { handlerTimeout: 300, storeTimeout: 450 }, (socket) => counterHandlers(socket as never, hang));
  const answers = [emit(client, 'hang'), emit(client, 'hang'), emit(client, 'inc')];
  await eventually(() => answers.every((a) => a.args !== undefined), 5000);
  assert.deepEqual(answers.map((a) => a.notice?.reason), ['handler-timeout', 'handler-timeout', 'queue-timeout']);
  await server.sio.flush();
  assert.equal((await server.httpSession(cookie)).counter, 0, 'the timed-out increment did not run');
  assert.deepEqual(onWire.duplicates(), []);
});

test('a handler that acks with what socket.io cannot send (a BigInt, a cycle): the ack is held until the save, so the emit gets a handler-error notice, it is reported, its change stays saved, and the session\'s next events are served', async (t) => {
  const { server, cookie, client, onWire, errors } = await perMessage(t, {}, (socket) => {
    const s = socket as unknown as { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown };
    s.on('bigint', (ack: Ack) => {
      s.session.counter = (s.session.counter as number) + 1;
      ack(10n);
    });
    s.on('cycle', (ack: Ack) => {
      s.session.counter = (s.session.counter as number) + 1;
      const loop: Record<string, unknown> = {};
      loop.self = loop;
      ack(loop);
    });
    counterHandlers(s, Promise.resolve());
  });
  // In a row and in one batch: the unsendable ack must not stall the session's queue or the acks after it.
  const got = [emit(client, 'bigint'), emit(client, 'cycle'), emit(client, 'inc')];
  await eventually(() => got.every((a) => a.args !== undefined), 5000);
  assert.deepEqual(got[0].notice, { code: 'EVENT_FAILED', reason: 'handler-error' });
  assert.deepEqual(got[1].notice, { code: 'EVENT_FAILED', reason: 'handler-error' });
  assert.deepEqual(got[2].args, [3]);
  const later = emit(client, 'inc');
  await eventually(() => later.args !== undefined, 5000);
  assert.deepEqual(later.args, [4], 'the session\'s queue goes on');
  assert.equal((await server.httpSession(cookie)).counter, 4, 'the changes were saved before the acks were sent');
  assert.deepEqual(onWire.duplicates(), []);
  assert.equal(errors.length, 2);
  assert.match(String((errors[0] as Error).message), /acked with arguments socket\.io cannot send/);
});

/**
 * A fault of our own code (not the app's: handler throws are caught where the handler is called)
 * while a batch goes on from an async handler. No real input makes our code throw there, so a method
 * of the session's stand-in (SessionEntry, ours) is patched to throw once: a mock, for a fault that
 * cannot be produced for real. Undone after the test.
 */
async function withFaultOnce(t: { after(fn: () => unknown): void }, method: 'begin' | 'takeChanges', arm: (fire: () => void) => void): Promise<{ thrown: () => boolean }> {
  const { SessionEntry } = await import('../../src/server/session-entry.js');
  const proto = SessionEntry.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method]!;
  let armed = false;
  let thrown = false;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    if (!armed) return original.apply(this, args);
    armed = false;
    thrown = true;
    throw new Error(`injected fault in SessionEntry.${method}`);
  };
  t.after(() => (proto[method] = original));
  arm(() => (armed = true));
  return { thrown: () => thrown };
}

/** After a fault contained: the session's next event is served and stored, no emit was answered twice, nothing escaped. */
async function goesOn({ server, cookie, client, onWire }: Pick<Awaited<ReturnType<typeof perMessage>>, 'server' | 'cookie' | 'client' | 'onWire'>, escaped: unknown[]): Promise<void> {
  const later = emit(client, 'inc');
  await eventually(() => later.args !== undefined, 5000);
  assert.deepEqual(later.args, [1], 'the session\'s queue goes on');
  assert.equal((await server.httpSession(cookie)).counter, 1);
  assert.deepEqual(onWire.duplicates(), []);
  assert.deepEqual(escaped, [], 'nothing reached the process as an unhandled rejection or exception');
}

test('a batch started from the end of an async handler\'s batch that fails at its start (our fault, injected): only its own emit gets a notice, once; the earlier emit keeps its ack; nothing escapes; the queue goes on', async (t) => {
  const escaped = watchProcess(t);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  const seen: string[] = [];
  let started = false;
  const { server, cookie, client, onWire, errors } = await perMessage(t, {}, (socket) => {
    socket.use(([event], next) => {
      seen.push(event as string);
      next();
    });
    const s = socket as unknown as { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown };
    // Changes nothing: its batch has nothing to save and ends in the same call as its continuation, which starts the next batch.
    s.on('wait', async (ack: Ack) => {
      started = true;
      await gate;
      ack('waited');
    });
    counterHandlers(s, Promise.resolve());
  });
  let fire!: () => void;
  const fault = await withFaultOnce(t, 'begin', (f) => (fire = f));
  const first = emit(client, 'wait');
  await eventually(() => started, 5000); // its batch runs (its handler waits at the gate)
  const second = emit(client, 'inc');
  await eventually(() => seen.length === 2, 5000); // queued behind it: the next batch
  fire();
  release();
  await eventually(() => first.args !== undefined && second.args !== undefined, 5000);
  assert.ok(fault.thrown(), 'the fault was injected where the second batch starts');
  assert.deepEqual(first.args, ['waited'], 'the earlier batch is not failed by the next one\'s fault');
  assert.deepEqual(second.notice, { code: 'SESSION_UNAVAILABLE', reason: 'store-error', retryAfter: 1000 });
  await goesOn({ server, cookie, client, onWire }, escaped);
  assert.equal(errors.filter((e) => !(e instanceof Error && /store/.test(e.message))).length, 0, String(errors));
});

test('an async handler\'s batch whose own save step fails after the handler resumed (our fault, injected): its emit gets one store-error notice, its change is not kept, nothing escapes, and the queue goes on', async (t) => {
  const escaped = watchProcess(t);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  t.after(() => release());
  let started = false;
  const { server, cookie, client, onWire } = await perMessage(t, {}, (socket) => {
    const s = socket as unknown as { session: Record<string, unknown>; on(event: string, fn: (...args: any[]) => unknown): unknown };
    s.on('wait-then-set', async (ack: Ack) => {
      started = true;
      await gate;
      s.session.counter = 100;
      ack('set');
    });
    counterHandlers(s, Promise.resolve());
  });
  let fire!: () => void;
  const fault = await withFaultOnce(t, 'takeChanges', (f) => (fire = f));
  const first = emit(client, 'wait-then-set');
  await eventually(() => started, 5000);
  fire();
  release();
  await eventually(() => first.args !== undefined, 5000);
  assert.ok(fault.thrown());
  assert.deepEqual(first.notice, { code: 'SESSION_UNAVAILABLE', reason: 'store-error', retryAfter: 1000 });
  const later = [emit(client, 'inc'), emit(client, 'inc')];
  await eventually(() => later.every((a) => a.args !== undefined), 5000);
  assert.deepEqual(later.map((a) => a.args), [[1], [2]], 'the failed batch\'s change is not kept; the queue goes on');
  assert.equal((await server.httpSession(cookie)).counter, 2);
  assert.deepEqual(onWire.duplicates(), []);
  assert.deepEqual(escaped, [], 'nothing reached the process as an unhandled rejection or exception');
});

test('a batch that fails before it runs (our fault, injected: the options of its first event cannot be read): its emit gets one store-error notice, nothing escapes into socket.io\'s or the store\'s call, and the queue goes on', async (t) => {
  const escaped = watchProcess(t);
  const { server, cookie, client, onWire } = await perMessage(t, {}, (socket) => counterHandlers(socket as never, Promise.resolve()));
  // A mock for a fault we cannot produce for real (see withFaultOnce): EventUnit is ours; its
  // `options` getter throws once, where the queue starts the batch.
  const { EventUnit } = await import('../../src/server/runtime/events.js');
  const original = Object.getOwnPropertyDescriptor(EventUnit.prototype, 'options')!;
  let armed = true;
  Object.defineProperty(EventUnit.prototype, 'options', {
    configurable: true,
    get(this: unknown) {
      if (!armed) return original.get!.call(this);
      armed = false;
      throw new Error('injected fault in EventUnit.options');
    },
  });
  t.after(() => Object.defineProperty(EventUnit.prototype, 'options', original));
  const first = emit(client, 'inc');
  await eventually(() => first.args !== undefined, 5000);
  assert.equal(armed, false, 'the fault was injected');
  assert.deepEqual(first.notice, { code: 'SESSION_UNAVAILABLE', reason: 'store-error', retryAfter: 1000 });
  await goesOn({ server, cookie, client, onWire }, escaped);
});
