/**
 * One timer for a map of records kept in time order: armed for when the oldest is due, so what a
 * burst left is given back even if no call follows it (an idle server frees it), never a timer per record.
 */

/** Runs `run` in `ms` (an unref'd timer: a sweep never keeps the process alive); returns a cancel. */
export type Schedule = (ms: number, run: () => void) => () => void;

export const later: Schedule = (ms, run) => {
  const timer = setTimeout(run, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
};

export class Sweep {
  private armed: { at: number; cancel: () => void } | undefined;

  constructor(
    private readonly schedule: Schedule,
    private readonly now: () => number,
    /** When the oldest record may be forgotten; undefined when nothing is held. */
    private readonly nextDue: () => number | undefined,
    private readonly prune: (now: number) => void,
  ) {}

  /** Arm the timer for the oldest record (earlier than the one armed, if any). */
  arm(): void {
    const due = this.nextDue();
    if (due === undefined || (this.armed && this.armed.at <= due)) return;
    this.armed?.cancel();
    const cancel = this.schedule(Math.max(1, due - this.now()), () => {
      this.armed = undefined;
      this.prune(this.now());
      this.arm();
    });
    this.armed = { at: due, cancel };
  }
}
