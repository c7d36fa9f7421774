// What can be stored in a session, found without recursion (invariant 8): the walk fails where
// JSON.stringify would throw or could run out of stack, and the change tracker never serialises
// what the walk refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonShaped, MAX_DEPTH, takeJsonForm, unstorable } from '../../src/server/storable.js';
import { ChangeTracker } from '../../src/server/tracker.js';
import { SessionValueError } from '../../src/errors.js';

type Bag = Record<string, any>;

function nested(levels: number, leaf: unknown = 1): Bag {
  const root: Bag = {};
  let at = root;
  for (let i = 1; i < levels; i++) at = at.a = {};
  at.a = leaf;
  return root;
}

test('JSON data, shared references, Dates, Buffers, toJSON and boxed primitives can be stored', () => {
  const shared = { x: 1 };
  const values = [1, 'a', null, true, undefined, () => 1, [1, [2, [3]]], { a: shared, b: shared }, new Date(0), Buffer.from('hi'), new Number(2), { toJSON: () => ({ ok: 1 }) }, 'x'.repeat(1_000_000), nested(MAX_DEPTH)];
  for (const value of values) assert.equal(unstorable(value), undefined, String(value).slice(0, 40));
  assert.doesNotThrow(() => JSON.stringify(nested(MAX_DEPTH)), 'what passes is what JSON.stringify takes');
});

test('what JSON.stringify throws on, or could overflow the stack on, cannot be stored', () => {
  const cycle: Bag = { list: [] };
  cycle.list.push(cycle);
  const cases: Array<[string, unknown, RegExp]> = [
    ['a BigInt', 10n, /BigInt/],
    ['a BigInt deep inside', { a: [{ b: 1n }] }, /BigInt/],
    ['a boxed BigInt', Object(1n), /BigInt/],
    ['a BigInt from toJSON', { toJSON: () => 1n }, /BigInt/],
    ['a cycle', cycle, /cycle/],
    ['one level too deep', nested(MAX_DEPTH + 1), /deeper than 1000/],
    ['a million levels (no recursion: no stack overflow here)', nested(1_000_000), /deeper/],
    ['a throwing getter', { get g() { throw new Error('boom'); } }, /threw \(boom\)/],
    ['a throwing toJSON', { toJSON() { throw new Error('no'); } }, /threw/],
    ['a proxy whose keys throw', new Proxy({}, { ownKeys() { throw new Error('keys'); } }), /threw/],
  ];
  for (const [name, value, problem] of cases) assert.match(unstorable(value) ?? 'storable', problem, name);
});

test('the tracker: a key that cannot be stored is left out of the save, reported once per value, and its stored value goes to whole copies', () => {
  const target: Bag = { a: 1, cookie: {} };
  const tracker = new ChangeTracker<Bag>(target);
  const session = tracker.proxy;
  session.big = 10n;
  session.a = 2;
  let taken = tracker.take();
  assert.deepEqual([...taken.now], [['a', '2']], 'the other key is saved');
  assert.deepEqual(taken.refused.map((e) => [e.key, e.code, e.reason]), [['big', 'EVENT_FAILED', 'not-storable']]);
  assert.deepEqual(tracker.storableCopy(), { a: 2, cookie: {} }, 'a copy for the store leaves it out');
  session.a = 3;
  taken = tracker.take();
  assert.deepEqual([...taken.now], [['a', '3']]);
  assert.deepEqual(taken.refused, [], 'the same value is not reported again');
  session.big = 11n;
  assert.equal(tracker.take().refused.length, 1, 'another bad value is news');
  session.big = 12;
  assert.deepEqual([...tracker.take().now], [['big', '12']], 'saved once storable');
});

test('the tracker: the running handler\'s bad key is found, and rollback puts the stored value back', () => {
  const target: Bag = { prefs: { theme: 'dark' } };
  const tracker = new ChangeTracker<Bag>(target);
  const session = tracker.proxy;
  tracker.begin(true);
  session.prefs = nested(MAX_DEPTH + 5);
  session.other = 1;
  const error = tracker.unstorableKey();
  assert.ok(error instanceof SessionValueError);
  assert.equal(error.key, 'prefs');
  tracker.rollback();
  tracker.end();
  assert.deepEqual(target, { prefs: { theme: 'dark' } });
  tracker.begin(true);
  session.me = session;
  assert.match(tracker.unstorableKey()?.problem ?? '', /the session itself/);
  tracker.rollback();
  tracker.end();
  assert.equal(Object.hasOwn(target, 'me'), false);
});

test('the tracker: names the session inherits are not data; its prototype cannot be changed', () => {
  class Session {
    touch() {
      return 'touched';
    }
  }
  const target = Object.assign(new Session(), { user: 'ann' }) as unknown as Bag;
  const tracker = new ChangeTracker<Bag>(target);
  const session = tracker.proxy;
  Object.assign(session, JSON.parse('{"__proto__":{"isAdmin":true},"constructor":1,"prototype":1,"touch":1,"theme":"dark"}'));
  assert.equal(Object.getPrototypeOf(target), Session.prototype);
  assert.equal(session.isAdmin, undefined);
  assert.equal(session.touch(), 'touched');
  assert.deepEqual(Object.keys(target), ['user', 'theme']);
  assert.throws(() => Object.setPrototypeOf(session, {}), SessionValueError);
  assert.throws(() => Object.freeze(session), SessionValueError);
  assert.deepEqual([...tracker.changes()], [['theme', '"dark"']]);
});

test('jsonShaped: true only for what reads back from its JSON unchanged', () => {
  for (const value of [{}, [], { a: [1, 'x', null, true, { b: -0.5 }] }, Object.create(null) as object]) assert.equal(jsonShaped(value), true, JSON.stringify(value));
  const changed: Array<[string, unknown]> = [
    ['a Date', { d: new Date(0) }],
    ['a Buffer', [Buffer.from([1])]],
    ['a Map', { m: new Map() }],
    ['a class instance', { p: new (class P {})() }],
    ['a boxed string', [Object('s')]],
    ['undefined in an object', { u: undefined }],
    ['undefined in an array', [undefined]],
    ['a function', { f() {} }],
    ['NaN', [NaN]],
    ['Infinity', { i: -Infinity }],
    ['a toJSON', { t: { toJSON: () => 1 } }],
  ];
  for (const [what, value] of changed) assert.equal(jsonShaped(value), false, what);
});

test('takeJsonForm: plain objects and arrays stay the same objects and hold what their JSON reads back as; a value that is none is left to be replaced', () => {
  const inner = { when: new Date(0), gone: undefined, f() {}, n: NaN, list: [undefined, new Map()] as unknown[] };
  const value = { inner, keep: [1, { a: 'b' }] };
  const keep = value.keep;
  assert.equal(takeJsonForm(value, JSON.parse(JSON.stringify(value))), true);
  assert.equal(value.inner, inner);
  assert.equal(value.keep, keep);
  assert.deepEqual(value, { inner: { when: new Date(0).toISOString(), n: null, list: [null, {}] }, keep: [1, { a: 'b' }] });
  assert.equal(takeJsonForm(new Date(0), new Date(0).toISOString()), false);
  assert.equal(takeJsonForm(new Map(), {}), false);
});
