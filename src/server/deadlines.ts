/**
 * Deadlines for many waits at once on one timer: store calls are frequent and almost always
 * answer long before their deadline, so each costs a set entry instead of a timer of its own. The
 * timer is armed for the earliest deadline and stays armed when the waits end in time (the next
 * call would arm it again at once); when it fires it expires what is due and re-arms for the rest.
 */
import { later, type Schedule } from './sweep.js';

export interface Expiring {
  readonly deadline: number;
  expire(): void;
}


export class Deadlines {
  private readonly pending = new Set<Expiring>();
  private cancel: (() => void) | undefined;
  private armedFor = Infinity;
  private readonly fireBound = () => this.fire();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly schedule: Schedule = later,
  ) {}

  add(wait: Expiring): void {
    this.pending.add(wait);
    if (wait.deadline < this.armedFor) this.arm(wait.deadline);
  }

  /** The wait ended in time. (The timer stays: when it fires with nothing due, it re-arms for what is pending, if anything.) */
  delete(wait: Expiring): void {
    this.pending.delete(wait);
  }

  private arm(at: number): void {
    this.cancel?.();
    this.armedFor = at;
    this.cancel = this.schedule(Math.max(1, at - this.now()), this.fireBound);
  }

  private fire(): void {
    this.cancel = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const wait of this.pending) {
      if (wait.deadline <= now) {
        this.pending.delete(wait);
        wait.expire();
      } else if (wait.deadline < next) next = wait.deadline;
    }
    if (next !== Infinity && next < this.armedFor) this.arm(next);
  }

  get size(): number {
    return this.pending.size;
  }
}
