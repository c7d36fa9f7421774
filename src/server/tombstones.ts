/**
 * Destroyed sessions, remembered for a while by tag (a hash of the id: the raw id never travels), so
 * that no write that raced the destroy can bring the session back. Writes of a remembered session
 * are dropped; a write already under way when the destroy came is followed by one more destroy once
 * the last such write has ended. A destroy on another node is told to this one late (through the
 * adapter): a write of ours that ended shortly before the notice may have landed after that destroy,
 * so the session is destroyed once more (once).
 *
 * Guarantee: after a destroy, at most one extra destroy per node, whatever the number of writes
 * that raced it; the memory held is bounded by the destroys of the last `keepMs` (at most
 * `maxStones` of them) and the writes of the last `raceWindowMs`, and given back once they are
 * older, calls or not (a sweep is armed for the oldest record).
 */

/** Runs `run` in `ms` (an unref'd timer: a sweep never keeps the process alive); returns a cancel. */
export type Schedule = (ms: number, run: () => void) => () => void;

const later: Schedule = (ms, run) => {
  const timer = setTimeout(run, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
};

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

interface Writes {
  sid: string;
  /** Writes under way. */
  running: number;
  /** When the last one ended (or started, while running). */
  at: number;
}

export class Tombstones {
  private readonly stones = new Map<string, Tombstone>();
  private readonly writes = new Map<string, Writes>();
  private starts = 0;
  /** The one sweep armed, for when the oldest record is due. */
  private sweep: { at: number; cancel: () => void } | undefined;

  /**
   * @param raceWindowMs how long after it ended a write may still meet another node's destroy
   *   notice; 0 (nothing to remember) until a server whose adapter reaches other nodes says otherwise.
   */
  constructor(
    private readonly keepMs = 10 * 60_000,
    public raceWindowMs = 0,
    private readonly now: () => number = Date.now,
    /** At most this many destroyed sessions are remembered (the oldest are forgotten first): about 20 MB at most, whatever the rate of logouts. */
    private readonly maxStones = 100_000,
    private readonly schedule: Schedule = later,
  ) {}

  has(tag: string): boolean {
    return this.stones.has(tag);
  }

  /** Writes of `tag` under way in this process. */
  running(tag: string): number {
    return this.writes.get(tag)?.running ?? 0;
  }

  /** No session is remembered as destroyed (then nobody needs to hash an id to ask). */
  get empty(): boolean {
    return this.stones.size === 0;
  }

  /** A destroy of `tag` starts: from now on its writes are dropped. */
  destroying(tag: string): void {
    const stone = this.stone(tag);
    stone.pending += 1;
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
    const writes = this.writes.get(tag);
    if (!writes) return undefined;
    if (writes.running > 0) stone.raced = true; // repeated when the last one ends
    else if (this.now() - writes.at <= this.raceWindowMs && !stone.repeated) {
      stone.repeated = true;
      return writes.sid;
    }
    return undefined;
  }

  /** A write of `tag` starts (callers drop writes of tags that `has`). */
  writeStarted(tag: string, sid: string): void {
    const now = this.now();
    const writes = this.writes.get(tag);
    if (!writes) this.writes.set(tag, { sid, running: 1, at: now });
    else {
      writes.running += 1;
      writes.at = now;
      if (this.raceWindowMs > 0) this.touch(tag, writes);
    }
    // (Single node: ended writes are forgotten at once; only writes that never end are pruned, now and then.)
    if (this.raceWindowMs > 0 || (++this.starts & 1023) === 0) this.prune(now);
    this.sweepLater();
  }

  /** A write of `tag` ended. Returns true when one more destroy is due now: it raced a destroy. */
  writeEnded(tag: string): boolean {
    const writes = this.writes.get(tag);
    if (writes) {
      writes.running = Math.max(0, writes.running - 1);
      writes.at = this.now();
      // Without other nodes, an ended write needs no remembering.
      if (this.raceWindowMs === 0 && writes.running === 0) this.writes.delete(tag);
      else {
        this.touch(tag, writes);
        this.sweepLater();
      }
    }
    const stone = this.stones.get(tag);
    if (!stone) return false;
    stone.raced = true;
    return this.repeatDue(tag, stone);
  }

  /** Re-insert, so the map stays (roughly) ordered by time for pruning. */
  private touch(tag: string, writes: Writes): void {
    this.writes.delete(tag);
    this.writes.set(tag, writes);
  }

  private repeatDue(tag: string, stone: Tombstone): boolean {
    if (!stone.raced || stone.repeated || (this.writes.get(tag)?.running ?? 0) > 0) return false;
    stone.repeated = true;
    return true;
  }

  private stone(tag: string): Tombstone {
    const now = this.now();
    let stone = this.stones.get(tag);
    if (!stone) {
      stone = { at: now, pending: 0, confirmed: false, raced: (this.writes.get(tag)?.running ?? 0) > 0, repeated: false };
      this.stones.set(tag, stone);
      this.prune(now);
      this.sweepLater();
    }
    return stone;
  }

  /** Prune when the oldest record is due, so what a burst left is forgotten even if no call follows it. */
  private sweepLater(): void {
    const due = this.nextDue();
    if (due === undefined || (this.sweep && this.sweep.at <= due)) return;
    this.sweep?.cancel();
    const cancel = this.schedule(Math.max(1, due - this.now()), () => {
      this.sweep = undefined;
      this.prune(this.now());
      this.sweepLater();
    });
    this.sweep = { at: due, cancel };
  }

  /** When the oldest record may be forgotten (the maps are kept, roughly, in time order). */
  private nextDue(): number | undefined {
    const stone: Tombstone | undefined = this.stones.values().next().value;
    const writes: Writes | undefined = this.writes.values().next().value;
    const stoneDue = stone ? stone.at + this.keepMs : Infinity;
    const writesDue = writes ? writes.at + (writes.running > 0 ? this.keepMs : this.raceWindowMs) : Infinity;
    const due = Math.min(stoneDue, writesDue);
    return due === Infinity ? undefined : due;
  }

  /** Forget tombstones older than keepMs and idle write records older than the race window (a hung write counts as idle after keepMs). */
  private prune(now: number): void {
    for (const [tag, stone] of this.stones) {
      if (now - stone.at <= this.keepMs && this.stones.size <= this.maxStones) break;
      this.stones.delete(tag);
    }
    for (const [tag, writes] of this.writes) {
      const age = now - writes.at;
      if (age <= this.raceWindowMs || (writes.running > 0 && age <= this.keepMs)) break;
      this.writes.delete(tag);
    }
  }

  /** Sizes, for tests of the bounds. */
  get size(): { tombstones: number; writes: number } {
    return { tombstones: this.stones.size, writes: this.writes.size };
  }
}
