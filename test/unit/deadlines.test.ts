// The deadlines of store calls (invariant 5 of docs/architecture.md), on an injected clock and
// timer: every wait still expires at its deadline, and calls that answer in time cost no timer each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines, type Expiring } from '../../src/server/deadlines.js';
import type { Schedule } from '../../src/server/sweep.js';

/** A fake clock and timer: `advance(ms)` runs what is due, in order. */
function fakeTime() {
  let now = 0;
  let armed = 0;
  const timers = new Set<{ at: number; run: () => void }>();
  const schedule: Schedule = (ms, run) => {
    armed++;
    const timer = { at: now + ms, run };
    timers.add(timer);
    return () => timers.delete(timer);
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = [...timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers.delete(due);
      now = due.at;
      due.run();
    }
    now = end;
  };
  return { now: () => now, schedule, advance, armed: () => armed, timers: () => timers.size };
}

const waitFor = (time: { now(): number }, ms: number, expired: number[]): Expiring => {
  const wait: Expiring = { deadline: time.now() + ms, expire: () => expired.push(time.now()) };
  return wait;
};

test('deadlines: each wait expires at its own deadline, whenever it was added, and not before', () => {
  const time = fakeTime();
  const deadlines = new Deadlines(time.now, time.schedule);
  const expired: number[] = [];
  const first = waitFor(time, 100, expired);
  deadlines.add(first);
  deadlines.delete(first); // answered in time
  time.advance(10);
  deadlines.add(waitFor(time, 300, expired)); // due at 310, after the timer armed for 100
  time.advance(50);
  deadlines.add(waitFor(time, 20, expired)); // due at 80, before it
  time.advance(1000);
  assert.deepEqual(expired, [80, 310]);
  assert.equal(deadlines.size, 0);
  assert.equal(time.timers(), 0, 'nothing left armed once nothing is pending');
});

test('deadlines: a thousand store calls answered in time, one after another, arm the timer once, not once each', () => {
  const time = fakeTime();
  const deadlines = new Deadlines(time.now, time.schedule);
  const expired: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const wait = waitFor(time, 5000, expired);
    deadlines.add(wait);
    time.advance(1);
    deadlines.delete(wait);
  }
  assert.equal(time.armed(), 1);
  time.advance(10_000);
  assert.deepEqual(expired, [], 'none of them expires');
  assert.equal(time.timers(), 0);
});

test('deadlines: a wait added by an expiring one is expired at its own deadline', () => {
  const time = fakeTime();
  const deadlines = new Deadlines(time.now, time.schedule);
  const expired: number[] = [];
  deadlines.add({ deadline: 10, expire: () => (expired.push(time.now()), deadlines.add(waitFor(time, 5, expired))) });
  time.advance(100);
  assert.deepEqual(expired, [10, 15]);
});

test('deadlines: a wait ended by another one expiring at the same moment is not expired too; the count stays exact', () => {
  const time = fakeTime();
  const deadlines = new Deadlines(time.now, time.schedule);
  const expired: string[] = [];
  const second: Expiring = { deadline: 10, expire: () => expired.push('second') };
  deadlines.add({ deadline: 10, expire: () => (expired.push('first'), deadlines.delete(second)) });
  deadlines.add(second);
  assert.equal(deadlines.size, 2);
  time.advance(100);
  assert.deepEqual(expired, ['first']);
  assert.equal(deadlines.size, 0);
});

test('deadlines: many calls in flight that end in time leave nothing behind, and the pending ones still expire', () => {
  const time = fakeTime();
  const deadlines = new Deadlines(time.now, time.schedule);
  const expired: number[] = [];
  const late = waitFor(time, 5000, expired);
  deadlines.add(late);
  for (let i = 0; i < 10_000; i++) {
    const wait = waitFor(time, 5000, expired);
    deadlines.add(wait);
    deadlines.add(wait); // twice: still one wait
    deadlines.delete(wait);
    deadlines.delete(wait);
  }
  assert.equal(deadlines.size, 1);
  time.advance(6000);
  assert.deepEqual(expired, [5000]);
  assert.equal(deadlines.size, 0);
});
