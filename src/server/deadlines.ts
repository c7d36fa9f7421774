/**
 * Deadlines for many waits at once on one timer: store calls are frequent and almost always
 * answer long before their deadline, so each costs a slot in a list instead of a timer of its own
 * (or a hashed set entry). The timer is armed for the earliest deadline and stays armed when the
 * waits end in time (the next call would arm it again at once); when it fires it expires what is
 * due, drops what ended, and re-arms for the rest.
 */
import { later, type Schedule } from './sweep.js';

export interface Expiring {
  readonly deadline: number;
  expire(): void;
  /** Set by {@link Deadlines} while the wait is pending there (a wait is in at most one). */
  waiting?: boolean;
}

export class Deadlines {
  /** Pending waits in the order added, and ended ones not dropped yet (`waiting` false). */
  private waits: Expiring[] = [];
  private pending = 0;
  private cancel: (() => void) | undefined;
  private armedFor = Infinity;
  private readonly fireBound = () => this.fire();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly schedule: Schedule = later,
  ) {}

  add(wait: Expiring): void {
    if (wait.waiting) return;
    wait.waiting = true;
    this.pending++;
    this.waits.push(wait);
    if (wait.deadline < this.armedFor) this.arm(wait.deadline);
  }

  /** The wait ended in time. (The timer stays: when it fires with nothing due, it re-arms for what is pending, if anything.) */
  delete(wait: Expiring): void {
    if (!wait.waiting) return;
    wait.waiting = false;
    this.pending--;
    // Ended waits are dropped when the timer fires; a burst of calls within one storeTimeout is dropped here.
    if (this.waits.length > 64 && this.waits.length > 4 * this.pending) this.waits = this.waits.filter((w) => w.waiting);
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
    const due: Expiring[] = [];
    const kept: Expiring[] = [];
    let next = Infinity;
    for (const wait of this.waits) {
      if (!wait.waiting) continue;
      if (wait.deadline <= now) due.push(wait);
      else {
        kept.push(wait);
        if (wait.deadline < next) next = wait.deadline;
      }
    }
    this.waits = kept;
    // Expired after the list is settled: an expiring wait may add another.
    for (const wait of due) {
      if (!wait.waiting) continue; // ended by an earlier one's expire
      wait.waiting = false;
      this.pending--;
      wait.expire();
    }
    if (next !== Infinity && next < this.armedFor) this.arm(next);
  }

  get size(): number {
    return this.pending;
  }
}
