/**
 * Deadlines for many waits at once on one timer: store calls are frequent and almost always
 * answer long before their deadline, so each costs a set entry instead of a timer of its own. The
 * timer is armed for the earliest deadline; when it fires it expires what is due and re-arms.
 */
export interface Expiring {
  readonly deadline: number;
  expire(): void;
}

export class Deadlines {
  private readonly pending = new Set<Expiring>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedFor = Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  add(wait: Expiring): void {
    this.pending.add(wait);
    if (wait.deadline < this.armedFor) this.arm(wait.deadline);
  }

  /** The wait ended in time. */
  delete(wait: Expiring): void {
    this.pending.delete(wait);
    if (this.pending.size === 0) this.disarm();
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.max(1, at - this.now()));
    this.timer.unref?.();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const wait of this.pending) {
      if (wait.deadline <= now) {
        this.pending.delete(wait);
        wait.expire();
      } else if (wait.deadline < next) next = wait.deadline;
    }
    if (next !== Infinity) this.arm(next);
  }

  get size(): number {
    return this.pending.size;
  }
}
