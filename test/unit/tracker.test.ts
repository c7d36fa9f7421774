// Change tracking: a handler's changes are found by looking only at the keys it touched, and can be
// undone (a throwing handler) to the stored state or to the start of the handler (in a batch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeTracker } from '../../src/server/tracker.js';

type Session = Record<string, any>;

function tracked(data: Session) {
  const target: Session = structuredClone(data);
  const tracker = new ChangeTracker<Session>(target);
  return { target, tracker, session: tracker.proxy };
}

test('keys a handler assigned, deleted or changed in place are changes; untouched keys are never serialised', () => {
  let serialised = 0;
  const target: Session = { counter: 1, name: 'a', gone: true, cart: { toJSON: () => (serialised++, ['big']) } };
  const tracker = new ChangeTracker<Session>(target);
  const session = tracker.proxy; // the handler never touches `cart`
  session.counter = 2;
  delete session.gone;
  session.name = 'a'; // same value: not a change
  session.added = { x: 1 };
  assert.deepEqual([...tracker.changes()], [['counter', '2'], ['gone', undefined], ['added', '{"x":1}']]);
  assert.equal(serialised, 0, 'the untouched key was never serialised');
});

test('an object read through the session is watched for in-place changes from then on', () => {
  const { tracker, session } = tracked({ cart: { items: [1] }, other: { a: 1 } });
  const cart = session.cart;
  assert.equal(tracker.changes().size, 0, 'reading changes nothing');
  cart.items.push(2);
  assert.deepEqual([...tracker.changes().keys()], ['cart']);
  tracker.take();
  cart.items.push(3); // through a reference kept across saves
  assert.deepEqual([...tracker.changes().keys()], ['cart'], 'still watched after a save');
});

test('take() makes the changes the stored state; restore() undoes that when the write failed', () => {
  const { tracker, session } = tracked({ a: 1 });
  session.a = 2;
  const taken = tracker.take();
  assert.deepEqual([...taken.now], [['a', '2']]);
  assert.equal(tracker.changes().size, 0, 'after a save nothing is pending');
  session.a = 3; // changed while the write was under way
  assert.deepEqual([...tracker.changes()], [['a', '3']]);
  tracker.restore(taken);
  assert.deepEqual([...tracker.changes()], [['a', '3']], 'the store still holds 1: 3 is a change');
  session.a = 1;
  assert.equal(tracker.changes().size, 0);
});

test('rollback() undoes the running handler: to the stored state, or to its checkpoint in a batch', () => {
  const { tracker, session, target } = tracked({ a: 1, list: [1] });
  tracker.begin(true);
  session.a = 2;
  session.list.push(2);
  tracker.rollback();
  tracker.end();
  assert.deepEqual(target, { a: 1, list: [1] });
  // A batch: the second handler's changes go, the first one's stay.
  tracker.begin(true);
  session.a = 5;
  const list = session.list;
  list.push(7);
  tracker.end();
  tracker.begin(false);
  session.a = 6;
  list.push(8); // in place, through a reference taken by the first handler
  session.b = 'new';
  tracker.rollback();
  tracker.end();
  assert.deepEqual(target, { a: 5, list: [1, 7] });
  assert.deepEqual([...tracker.changes().keys()].sort(), ['a', 'list'], 'the first handler is still to be saved');
});

test("rollback() of a unit's first handler keeps what was changed outside a handler since the last save (assigned, or changed in place through a reference read outside); take() ends that", () => {
  const { tracker, session } = tracked({ counter: 1, cart: { items: [1] }, name: 'a' });
  session.name = 'outside'; // a per-connection socket's handler, an sconnection listener
  session.cart.items.push(2); // in place, through a reference read outside a handler
  tracker.begin(true);
  session.counter = 2;
  session.name = 'handler';
  session.cart.items.push(3);
  tracker.rollback();
  tracker.end();
  assert.deepEqual(structuredClone({ ...session }), { counter: 1, cart: { items: [1, 2] }, name: 'outside' }, 'back to where the handler began');
  assert.deepEqual(Object.fromEntries(tracker.take().now), { cart: '{"items":[1,2]}', name: '"outside"' }, 'still changes to save');
  tracker.begin(true); // saved: the next failing handler undoes to the stored state again
  session.name = 'handler';
  tracker.rollback();
  tracker.end();
  assert.equal(session.name, 'outside');
});

test('rebase(): keys taken from the store are fresh; keys changed here stay changes against the store', () => {
  const { tracker, session, target } = tracked({ a: 1, b: { x: 1 } });
  session.a = 2;
  void session.b; // exposed
  target.b = { x: 9 }; // the store's newer value moved in
  target.c = 'http';
  tracker.rebase(['b', 'c'], new Map([['a', '7']])); // the store has a = 7; ours (2) is unsaved
  assert.deepEqual([...tracker.changes()], [['a', '2']]);
});

test('a handler given up on: objects it read are detached, and what is assigned outside a handler until it settles is undone', () => {
  const { tracker, session } = tracked({ counter: 1, prefs: { theme: 'dark' } });
  // The handler runs, reads an object, changes a key, and is given up on.
  tracker.begin(true);
  const prefs = session.prefs;
  session.counter = 99;
  tracker.rollback();
  tracker.end();
  tracker.abandon();
  assert.equal(session.counter, 1);
  // A later handler writes a key and its unit saves it.
  tracker.begin(true);
  session.counter = 2;
  tracker.end();
  assert.deepEqual([...tracker.take().now], [['counter', '2']]);
  // The given-up handler goes on: in place, and by assignment outside any handler.
  prefs.theme = 'late';
  session.counter = 1000;
  session.late = true;
  tracker.settledAbandoned();
  assert.deepEqual({ ...session }, { counter: 2, prefs: { theme: 'dark' } }, 'back to what was saved');
  assert.equal(tracker.changes().size, 0);
  // Once none is pending, assignments outside handlers are changes again (per-connection saves them).
  session.counter = 3;
  tracker.settledAbandoned(); // a second settle of nothing pending is harmless
  assert.deepEqual([...tracker.changes()], [['counter', '3']]);
});

test('a given-up handler that settles while another handler runs: its assignments count as that handler\'s', () => {
  const { tracker, session } = tracked({ a: 1 });
  tracker.begin(true);
  tracker.end();
  tracker.abandon();
  tracker.begin(true);
  session.a = 2; // the rogue, while another handler runs: indistinguishable
  tracker.settledAbandoned();
  tracker.end();
  assert.deepEqual([...tracker.changes()], [['a', '2']]);
});

test('giving up a handler after an earlier handler of its batch deleted a key it had read', () => {
  const { tracker, session } = tracked({ cart: { items: [1] }, n: 1 });
  tracker.begin(true);
  void session.cart; // exposed
  delete session.cart;
  tracker.end();
  tracker.begin(false);
  session.n = 2;
  tracker.rollback();
  tracker.end();
  tracker.abandon();
  assert.deepEqual({ ...session }, { n: 1 }, 'the first handler\'s delete stays, the second\'s change is undone');
  assert.deepEqual([...tracker.changes()], [['cart', undefined]]);
});

test('a given-up handler settling while a per-connection socket shares the session: assignments outside handlers are kept (they may be that socket\'s)', () => {
  const { tracker, session } = tracked({ a: 1 });
  tracker.begin(true);
  tracker.end();
  tracker.abandon();
  session.a = 2; // a per-connection handler (no unit) or the given-up one: cannot be told apart
  tracker.settledAbandoned(false);
  assert.deepEqual([...tracker.changes()], [['a', '2']]);
});

// Values are read and loaded without descriptors while the session holds only plain values (docs/architecture.md,
// invariant 8): once the app defines anything else, no getter of its runs and no loaded value is refused.
test('after the app defines an accessor, a fixed key or its own `cookie`, copies run no getter and loads still land', () => {
  let reads = 0;
  const { target, tracker, session } = tracked({ cookie: { path: '/' }, a: 1 });
  Object.defineProperty(session, 'cookie', { get: () => (reads++, { path: '/x' }), enumerable: true, configurable: true });
  Object.defineProperty(session, 'fixed', { enumerable: true }); // no value, not writable
  assert.deepEqual(tracker.storableCopy(), { cookie: undefined, a: 1, fixed: undefined });
  assert.equal(reads, 0, 'the copy ran no getter');
  tracker.load('cookie', { path: '/' });
  tracker.load('fixed', 2); // an assignment would be refused (and throw: modules are strict)
  tracker.load('a', 1);
  assert.deepEqual({ ...target }, { cookie: { path: '/' }, a: 1, fixed: 2 });
  assert.equal(reads, 0);
});

test('a loaded value lands as a plain enumerable value, also over a key the app made non-enumerable', () => {
  const { target, tracker, session } = tracked({ a: 1 });
  Object.defineProperty(session, 'hidden', { value: 1, enumerable: false });
  tracker.load('hidden', 2);
  tracker.load('fresh', 3);
  assert.deepEqual(Object.keys(target), ['a', 'hidden', 'fresh']);
  assert.deepEqual(tracker.storableCopy(), { a: 1, hidden: 2, fresh: 3 });
});

test('the whole copy holds what Object.keys lists: a symbol the app set stays out, a value that cannot be stored gives way to its stored one', () => {
  const { tracker, session } = tracked({ a: 1, bad: 2 });
  (session as Record<symbol, unknown>)[Symbol.for('app')] = 'x';
  session.bad = 10n;
  assert.deepEqual(tracker.storableCopy(), { a: 1, bad: 2 });
  assert.equal(Object.getOwnPropertySymbols(tracker.storableCopy()).length, 0);
  const plain = tracked({ a: 1, bad: 2 });
  plain.session.bad = 10n;
  plain.session.gone = 10n; // never stored: left out
  assert.deepEqual(plain.tracker.storableCopy(), { a: 1, bad: 2 });
});
