// Invariant 8 (issue 15, cases 1-4): nothing an app stores in a session (deep, cyclic, BigInt,
// getters, the session itself, `__proto__` keys) and nothing a client sends can crash the process,
// change a session's prototype or stop the session's other keys from being saved. A bad value fails
// its own event (per-message: no ack, one `not-storable` notice as its ack, one `serror`), or, in
// per-connection mode, is left out of the saves and reported once. Real socket.io server and client,
// express-session's MemoryStore and the reference server's SQLite store; the process is watched for
// unhandled rejections and uncaught exceptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { Store } from 'express-session';
import { NOTICE_FIELD } from '../../src/protocol.js';
import { SessionValueError } from '../../src/errors.js';
import { MAX_DEPTH } from '../../src/server/storable.js';
import { FaultyStore } from '../helpers/stores.js';
import { startServer, connectClient, connected, eventually, sidOf, type TestServer } from '../helpers/servers.js';
import { watchProcess } from '../helpers/crashes.js';

type T = { after(fn: () => unknown): void };
type Bag = Record<string, unknown>;

/** `levels` objects nested in each other, built without recursion. */
function nested(levels: number): Bag {
  const root: Bag = {};
  let at = root;
  for (let i = 1; i < levels; i++) at = (at.a = {}) as Bag;
  return root;
}

/** Values an app may put in a session that JSON cannot hold, made on the server. */
const BAD_VALUES: Record<string, (session: Bag) => unknown> = {
  'a BigInt': () => 10n,
  'a cycle': () => {
    const value: Bag = { list: [] };
    (value.list as unknown[]).push(value);
    return value;
  },
  'the session itself': (session) => session,
  'a throwing getter': () => ({
    get boom(): never {
      throw new Error('boom');
    },
  }),
  [`${MAX_DEPTH * 5} nested objects`]: () => nested(MAX_DEPTH * 5),
};

interface Harness {
  server: TestServer;
  serror: unknown[];
  crashes: unknown[];
}

async function harness(t: T, options: { perMessage: boolean; store?: Store; revalidateInterval?: number }): Promise<Harness> {
  const crashes = watchProcess(t);
  const { store, ...rest } = options;
  const server = await startServer({ saveDelay: 50, storeTimeout: 2000, ...rest, ...(store && { store }) });
  t.after(() => server.close());
  const serror: unknown[] = [];
  server.sio.on('serror', (err) => serror.push(err));
  server.sio.on('sconnection', (socket) => {
    const session = socket.session as unknown as Bag;
    socket.on('inc', (ack: (n: number) => void) => {
      session.counter = ((session.counter as number | undefined) ?? 0) + 1;
      ack(session.counter as number);
    });
    socket.on('bad', (kind: string, ack: (r: string) => void) => {
      session.other = 'changed by the bad event';
      session.bad = BAD_VALUES[kind](session);
      ack('ok');
    });
    socket.on('late', (kind: string, ack: (r: string) => void) => {
      // Passes the check at the handler's end (its first call), throws when the save serialises it.
      let calls = 0;
      const once = () => {
        if (++calls > 1) throw new Error('only once');
        return 1;
      };
      session.late = kind === 'getter' ? { get v() { return once(); } } : { toJSON: once };
      ack('ok');
    });
    socket.on('has', (key: string, ack: (r: boolean) => void) => ack(Object.hasOwn(session, key)));
    socket.on('prefs', (data: unknown, ack: (r: string) => void) => {
      session.prefs = data;
      ack('ok');
    });
    socket.on('assign', (data: object, ack: (r: unknown) => void) => {
      Object.assign(session, data);
      ack('ok');
    });
    socket.on('save-bigint', (ack: (r: string) => void) => {
      session.total = 10n;
      (socket.session as unknown as { save(cb: (err?: Error) => void): void }).save((err) => ack(err ? err.name : 'saved'));
    });
    socket.on('define', (ack: (r: string) => void) => {
      Object.defineProperty(session, 'g', { get: () => 1, enumerable: true, configurable: true });
      ack('ok');
    });
    socket.on('set-prototype', (ack: (r: string) => void) => {
      try {
        Object.setPrototypeOf(session, { isAdmin: true });
        ack('changed');
      } catch (err) {
        ack((err as Error).name);
      }
    });
    socket.on('plain-cookie', (ack: (r: string) => void) => {
      // The cookie's own fields as a plain object in the Cookie's place (what JSON of the Cookie gives).
      session.cookie = JSON.parse(JSON.stringify(session.cookie));
      ack('ok');
    });
    socket.on('cookie-kind', (ack: (r: string) => void) => ack(typeof (session.cookie as { serialize?: unknown }).serialize));
    socket.on('cookie-fields', (ack: (r: unknown) => void) => {
      const { path, sameSite, expires } = session.cookie as { path?: string; sameSite?: unknown; expires?: unknown };
      ack({ path, sameSite: sameSite ?? null, expires: expires instanceof Date ? expires.toISOString() : expires, kind: typeof (session.cookie as { serialize?: unknown }).serialize });
    });
    socket.on('peek', (ack: (r: unknown) => void) => {
      ack({
        isAdmin: (session as { isAdmin?: unknown }).isAdmin ?? null,
        prototypeIntact: typeof (session as { touch?: unknown }).touch === 'function' && !Object.hasOwn(session, 'constructor'),
        keys: Object.keys(session).filter((k) => k !== 'cookie').sort(),
      });
    });
  });
  return { server, serror, crashes };
}

const notStorable = (key: string) => ({ [NOTICE_FIELD]: { code: 'EVENT_FAILED', reason: 'not-storable', key } });

async function open(t: T, server: TestServer, cookie: string) {
  const client = connectClient(server.url, cookie);
  t.after(() => client.close());
  await connected(client);
  return client;
}

/** What the store holds for the cookie's session (read through the store's own `get`). */
function stored(server: TestServer, cookie: string): Promise<Bag | null> {
  return new Promise((resolve, reject) => server.store.get(sidOf(cookie), (err, data) => (err ? reject(err) : resolve((data ?? null) as Bag | null))));
}

const valueErrors = (serror: unknown[], key: string) => serror.filter((e) => e instanceof SessionValueError && e.key === key);

async function sqliteStore(t: T): Promise<Store> {
  const { SqliteStore } = (await import('../../server-stub/sqlite-store.js' as string)) as { SqliteStore: new (o: { path: string; pruneInterval: number }) => Store & { close(): void } };
  const store = new SqliteStore({ path: ':memory:', pruneInterval: 0 });
  t.after(() => store.close());
  return store;
}

for (const storeName of ['MemoryStore', 'SqliteStore'] as const) {
  test(`per-message (${storeName}): an event that stores a value JSON cannot hold fails alone; the others of its batch are saved`, async (t) => {
    const store = storeName === 'SqliteStore' ? await sqliteStore(t) : undefined;
    const { server, serror, crashes } = await harness(t, { perMessage: true, store });
    for (const kind of Object.keys(BAD_VALUES)) {
      const cookie = await server.login({ other: 'original' });
      const client = await open(t, server, cookie);
      assert.equal(await client.emitWithAck('inc'), 1);
      // Sent together: one batch on the server (the bad one in the middle).
      const answers = await Promise.all([client.emitWithAck('inc'), client.emitWithAck('bad', kind), client.emitWithAck('inc')]);
      assert.deepEqual(answers, [2, notStorable('bad'), 3], kind);
      assert.deepEqual(await client.emitWithAck('peek'), { isAdmin: null, prototypeIntact: true, keys: ['counter', 'other', 'user'] }, `${kind}: the bad event's changes were undone`);
      const record = await stored(server, cookie);
      assert.equal(record?.counter, 3, `${kind}: every acked increment is stored`);
      assert.equal(record?.other, 'original', `${kind}: the failed event changed nothing`);
      assert.equal(Object.hasOwn(record!, 'bad'), false);
      assert.equal(valueErrors(serror, 'bad').length, 1, `${kind}: one serror naming the key`);
      serror.length = 0;
      client.close();
    }
    assert.deepEqual(crashes, []);
  });
}

test('per-message: a value that passes its handler\'s check and throws only when the save serialises it (a getter, a toJSON) fails its event, not acked; the others of its batch are acked and stored', async (t) => {
  const { server, serror, crashes } = await harness(t, { perMessage: true });
  for (const kind of ['getter', 'toJSON']) {
    const cookie = await server.login();
    const client = await open(t, server, cookie);
    assert.equal(await client.emitWithAck('inc'), 1);
    const answers = await Promise.all([client.emitWithAck('inc'), client.emitWithAck('late', kind), client.emitWithAck('inc')]);
    // Before: 'ok' for the late one, whose key the save left out (an acked write not in the store).
    assert.deepEqual(answers, [2, notStorable('late'), 3], kind);
    const record = await stored(server, cookie);
    assert.equal(record?.counter, 3, `${kind}: every acked increment is stored`);
    assert.equal(Object.hasOwn(record!, 'late'), false);
    assert.equal(valueErrors(serror, 'late').length, 1, `${kind}: one serror naming the key`);
    // Before: the value stayed in the session (not rolled back as a refusal at the handler's end is).
    assert.equal(await client.emitWithAck('has', 'late'), false, `${kind}: the key is back to what the store holds (none)`);
    assert.equal(await client.emitWithAck('inc'), 4);
    serror.length = 0;
    client.close();
  }
  assert.deepEqual(crashes, []);
});

test('per-message: a 10,000-deep object in one client frame (~60 KB) fails its event; the process lives and serves the session', async (t) => {
  const { server, serror, crashes } = await harness(t, { perMessage: true });
  const cookie = await server.login();
  const raw = await rawClient(t, server, cookie);
  const levels = 10_000;
  // Written by hand: this process never serialises (or recurses over) the deep value.
  raw.send(`421["prefs",${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}]`);
  assert.deepEqual(JSON.parse((await raw.next('431')).slice(3)), [notStorable('prefs')]);
  raw.send('422["inc"]');
  assert.equal(await raw.next('432'), '432[1]');
  assert.equal(valueErrors(serror, 'prefs').length, 1);
  assert.equal((await stored(server, cookie))?.counter, 1);
  assert.equal(Object.hasOwn((await stored(server, cookie))!, 'prefs'), false);
  assert.deepEqual(crashes, []);
});

test('per-connection: a value that cannot be saved does not block the saves of the other keys, and is reported once', async (t) => {
  const { server, serror, crashes } = await harness(t, { perMessage: false });
  for (const kind of Object.keys(BAD_VALUES)) {
    const cookie = await server.login({ other: 'original' });
    const client = await open(t, server, cookie);
    assert.equal(await client.emitWithAck('bad', kind), 'ok');
    for (let i = 1; i <= 5; i++) assert.equal(await client.emitWithAck('inc'), i);
    // Saved within saveDelay (50 ms) of the changes, not only at disconnect.
    await eventually(async () => (await stored(server, cookie))?.counter === 5, 3000);
    client.close();
    await eventually(() => server.io.of('/').sockets.size === 0);
    await server.sio.flush();
    const record = await stored(server, cookie);
    assert.equal(record?.counter, 5, kind);
    assert.equal(record?.other, 'changed by the bad event', `${kind}: the other key its handler set is saved`);
    assert.equal(Object.hasOwn(record!, 'bad'), false, `${kind}: not stored`);
    assert.equal(valueErrors(serror, 'bad').length, 1, `${kind}: reported once over several saves`);
    serror.length = 0;
    const again = await open(t, server, cookie);
    assert.equal(await again.emitWithAck('inc'), 6, `${kind}: a new socket counts on`);
    again.close();
  }
  assert.deepEqual(crashes, []);
});

test("per-connection: the app's own session.save() of a BigInt gets the store's error in its callback and nothing is thrown (a MemoryStore serialises inside set); the other keys are saved", async (t) => {
  const { server, serror, crashes } = await harness(t, { perMessage: false });
  const cookie = await server.login();
  const client = await open(t, server, cookie);
  assert.equal(await client.emitWithAck('inc'), 1);
  // Before: the TypeError was thrown into the handler after the callback had it: the process ended.
  assert.equal(await client.emitWithAck('save-bigint'), 'TypeError');
  assert.equal(await client.emitWithAck('inc'), 2);
  await eventually(async () => (await stored(server, cookie))?.counter === 2, 3000);
  assert.equal(Object.hasOwn((await stored(server, cookie))!, 'total'), false);
  assert.equal(valueErrors(serror, 'total').length, 1);
  assert.deepEqual(crashes, []);
});

test("per-message: a client's {\"req\": ...} or {\"id\": ...} assigned to the session fails its event (express-session's fixed properties), is not taken for a changed key, and the session's next events are saved", async (t) => {
  const { server, serror, crashes } = await harness(t, { perMessage: true });
  const cookie = await server.login();
  const client = await open(t, server, cookie);
  for (const key of ['req', 'id']) {
    const answer = (await client.emitWithAck('assign', { [key]: 'mallory', theme: key })) as Record<string, { reason?: string }>;
    assert.equal(answer[NOTICE_FIELD]?.reason, 'handler-error', key);
  }
  assert.equal(await client.emitWithAck('inc'), 1);
  const record = await stored(server, cookie);
  assert.equal(record?.counter, 1);
  assert.equal(Object.hasOwn(record!, 'theme'), false, 'the failed events were undone');
  // Before: the failed `req` assignment was marked changed, and the save reported the stand-in request as a value that cannot be stored.
  assert.deepEqual(serror.filter((e) => e instanceof SessionValueError), []);
  assert.deepEqual(crashes, []);
});

for (const perMessage of [true, false]) {
  const mode = perMessage ? 'per-message' : 'per-connection';

  test(`${mode}: an accessor defined on the session is not stored, reported once, and later events work`, async (t) => {
    const { server, serror, crashes } = await harness(t, { perMessage });
    const cookie = await server.login();
    const client = await open(t, server, cookie);
    assert.deepEqual(await client.emitWithAck('define'), perMessage ? notStorable('g') : 'ok');
    for (let i = 1; i <= 20; i++) assert.equal(await client.emitWithAck('inc'), i);
    await server.sio.flush();
    assert.equal((await stored(server, cookie))?.counter, 20);
    assert.equal(Object.hasOwn((await stored(server, cookie))!, 'g'), false);
    assert.equal(valueErrors(serror, 'g').length, 1);
    assert.deepEqual(serror.filter((e) => !(e instanceof SessionValueError)), []);
    assert.deepEqual(crashes, []);
  });

  test(`${mode}: a client's {"__proto__": ...} assigned to the session changes no prototype; revalidation keeps working`, async (t) => {
    const { server, serror, crashes } = await harness(t, { perMessage, revalidateInterval: 100 });
    const cookie = await server.login();
    const client = await open(t, server, cookie);
    // What `JSON.parse` makes of a client's body: own keys named like the object machinery.
    const payload = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"isAdmin":true},"prototype":{"isAdmin":true},"touch":1,"save":1,"theme":"dark"}');
    assert.equal(await client.emitWithAck('assign', payload), 'ok');
    assert.deepEqual(await client.emitWithAck('peek'), { isAdmin: null, prototypeIntact: true, keys: ['theme', 'user'] });
    assert.equal(await client.emitWithAck('set-prototype'), 'SessionValueError');
    assert.deepEqual(await client.emitWithAck('peek'), { isAdmin: null, prototypeIntact: true, keys: ['theme', 'user'] });
    // Several revalidations (each touches the active session) with traffic in between.
    const until = Date.now() + 600;
    for (let i = 1; Date.now() < until; i++) assert.equal(await client.emitWithAck('inc'), i);
    await server.sio.flush();
    const record = (await stored(server, cookie))!;
    assert.equal(record.theme, 'dark');
    assert.deepEqual(Object.keys(record).filter((k) => ['__proto__', 'constructor', 'prototype', 'touch', 'save'].includes(k)), []);
    assert.deepEqual(serror, []);
    assert.deepEqual(crashes, []);
  });

  test(`${mode}: a record loaded from the store with a "__proto__" key changes nothing`, async (t) => {
    const store = new FaultyStore();
    const { server, serror } = await harness(t, { perMessage, store });
    const cookie = await server.login();
    const record = (await stored(server, cookie))!;
    store.putRaw(sidOf(cookie), { ...JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"isAdmin":true}}'), cookie: record.cookie, user: 'alice' });
    const client = await open(t, server, cookie);
    assert.deepEqual(await client.emitWithAck('peek'), { isAdmin: null, prototypeIntact: true, keys: ['user'] });
    assert.equal(await client.emitWithAck('inc'), 1);
    await server.sio.flush();
    assert.equal((await stored(server, cookie))?.counter, 1);
    assert.deepEqual(serror, []);
  });
}

test('per-message on a shared store: a record another process rewrites with the same cookie and keys named like the Session\'s own (methods, id, req, __proto__) is taken in as data only, and the cookie the handlers hold stays the Session\'s', async (t) => {
  // FaultyStore is not express-session's MemoryStore by name: the library treats it as shared and reloads before every event.
  const store = new FaultyStore();
  const { server, serror, crashes } = await harness(t, { perMessage: true, store });
  const cookie = await server.login();
  const client = await open(t, server, cookie);
  assert.equal(await client.emitWithAck('inc'), 1);
  await server.sio.flush();
  const before = (await stored(server, cookie))!;
  // Another process writes the session: same cookie (the load that follows keeps the Session's Cookie), new data and hostile names.
  const hostile = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"isAdmin":true},"save":1,"touch":"no","regenerate":null,"id":"forged","req":{},"theme":"dark"}');
  store.putRaw(sidOf(cookie), { ...hostile, cookie: before.cookie, user: 'alice', counter: 41 });
  assert.deepEqual(await client.emitWithAck('peek'), { isAdmin: null, prototypeIntact: true, keys: ['counter', 'theme', 'user'] });
  assert.equal(await client.emitWithAck('inc'), 42, 'the other process\'s counter was taken in');
  await server.sio.flush();
  const after = (await stored(server, cookie))!;
  assert.equal(after.counter, 42);
  assert.deepEqual(after.cookie, before.cookie, 'the cookie written back is the stored one');
  assert.deepEqual(Object.keys(after).filter((k) => ['__proto__', 'constructor', 'save', 'touch', 'regenerate', 'id', 'req'].includes(k)), []);
  // A cookie that changed in the store (HTTP gave it an expiry) is taken in as a new Cookie: its expiry is the store's.
  const extended = new Date(Date.now() + 3_600_000).toISOString();
  store.putRaw(sidOf(cookie), { ...after, cookie: { ...(after.cookie as Bag), expires: extended } });
  assert.equal(await client.emitWithAck('inc'), 43);
  await server.sio.flush();
  assert.equal(((await stored(server, cookie))!.cookie as Bag).expires, extended);
  // Any other field that changed in the store, or one express-session's Cookie does not have, is taken in as well; an
  // expiry stored in another form of the same time (a number) keeps the Cookie's.
  const current = (await stored(server, cookie))!;
  const same = Date.parse(extended);
  for (const [change, seen] of [
    [{ path: '/app' }, { path: '/app', sameSite: null, expires: extended }],
    [{ path: '/app', sameSite: 'strict' }, { path: '/app', sameSite: 'strict', expires: extended }],
    // (the same fields, the same time as a number: the Cookie is kept, its expiry still a Date)
    [{ path: '/app', sameSite: 'strict', expires: same }, { path: '/app', sameSite: 'strict', expires: extended }],
    [{ path: '/app', sameSite: 'strict', expires: new Date(same + 1000).toISOString() }, { path: '/app', sameSite: 'strict', expires: new Date(same + 1000).toISOString() }],
    [{ path: '/app', sameSite: 'lax', expires: new Date(same + 1000).toISOString() }, { path: '/app', sameSite: 'lax', expires: new Date(same + 1000).toISOString() }],
    [{ path: '/', expires: new Date(same + 2000).toISOString() }, { path: '/', sameSite: null, expires: new Date(same + 2000).toISOString() }],
    [{ path: '/', expires: null }, { path: '/', sameSite: null, expires: null }],
  ] as Array<[Bag, Bag]>) {
    store.putRaw(sidOf(cookie), { ...current, cookie: { ...(current.cookie as Bag), ...change } });
    assert.deepEqual(await client.emitWithAck('cookie-fields'), { ...seen, kind: 'function' }, `stored cookie changed by ${JSON.stringify(change)}`);
  }
  store.putRaw(sidOf(cookie), { ...current, cookie: { ...(current.cookie as Bag), expires: extended, unknownField: 1 } });
  assert.equal(await client.emitWithAck('cookie-kind'), 'function', 'a stored cookie with a field the Cookie does not know still loads');
  // A handler that puts a plain object with the same fields in the Cookie's place: the next load makes it a Cookie again.
  assert.equal(await client.emitWithAck('plain-cookie'), 'ok');
  assert.equal(await client.emitWithAck('cookie-kind'), 'function', 'the next event sees express-session\'s Cookie');
  assert.deepEqual(serror, []);
  assert.deepEqual(crashes, []);
});

/** A socket.io client spoken by hand over a WebSocket (engine.io v4 frames), to send frames no serialiser made. */
async function rawClient(t: T, server: TestServer, cookie: string) {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers: { cookie } });
  t.after(() => ws.close());
  const frames: string[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    const frame = data.toString();
    if (frame === '2') return ws.send('3'); // engine.io ping
    frames.push(frame);
    waiters.splice(0).forEach((wake) => wake());
  });
  /** The next frame starting with `prefix` (others before it are dropped). */
  const next = async (prefix: string): Promise<string> => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const at = frames.findIndex((f) => f.startsWith(prefix));
      if (at >= 0) return frames.splice(0, at + 1)[at];
      if (Date.now() > deadline) throw new Error(`no frame starting with ${prefix}; got ${frames.join(' | ').slice(0, 300)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100); // a poll: a frame wakes it sooner
      });
    }
  };
  await next('0{');
  ws.send('40');
  await next('40');
  return { send: (frame: string) => ws.send(frame), next };
}

for (const perMessage of [true, false]) {
  test(`${perMessage ? 'per-message' : 'per-connection'} (MemoryStore, whose loads are skipped): once saved, a Date, a Buffer, a Map, a class instance, undefined and NaN inside a value read back as their JSON, as HTTP and every other store give them; a plain value stays the object handlers hold`, async (t) => {
    const server = await startServer({ perMessage, saveDelay: 0 });
    t.after(() => server.close());
    class Point {
      constructor(readonly x: number) {}
    }
    const made = () => ({ when: new Date(0), buf: Buffer.from([1, 2]), map: new Map([[1, 2]]), point: new Point(3), inner: { gone: undefined, f() {}, n: NaN, list: [undefined, Infinity] } });
    let held: unknown;
    let heldList: unknown[] = [];
    server.sio.on('sconnection', (socket) => {
      const session = socket.session as unknown as Bag;
      socket.on('put', (ack: (r: string) => void) => {
        Object.assign(session, made(), { plain: { a: [1, { b: 'c' }] }, list: [new Date(0)] });
        held = session.plain;
        heldList = session.list as unknown[];
        ack('ok');
      });
      socket.on('push', (ack: (r: boolean) => void) => {
        heldList.push(2); // through a reference kept since 'put': the session's array still
        socket.session.touchedList = true; // (per-connection: a change to save)
        ack(session.list === heldList);
      });
      socket.on('look', (ack: (r: unknown) => void) =>
        ack({
          kinds: ['when', 'buf', 'map', 'point', 'inner'].map((key) => Object.prototype.toString.call(session[key]) + (session[key] instanceof Point ? ' Point' : '')),
          values: Object.fromEntries(['when', 'buf', 'map', 'point', 'inner'].map((key) => [key, session[key]])),
          sameObject: session.plain === held,
        }),
      );
    });
    const cookie = await server.login();
    const client = connectClient(server.url, cookie);
    t.after(() => client.close());
    await connected(client);
    assert.equal(await client.emitWithAck('put'), 'ok');
    await server.sio.flush();
    const seen = (await client.emitWithAck('look')) as { kinds: string[]; values: Bag; sameObject: boolean };
    // Before: on a MemoryStore the handlers went on seeing the Date, the Buffer... (no load replaced them), unlike HTTP.
    assert.deepEqual(seen.kinds, ['[object String]', '[object Object]', '[object Object]', '[object Object]', '[object Object]']);
    const json = JSON.parse(JSON.stringify(made())) as Bag;
    assert.deepEqual(seen.values, json);
    const http = await server.httpSession(cookie);
    assert.deepEqual(Object.fromEntries(['when', 'buf', 'map', 'point', 'inner'].map((key) => [key, http[key]])), json, 'what HTTP reads');
    assert.equal(seen.sameObject, true, 'a plain value is not replaced');
    if (!perMessage) {
      // Its Date became a string, the array stayed the one a per-connection handler holds across
      // events: what it pushes is saved. (Per-message handlers get what each event's load gives.)
      assert.equal(await client.emitWithAck('push'), true);
      await server.sio.flush();
      assert.deepEqual((await server.httpSession(cookie)).list, [new Date(0).toISOString(), 2]);
    }
  });
}

for (const perMessage of [true, false]) {
  test(`${perMessage ? 'per-message' : 'per-connection'}: a client's "cookie" key assigned into the session (Object.assign) never reaches the store: HTTP still reads the session and the user can log out`, async (t) => {
    const store = new FaultyStore();
    const { server, serror, crashes } = await harness(t, { perMessage, store, revalidateInterval: 100 }); // (revalidation touches the session: a whole-copy write in both modes)
    for (const bad of [{ maxAge: 'abc' }, 'x', null]) {
      const cookie = await server.login({ user: 'alice' });
      const client = await open(t, server, cookie);
      const answer = await client.emitWithAck('assign', { theme: 'dark', cookie: bad });
      if (perMessage) assert.deepEqual(answer, notStorable('cookie'), JSON.stringify(bad));
      assert.equal(await client.emitWithAck('inc'), 1);
      await server.sio.flush();
      const touches = store.calls.touch;
      await eventually(() => store.calls.touch > touches, 3000); // a revalidation's touch, which writes the whole copy
      // Before (per-message): the record held the client's cookie; express-session then answered 500 to every request of the session.
      const record = (await stored(server, cookie))!;
      assert.equal(typeof (record.cookie as Bag).originalMaxAge === 'object' || typeof (record.cookie as Bag).originalMaxAge === 'number', true, JSON.stringify(record.cookie));
      assert.equal((await server.httpSession(cookie)).counter, 1, 'HTTP reads the session');
      if (perMessage) assert.equal(record.theme, undefined, 'the refused event\'s changes are undone');
      await server.logout(cookie);
      assert.equal(await stored(server, cookie), null, 'logged out');
      client.close();
    }
    assert.equal(valueErrors(serror, 'cookie').length, perMessage ? 3 : 0);
    assert.deepEqual(crashes, []);
  });
}
