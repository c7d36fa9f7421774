import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'cookie-signature';
import { unsignSessionCookie } from '../../src/server/session-id.js';
import { originAllowed } from '../../src/server/origin.js';
import { sessionTag } from '../../src/server/invalidation.js';
import { DestroyedSet } from '../../src/server/destroyed-set.js';
import { WritesInFlight } from '../../src/server/writes-in-flight.js';
import { NO_MARK, StoreHub } from '../../src/server/store.js';
import { LiveSessions, type Live, type LiveRecord } from '../../src/server/live-sessions.js';
import { RetiredCopies } from '../../src/server/retired-copies.js';
import { LateCopies } from '../../src/server/runtime/copies.js';
import { fakeClock } from '../helpers/fake-clock.js';
import { eventually } from '../helpers/servers.js';
import { MemoryStore } from 'express-session';
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

test('session cookies unsign with any secret of the rotation list, and nothing else', () => {
  const value = `s:${sign('abc', 'old')}`;
  assert.equal(unsignSessionCookie(value, ['new', 'old']), 'abc');
  assert.equal(unsignSessionCookie(value, ['new']), false);
  assert.equal(unsignSessionCookie('abc', ['old']), false, 'unsigned values are refused');
  assert.equal(unsignSessionCookie(`${value}x`, ['old']), false, 'tampered signatures are refused');
});

const req = (origin: string | undefined, host = 'app.example:3000') => ({ headers: { origin, host } }) as unknown as IncomingMessage;

test('origin: same scheme, host and port by default, allowlist or function when given, absent Origin allowed', () => {
  assert.equal(originAllowed(req('http://app.example:3000'), {}), true);
  assert.equal(originAllowed(req('https://app.example:3000'), {}), false, 'the scheme counts');
  assert.equal(originAllowed(req('HTTP://APP.example:3000'), {}), true, 'compared as origins, not strings');
  assert.equal(originAllowed(req('http://evil.example'), {}), false);
  assert.equal(originAllowed(req('null'), {}), false);
  assert.equal(originAllowed(req(undefined), {}), true);
  assert.equal(originAllowed(req('http://evil.example'), { origins: ['http://evil.example'] }), true);
  assert.equal(originAllowed(req('http://app.example:3000'), { origins: ['https://other.example'] }), false);
  assert.equal(originAllowed(req('http://x'), { origins: (o) => o === 'http://x' }), true);
});

/** A destroyed set with its writes-in-flight tracker, on an injected clock. */
function guard(keepMs?: number, raceWindowMs?: number, now?: () => number, maxStones?: number) {
  const writes = new WritesInFlight(raceWindowMs, keepMs, now);
  return { writes, destroyed: new DestroyedSet(writes, keepMs, now, maxStones) };
}

test('destroyed set: kept for keepMs on an injected clock; tags never show the raw id', () => {
  let now = 0;
  const { destroyed: t } = guard(1000, 0, () => now);
  t.destroying('s1');
  t.destroyed('s1', true);
  now = 500;
  t.destroying('s2');
  t.destroyed('s2', true);
  assert.equal(t.has('s1'), true);
  now = 1400;
  t.destroying('s3');
  assert.equal(t.has('s1'), false, 'older than keepMs: forgotten');
  assert.equal(t.has('s2'), true);
  assert.ok(!sessionTag('secret-id').includes('secret-id'));
  assert.equal(sessionTag('a'), sessionTag('a'));
});

test('destroyed set: a flood of logouts holds at most maxStones, forgetting the oldest first', () => {
  const { destroyed: t } = guard(60_000, 0, () => 0, 1000);
  for (let i = 0; i < 5000; i++) {
    t.destroying(`r${i}`);
    t.destroyed(`r${i}`, true);
  }
  assert.ok(t.size <= 1000, `${t.size} remembered`);
  assert.equal(t.has('r0'), false, 'the oldest forgotten');
  assert.equal(t.has('r4999'), true, 'the newest kept');
  assert.equal(t.has('r4001'), true);
});

test('destroyed set: a failed destroy forgets its tombstone; a confirmed one stays', () => {
  const { destroyed: t } = guard();
  t.destroying('r');
  assert.equal(t.has('r'), true, 'writes are dropped from the moment a destroy starts');
  t.destroyed('r', false);
  assert.equal(t.has('r'), false);
  t.destroying('r');
  t.destroyed('r', true);
  t.destroying('r');
  t.destroyed('r', false);
  assert.equal(t.has('r'), true);
});

test('destroyed set: writes that raced a destroy make exactly one more destroy, after the last of them', () => {
  const { writes, destroyed: t } = guard();
  const ended = (tag: string, g = { writes, destroyed: t }) => {
    g.writes.ended(tag);
    return g.destroyed.writeEnded(tag);
  };
  writes.started('r', 'sid');
  writes.started('r', 'sid');
  t.destroying('r');
  assert.equal(t.destroyed('r', true), false, 'writes still under way: not yet');
  assert.equal(ended('r'), false, 'one write still under way');
  assert.equal(ended('r'), true, 'the last racing write ended: destroy once more');
  assert.equal(ended('r'), false, 'never twice');
  const quiet = guard();
  quiet.writes.started('q', 'sid');
  ended('q', quiet);
  quiet.destroyed.destroying('q');
  assert.equal(quiet.destroyed.destroyed('q', true), false, 'a write that ended before the destroy did not race it');
});

test("destroyed set: another node's destroy repeats once for a write of ours within the race window", () => {
  let now = 0;
  const { writes, destroyed: t } = guard(60_000, 5000, () => now);
  writes.started('r', 'sid-r');
  now = 10;
  writes.ended('r');
  now = 3000;
  assert.equal(t.remote('r'), 'sid-r', 'our write may have landed after their destroy');
  assert.equal(t.remote('r'), undefined, 'once');
  writes.started('old', 'sid-old');
  writes.ended('old');
  now = 20_000;
  assert.equal(t.remote('old'), undefined, 'outside the race window: no repeat');
  writes.started('live', 'sid-live');
  assert.equal(t.remote('live'), undefined, 'under way: repeated when it ends');
  writes.ended('live');
  assert.equal(t.writeEnded('live'), true);
  assert.equal(guard(60_000, 0, () => now).writes.size, 0);
});

test('writes in flight and the destroyed set: memory stays bounded by the race window and keepMs', () => {
  let now = 0;
  const { writes, destroyed: t } = guard(1000, 100, () => now);
  for (let i = 0; i < 10_000; i++) {
    now = i;
    writes.started(`w${i}`, `sid${i}`);
    writes.ended(`w${i}`);
    t.writeEnded(`w${i}`);
    t.destroying(`d${i}`);
    t.destroyed(`d${i}`, true);
  }
  assert.ok(writes.size <= 102, `writes remembered: ${writes.size}`);
  assert.ok(t.size <= 1002, `tombstones: ${t.size}`);
});

test('store hub: a write of ours is answered with whether it ran alone (an explicit token, not a count of version bumps)', async () => {
  const store = new MemoryStore();
  const hub = StoreHub.acquire(store);
  try {
    const record = { cookie: { originalMaxAge: 60_000 }, n: 1 } as never;
    const appSet = (sid: string) => new Promise<void>((resolve) => store.set(sid, record, () => resolve()));
    // A session loaded here: its record in the hub's registry (a runtime, in the library) holds the copy.
    const loaded = { sid: 's1', entry: { sid: 's1', tag: sessionTag('s1') }, mark: NO_MARK };
    hub.live.add(loaded);
    hub.live.fresh(loaded);
    const alone = await hub.write('s1', record, 1000);
    assert.ok(alone !== 'destroyed' && alone.current !== undefined, 'alone: the store holds what we wrote');
    assert.equal(hub.live.unchangedSince('s1', alone.current), true);

    // (MemoryStore calls back on a later turn: an app write started now runs while ours is under way.)
    const ours = hub.write('s1', record, 1000);
    await appSet('s1');
    const overlapped = await ours;
    assert.ok(overlapped !== 'destroyed' && overlapped.current === undefined, 'an app write during ours: not alone');
    assert.equal(hub.live.unchangedSince('s1', alone.current), false, 'writes since the mark are seen');

    const earlier = appSet('s1');
    const after = await hub.write('s1', record, 1000);
    await earlier;
    assert.ok(after !== 'destroyed' && after.current === undefined, 'an app write under way when ours started: not alone');

    // A wrapper installed after ours that defers the call: the token is not taken, the write counts as overlapped (safe).
    const wrapped = store.set;
    store.set = function (this: unknown, ...args: unknown[]) {
      setImmediate(() => (wrapped as (...a: unknown[]) => void).apply(this, args));
    } as typeof store.set;
    const deferred = await hub.write('s1', record, 1000);
    store.set = wrapped;
    assert.ok(deferred !== 'destroyed' && deferred.current === undefined, 'token not taken: never taken as alone');

    const untracked = await hub.write('s2', record, 1000);
    assert.ok(untracked !== 'destroyed' && untracked.current === undefined, 'a session not loaded here has no mark');
    await new Promise<void>((resolve) => store.destroy('s1', () => resolve()));
    assert.equal(await hub.write('s1', record, 1000), 'destroyed');
  } finally {
    hub.release();
  }
});

// A read is answered in the store's own callback (no promise on the event path, docs/architecture.md "The path of a
// per-message event"): a value that throws when looked at must fail the read, never the store's code.
test('store hub: a stored value that throws when read is a typed store-error, and the store never sees the throw', async () => {
  const store = new MemoryStore();
  let thrownIntoStore: unknown;
  store.get = (_sid, cb) =>
    setImmediate(() => {
      const hostile = Object.defineProperty({}, 'cookie', { get: () => { throw new Error('boom'); } });
      try {
        cb(null, hostile as never);
      } catch (err) {
        thrownIntoStore = err;
      }
    });
  const hub = StoreHub.acquire(store);
  try {
    await assert.rejects(hub.read('s1', 1000), (err: Error & { reason?: string }) => err.name === 'SessionUnavailableError' && err.reason === 'store-error');
    assert.equal(thrownIntoStore, undefined);
  } finally {
    hub.release();
  }
});

test('store hub: a store that calls back before its method returned is heard after the call returned, once; a caller that throws in the store\'s callback never throws into the store', async () => {
  const store = new MemoryStore();
  const record = { cookie: { originalMaxAge: 60_000 }, n: 1 };
  // A store that answers at once, in the call, and twice (a buggy one).
  store.get = (_sid, cb) => {
    cb(null, record as never);
    cb(null, null);
  };
  const hub = StoreHub.acquire(store);
  try {
    const heard: unknown[] = [];
    hub.readThen('s1', 1000, (err, loaded) => heard.push(err ?? loaded));
    assert.deepEqual(heard, [], 'not heard inside readThen (the caller may still be setting up, as after a promise)');
    await Promise.resolve();
    assert.deepEqual(heard, [{ record }], 'heard once, the first answer');

    // The caller's own failure, inside a store's callback: the store must not see it (it would call back
    // again, unheard); it is thrown on its own, as an unhandled rejection of an awaited call would be.
    let thrownIntoStore: unknown;
    store.get = (_sid, cb) =>
      setImmediate(() => {
        try {
          cb(null, record as never);
        } catch (err) {
          thrownIntoStore = err;
        }
      });
    // (Intercepted for this test only: the runner's own handler would report it as this test's failure.)
    const runners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    let rethrown: unknown;
    const onUncaught = (err: unknown) => (rethrown = err);
    process.on('uncaughtException', onUncaught);
    try {
      hub.readThen('s1', 1000, () => {
        throw new Error('the caller failed');
      });
      await eventually(() => rethrown !== undefined || thrownIntoStore !== undefined, 2000);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const listener of runners) process.on('uncaughtException', listener);
    }
    assert.equal(thrownIntoStore, undefined, 'the store never sees the caller\'s throw');
    assert.equal((rethrown as Error | undefined)?.message, 'the caller failed');
  } finally {
    hub.release();
  }
});

test('store hub: an ended store call holds no answer: a record read and dropped can be collected while the call waits out its deadline', async () => {
  // (A garbage collection forced here: what is measured is whether anything of ours still holds the record.)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const store = new MemoryStore();
  const cart = Array.from({ length: 200 }, (_, i) => ({ sku: `A${i}`, qty: 1 }));
  await new Promise<void>((resolve, reject) => store.set('s1', { cookie: { originalMaxAge: 60_000 }, cart } as never, (err) => (err ? reject(err) : resolve())));
  const hub = StoreHub.acquire(store);
  try {
    const held = await (async () => {
      const loaded = await hub.read('s1', 60_000);
      assert.ok('record' in loaded);
      return new WeakRef(loaded.record);
    })();
    // The read ended long before its 60 s deadline: one store read per event must not keep records that long.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(held.deref(), undefined, 'the record read is not held by the ended call');
  } finally {
    hub.release();
  }
});

test("live sessions: another node's destroy notice finds the loaded session by its tag without reading any other session (built at the first notice, kept as copies load, retire and leave)", () => {
  const live = new LiveSessions<LiveRecord & { entry: Live | undefined }>();
  let reads = 0;
  const copy = (sid: string): Live => ({
    sid,
    get tag() {
      reads += 1;
      return `tag-of-${sid}`;
    },
  });
  const records = Array.from({ length: 1000 }, (_, i) => ({ sid: `s${i}`, entry: copy(`s${i}`) as Live | undefined, mark: NO_MARK }));
  for (const record of records) {
    live.add(record);
    live.fresh(record);
  }
  assert.equal(reads, 0, 'a single node never reads a tag for the index');
  assert.equal(live.byTag('tag-of-s7')?.sid, 's7');
  reads = 0;
  assert.equal(live.byTag('tag-of-s990')?.sid, 's990');
  assert.equal(reads, 1, 'only the session asked about');
  assert.equal(live.byTag('tag-of-nobody'), undefined);
  // A copy loaded later is found; one retired (no copy) and one gone from the registry are not.
  const later = { sid: 'later', entry: copy('later') as Live | undefined, mark: NO_MARK };
  live.add(later);
  live.fresh(later);
  assert.equal(live.byTag('tag-of-later')?.sid, 'later');
  records[1]!.entry = undefined;
  assert.equal(live.byTag('tag-of-s1'), undefined);
  live.remove(records[2]!);
  assert.equal(live.byTag('tag-of-s2'), undefined);
  // Loaded again with a new runtime (a new record for the id): found through the new one.
  const again = { sid: 's2', entry: copy('s2') as Live | undefined, mark: NO_MARK };
  live.add(again);
  live.fresh(again);
  assert.equal(live.byTag('tag-of-s2'), again.entry);
  live.remove(records[2]!); // the old record once more: nothing of the new one is dropped
  assert.equal(live.byTag('tag-of-s2'), again.entry);
});

test('retired copies: a read begun before a retirement of its session is told so; each is forgotten keepMs after it retired by one sweep armed for the oldest, also when no retirement follows (before: only at the next one)', () => {
  const clock = fakeClock();
  const copies = new RetiredCopies(120_000, () => clock.now, clock.schedule);
  const before = copies.mark();
  for (let i = 0; i < 1000; i++) {
    clock.now = i;
    copies.retired(`s${i}`);
  }
  const after = copies.mark();
  assert.equal(copies.retiredSince('s5', before), true, 'read before it retired');
  assert.equal(copies.retiredSince('s5', after), false, 'read after');
  assert.equal(copies.retiredSince('never', before), false);
  copies.retired('s0'); // retired again, later: kept from now on
  clock.advance(120_000 + 499);
  assert.equal(copies.size, 501, 's500..s999 and s0 are kept');
  assert.equal(copies.retiredSince('s0', before), true);
  clock.advance(121_000 + 999);
  assert.equal(copies.size, 0, 'all forgotten, with no retirement since');
  assert.equal(clock.mostArmed, 1, 'one sweep armed at a time');
  assert.equal(clock.timers.length, 0, 'nothing armed once nothing is held');
});

test("late copies: a request's session finds its own copies without reading any other's session id, and nothing is left of a session once its copies are gone", () => {
  let reads = 0;
  const copy = (sid: string) => ({
    get sid() {
      reads += 1;
      return sid;
    },
  });
  const copies = new LateCopies<ReturnType<typeof copy>, number>();
  const others = Array.from({ length: 1000 }, (_, i) => copy(`other${i}`));
  others.forEach((other, i) => copies.set(other, i));
  const mine = [copy('mine'), copy('mine')];
  mine.forEach((each, i) => copies.set(each, 1000 + i));
  reads = 0;
  assert.deepEqual(copies.of('mine'), mine);
  assert.equal(reads, 0, 'no copy of another session is looked at');
  assert.deepEqual(copies.of('nobody'), []);
  assert.equal(copies.size, 1002);
  // Gone one by one: the session's index entry goes with its last copy; a second delete is a no-op.
  assert.equal(copies.delete(mine[0]!), true);
  assert.deepEqual(copies.of('mine'), [mine[1]]);
  assert.equal(copies.delete(mine[0]!), false);
  copies.delete(mine[1]!);
  assert.deepEqual(copies.of('mine'), []);
  for (const other of others) copies.delete(other);
  assert.deepEqual({ size: copies.size, sessions: copies.sessions }, { size: 0, sessions: 0 });
});
