/**
 * A timing wheel: one timer for many members that each want `run(member)` every `interval` ms,
 * each at its own phase (one interval after it joined, give or take interval / slots). Members
 * cost a set entry, not a timer each. The timer runs only while there are members.
 */
export interface Timers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const nodeTimers: Timers = {
  setInterval: (fn, ms) => {
    const handle = setInterval(fn, ms);
    handle.unref?.();
    return handle;
  },
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export class Wheel<T> {
  private readonly slots: Array<Set<T>>;
  private readonly slotOf = new Map<T, number>();
  private cursor = 0;
  private handle: unknown;

  constructor(
    interval: number,
    private readonly run: (member: T) => void,
    slots = 16,
    private readonly timers: Timers = nodeTimers,
  ) {
    this.slots = Array.from({ length: slots }, () => new Set<T>());
    this.tick = interval / slots;
  }

  private readonly tick: number;

  /** `member` is run every interval from now on (the first time one interval from now). */
  add(member: T): void {
    if (this.slotOf.has(member)) return;
    // The slot the cursor reaches last: a full turn from now.
    const slot = this.cursor;
    this.slots[slot].add(member);
    this.slotOf.set(member, slot);
    this.handle ??= this.timers.setInterval(() => this.turn(), this.tick);
  }

  remove(member: T): void {
    const slot = this.slotOf.get(member);
    if (slot === undefined) return;
    this.slotOf.delete(member);
    this.slots[slot].delete(member);
    if (this.slotOf.size === 0 && this.handle !== undefined) {
      this.timers.clearInterval(this.handle);
      this.handle = undefined;
    }
  }

  private turn(): void {
    this.cursor = (this.cursor + 1) % this.slots.length;
    for (const member of [...this.slots[this.cursor]]) this.run(member);
  }

  get size(): number {
    return this.slotOf.size;
  }
}
