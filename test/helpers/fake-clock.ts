/**
 * A clock and timers of a test's own, for the classes that take `now` and `schedule` (sweep.ts's
 * Schedule): minutes pass in no time. `advance(to)` runs every timer due by then, in order of
 * arming; `mostArmed` is the most timers armed at once (one sweep at a time, not a timer per record).
 */
export function fakeClock() {
  const clock = {
    now: 0,
    timers: [] as Array<{ at: number; run: () => void }>,
    mostArmed: 0,
    schedule: (ms: number, run: () => void): (() => void) => {
      const timer = { at: clock.now + ms, run };
      clock.timers.push(timer);
      clock.mostArmed = Math.max(clock.mostArmed, clock.timers.length);
      return () => void (clock.timers.includes(timer) && clock.timers.splice(clock.timers.indexOf(timer), 1));
    },
    advance(to: number): void {
      clock.now = to;
      for (let due = clock.timers.findIndex((timer) => timer.at <= clock.now); due >= 0; due = clock.timers.findIndex((timer) => timer.at <= clock.now)) clock.timers.splice(due, 1)[0]!.run();
    },
  };
  return clock;
}
