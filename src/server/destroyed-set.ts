/**
 * Destroyed sessions, remembered for a while by tag (a hash of the id: the raw id never travels), so
 * that no write that raced the destroy can bring the session back. Writes of a remembered session
 * are dropped; a write already under way when the destroy came is followed by one more destroy once
 * the last such write has ended. A destroy on another node is told to this one late (through the
 * adapter): a write of ours that ended shortly before the notice may have landed after that destroy,
 * so the session is destroyed once more (once). Which writes run, and which ended lately, is
 * WritesInFlight's to know.
 *
 * Guarantee: after a destroy, at most one extra destroy per node, whatever the number of writes
 * that raced it. Bounds: the destroys of the last `keepMs`, at most `maxStones` of them (the oldest
 * forgotten first), given back when due, calls or not (one sweep armed for the oldest).
 */
import { later, Sweep, type Schedule } from './sweep.js';
import type { WritesInFlight } from './writes-in-flight.js';

interface Tombstone {
  at: number;
  /** Destroys of it still under way; while > 0 and not confirmed, a failure forgets the tombstone. */
  pending: number;
  confirmed: boolean;
  /** A write of ours was under way when it was destroyed. */
  raced: boolean;
  /** The extra destroy was already done. */
  repeated: boolean;
}

export class DestroyedSet {
  private readonly stones = new Map<string, Tombstone>();
  private readonly sweep: Sweep;

  constructor(
    private readonly writes: WritesInFlight,
    private readonly keepMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    /** At most this many destroyed sessions are remembered (the oldest are forgotten first): about 20 MB at most, whatever the rate of logouts. */
    private readonly maxStones = 100_000,
    schedule: Schedule = later,
  ) {
    this.sweep = new Sweep(schedule, now, () => this.nextDue(), (at) => this.prune(at));
  }

  has(tag: string): boolean {
    return this.stones.has(tag);
  }

  /** A destroy of `tag` succeeded (here, on another node, or by `clear()`). */
  confirmed(tag: string): boolean {
    return this.stones.get(tag)?.confirmed === true;
  }

  /** A destroy of `tag` is under way and none succeeded yet: what happens to its writes waits for the outcome. */
  unsettled(tag: string): boolean {
    const stone = this.stones.get(tag);
    return stone !== undefined && !stone.confirmed && stone.pending > 0;
  }

  /** No session is remembered as destroyed (then nobody needs to hash an id to ask). */
  get empty(): boolean {
    return this.stones.size === 0;
  }

  /** A destroy of `tag` starts: from now on its writes are dropped. */
  destroying(tag: string): void {
    this.stone(tag).pending += 1;
  }

  /**
   * A destroy of `tag` ended (`ok`: it succeeded). Returns true when one more destroy is due now:
   * a write that raced it ended before it did.
   */
  destroyed(tag: string, ok: boolean): boolean {
    const stone = this.stones.get(tag);
    if (!stone) return false;
    stone.pending = Math.max(0, stone.pending - 1);
    if (!ok) {
      if (!stone.confirmed && stone.pending === 0) this.stones.delete(tag);
      return false;
    }
    stone.confirmed = true;
    return this.repeatDue(tag, stone);
  }

  /** Another node destroyed `tag`: the session id to destroy once more (a write of ours may have landed after it), if any. */
  remote(tag: string): string | undefined {
    const stone = this.stone(tag);
    stone.confirmed = true;
    if (this.writes.running(tag) > 0) {
      stone.raced = true; // repeated when the last one ends
      return undefined;
    }
    const sid = this.writes.endedLately(tag);
    if (sid === undefined || stone.repeated) return undefined;
    stone.repeated = true;
    return sid;
  }

  /** A write of `tag` ended (WritesInFlight was told first). Returns true when one more destroy is due now: it raced a destroy. */
  writeEnded(tag: string): boolean {
    const stone = this.stones.get(tag);
    if (!stone) return false;
    stone.raced = true;
    return this.repeatDue(tag, stone);
  }

  /** Destroyed sessions remembered (tests of the bounds). */
  get size(): number {
    return this.stones.size;
  }

  private repeatDue(tag: string, stone: Tombstone): boolean {
    // Only after a destroy succeeded: one still under way may fail (then the session lives on).
    if (!stone.confirmed || !stone.raced || stone.repeated || this.writes.running(tag) > 0) return false;
    stone.repeated = true;
    return true;
  }

  private stone(tag: string): Tombstone {
    let stone = this.stones.get(tag);
    if (!stone) {
      const now = this.now();
      stone = { at: now, pending: 0, confirmed: false, raced: this.writes.running(tag) > 0, repeated: false };
      this.stones.set(tag, stone);
      this.prune(now);
      this.sweep.arm();
    }
    return stone;
  }

  private nextDue(): number | undefined {
    const stone: Tombstone | undefined = this.stones.values().next().value;
    return stone ? stone.at + this.keepMs : undefined;
  }

  /** Forget tombstones older than keepMs, and the oldest beyond maxStones. */
  private prune(now: number): void {
    for (const [tag, stone] of this.stones) {
      if (now - stone.at <= this.keepMs && this.stones.size <= this.maxStones) break;
      this.stones.delete(tag);
    }
  }
}
