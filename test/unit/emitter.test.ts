/**
 * The SDK's own emitter (src/client/emitter.ts), behind `socket.sessions.on/once` and the tabs'
 * socket surface: what an app relies on from an emitter, which eventemitter3 gave before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionEventEmitter } from '../../src/client/index.js';

test('on/once/off/emit/removeAllListeners: once runs once and can be removed by its listener; removing during an emit does not skip the others', () => {
  const events = new SessionEventEmitter();
  const seen: string[] = [];
  const a = (x: string) => seen.push(`a${x}`);
  const b = (x: string) => (seen.push(`b${x}`), events.off('e', c));
  const c = (x: string) => seen.push(`c${x}`);
  events.on('e', a).on('e', b).on('e', c);
  assert.equal(events.emit('e', '1'), true);
  events.emit('e', '2');
  assert.deepEqual(seen, ['a1', 'b1', 'c1', 'a2', 'b2'], 'c removed by b during emit 1 still ran in emit 1, not in emit 2');

  const once: string[] = [];
  const listener = (x: string) => once.push(x);
  events.once('o', listener);
  events.emit('o', 'x');
  events.emit('o', 'y');
  events.once('o', listener);
  events.off('o', listener);
  events.emit('o', 'z');
  assert.deepEqual(once, ['x'], 'once ran once; off(event, listener) removes a once listener');

  const proto: unknown[] = [];
  events.on('__proto__', (v: unknown) => proto.push(v));
  events.emit('__proto__', 1);
  assert.deepEqual(proto, [1], 'any event name, __proto__ included');
  events.off('e');
  assert.equal(events.emit('e', '3'), false, 'off(event) without a listener removes them all');
  events.removeAllListeners();
  assert.equal(events.emit('__proto__', 2), false);
  assert.deepEqual(proto, [1]);
});
