/**
 * Copies of sessions retired lately in this process (their last socket left and its last save
 * ran), by id: the count of retirements when each retired, and when. A handshake's read that began
 * before a retirement of its session may predate that copy's last save (see {@link retiredSince}).
 * Each is kept `keepMs` (longer than any store read may take), then forgotten by one sweep armed
 * for the oldest: memory goes back to nothing once retirements stop, whatever came before.
 */
import { later, Sweep, type Schedule } from './sweep.js';

export class RetiredCopies {
  /** By id, in the order they retired (an id retiring again moves last). */
  private readonly copies = new Map<string, { mark: number; at: number }>();
  private retirements = 0;
  private readonly sweep: Sweep;

  constructor(
    private readonly keepMs = 120_000,
    private readonly now: () => number = Date.now,
    schedule: Schedule = later,
  ) {
    this.sweep = new Sweep(schedule, now, () => this.oldest(), (at) => this.prune(at));
  }

  /** A copy of `sid` retired. */
  retired(sid: string): void {
    this.copies.delete(sid); // (re-inserted last: the map stays in time order)
    this.copies.set(sid, { mark: ++this.retirements, at: this.now() });
    this.sweep.arm();
  }

  /** The mark to give {@link retiredSince}, taken when a read begins. */
  mark(): number {
    return this.retirements;
  }

  /** Whether a copy of `sid` retired after `mark` was taken (a read begun then may predate its last save). */
  retiredSince(sid: string, mark: number): boolean {
    return (this.copies.get(sid)?.mark ?? 0) > mark;
  }

  /** Copies remembered. */
  get size(): number {
    return this.copies.size;
  }

  private oldest(): number | undefined {
    for (const { at } of this.copies.values()) return at + this.keepMs;
    return undefined;
  }

  private prune(now: number): void {
    for (const [sid, { at }] of this.copies) {
      if (now - at < this.keepMs) break;
      this.copies.delete(sid);
    }
  }
}
