// The revalidation wheel on a fake clock: each member runs once per interval, a full interval
// after it joined; one timer for all, and none while empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Wheel, type Timers } from '../../src/server/wheel.js';

function fakeTimers() {
  let now = 0;
  const intervals = new Map<number, { fn: () => void; ms: number; next: number }>();
  let id = 0;
  const timers: Timers = {
    setInterval: (fn, ms) => (intervals.set(++id, { fn, ms, next: now + ms }), id),
    clearInterval: (handle) => void intervals.delete(handle as number),
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = [...intervals.values()].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      now = due.next;
      due.next += due.ms;
      due.fn();
    }
    now = end;
  };
  return { timers, advance, get now() { return now; }, get running() { return intervals.size; } };
}

test('each member runs once per interval, first one interval after it joined; one timer, stopped when empty', () => {
  const clock = fakeTimers();
  const runs: Array<[string, number]> = [];
  const wheel = new Wheel<string>(1000, (m) => runs.push([m, clock.now]), 4, clock.timers);
  assert.equal(clock.running, 0);
  wheel.add('a');
  clock.advance(500);
  wheel.add('b');
  assert.equal(clock.running, 1, 'one timer for all members');
  clock.advance(2500);
  assert.deepEqual(runs, [['a', 1000], ['b', 1500], ['a', 2000], ['b', 2500], ['a', 3000]]);
  wheel.remove('a');
  wheel.remove('b');
  assert.equal(clock.running, 0, 'no timer while empty');
  clock.advance(5000);
  assert.equal(runs.length, 5);
});
