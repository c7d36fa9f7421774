import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { decideInvalid, reconnectDelay, recentReloads } from '../../src/client/invalid-policy.js';

// Node has no sessionStorage; this Map-backed stand-in has the same API (the real one is used in test/browser).
const backing = new Map<string, string>();
(globalThis as { sessionStorage?: unknown }).sessionStorage = {
  getItem: (k: string) => backing.get(k) ?? null,
  setItem: (k: string, v: string) => void backing.set(k, String(v)),
  removeItem: (k: string) => void backing.delete(k),
};
beforeEach(() => backing.clear());
// Nor a page to reload: a `location` with `reload`, as a browser's (the SDK reloads only where there is one).
const page = { reload: () => {} };
(globalThis as { location?: unknown }).location = page;

const base = { _fromConnected: false, _onInvalid: 'reload' as const, _maxReloads: 2, _reloadWindow: 60_000 };

test('the first invalid answer after a good connection reconnects once', () => {
  assert.equal(decideInvalid({ ...base, _streak: 1 }), 'reconnect');
  assert.deepEqual(recentReloads(60_000, Date.now()), []);
});

test('a session that ended mid-connection gets one more, later reconnect (a login response may be in flight)', () => {
  assert.equal(decideInvalid({ ...base, _streak: 2, _fromConnected: true }), 'reconnect');
  assert.equal(decideInvalid({ ...base, _streak: 3, _fromConnected: true }), 'reload');
  assert.equal(reconnectDelay(1, false), 0);
  assert.ok(reconnectDelay(1, true) > 0 && reconnectDelay(2, true) > reconnectDelay(1, true));
});

test('still invalid: reloads at most maxReloads times in the window, then stops', () => {
  assert.equal(decideInvalid({ ...base, _streak: 2 }), 'reload');
  assert.equal(decideInvalid({ ...base, _streak: 2 }), 'reload');
  assert.equal(decideInvalid({ ...base, _streak: 2 }), 'stop');
  assert.equal(recentReloads(60_000, Date.now()).length, 2);
});

test('reloads older than the window are forgotten', () => {
  backing.set('socket.io-sessions:reloads', JSON.stringify([Date.now() - 120_000, Date.now() - 90_000]));
  assert.equal(decideInvalid({ ...base, _streak: 2 }), 'reload');
});

test("'none', a handler, and no page to reload", () => {
  assert.equal(decideInvalid({ ...base, _streak: 2, _onInvalid: 'none' }), 'stop');
  assert.equal(decideInvalid({ ...base, _streak: 2, _onInvalid: () => {} }), 'handler');
  delete (globalThis as { location?: unknown }).location;
  try {
    assert.equal(decideInvalid({ ...base, _streak: 2 }), 'stop', 'no location (Node, a worker)');
    (globalThis as { location?: unknown }).location = {};
    assert.equal(decideInvalid({ ...base, _streak: 2 }), 'stop', 'a location without reload');
  } finally {
    (globalThis as { location?: unknown }).location = page;
  }
  assert.equal(recentReloads(60_000, Date.now()).length, 0, 'no reload counted where none can happen');
});

test('a corrupt or unwritable sessionStorage never leads to an endless reload loop', () => {
  backing.set('socket.io-sessions:reloads', '{not json');
  assert.equal(decideInvalid({ ...base, _streak: 2 }), 'reload');
  const storage = (globalThis as { sessionStorage: { setItem: unknown } }).sessionStorage;
  const setItem = storage.setItem;
  storage.setItem = () => {
    throw new Error('QuotaExceededError');
  };
  try {
    assert.equal(decideInvalid({ ...base, _streak: 2 }), 'stop');
  } finally {
    storage.setItem = setItem;
  }
});
