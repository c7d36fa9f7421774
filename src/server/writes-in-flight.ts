/**
 * The writes of each session under way in this process (by tag), and, on several nodes, when the
 * last one ended: a destroy told late by another node may have been overtaken by a write of ours
 * that ended within `raceWindowMs` before the notice (see DestroyedSet).
 *
 * Bounds: a record per session with a write under way, plus (on several nodes) one per session
 * written within the race window; a write that never ends is forgotten after `keepMs`. Given back
 * when due, calls or not (one sweep armed for the oldest record).
 */
import { later, Sweep, type Schedule } from './sweep.js';

interface Writes {
  sid: string;
  /** Writes under way. */
  running: number;
  /** When the last one ended (or started, while running). */
  at: number;
  /** When the writes under way began to be under way without a break (running went from 0 to 1). */
  since: number;
  /** The order (see {@link WritesInFlight.started}) of the newest whole-record write started, and of the newest that ended well. */
  newestSet: number;
  endedSet: number;
  /** The JSON of that ended write, while older ones were still under way (they may land after it). */
  endedJson: string | undefined;
  /** An older write ended after it while a newer one was under way: if that one fails, endedJson is written again. */
  stale: boolean;
}

export class WritesInFlight {
  private writes = new Map<string, Writes>();
  private starts = 0;
  private readonly sweep: Sweep;

  /**
   * @param raceWindowMs how long after it ended a write may still meet another node's destroy
   *   notice; 0 (nothing to remember) until a server whose adapter reaches other nodes says otherwise.
   */
  constructor(
    public raceWindowMs = 0,
    private readonly keepMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    schedule: Schedule = later,
  ) {
    this.sweep = new Sweep(schedule, now, () => this.nextDue(), (at) => this.prune(at));
  }

  /** Writes of `tag` under way. */
  running(tag: string): number {
    return this.writes.get(tag)?.running ?? 0;
  }

  /**
   * Since when writes of `tag` have been under way without a break (undefined: none is). A store call
   * has a deadline; a busy stretch longer than it most likely holds a write that never ended (a hung
   * store call, given up on by its caller), which is counted until `keepMs` but must not be waited for.
   */
  busySince(tag: string): number | undefined {
    const writes = this.writes.get(tag);
    return writes && writes.running > 0 ? writes.since : undefined;
  }

  /** The session id of `tag` when none of its writes runs and one ended within the race window. */
  endedLately(tag: string): string | undefined {
    const writes = this.writes.get(tag);
    return writes && writes.running === 0 && this.now() - writes.at <= this.raceWindowMs ? writes.sid : undefined;
  }

  /**
   * A write of `tag` starts; returns how many of its writes are under way now (this one included).
   * `order`: a whole-record write's place among all such writes (increasing), 0 for a partial one (a touch).
   */
  started(tag: string, sid: string, order = 0): number {
    const now = this.now();
    let writes = this.writes.get(tag);
    if (!writes) this.writes.set(tag, (writes = { sid, running: 1, at: now, since: now, newestSet: order, endedSet: 0, endedJson: undefined, stale: false }));
    else {
      if (order > writes.newestSet) writes.newestSet = order;
      if (writes.running === 0) writes.since = now;
      writes.running += 1;
      writes.at = now;
      if (this.raceWindowMs > 0) this.reinsert(tag, writes);
    }
    // (Single node: ended writes are forgotten at once; only writes that never end are pruned, now and then.)
    if (this.raceWindowMs > 0 || (++this.starts & 1023) === 0) this.prune(now);
    // A sweep armed when the map last became non-empty is due no later than any record since: re-arm
    // only then (one node) instead of on every write; with a race window records move, so always.
    if (this.raceWindowMs > 0 || this.writes.size === 1) this.sweep.arm();
    return writes.running;
  }

  /**
   * A whole-record write of `tag` (its `order`, given to {@link started}) ended well, before {@link ended}
   * is told. A store may apply writes out of their order (a pool of connections, one of them stuck; a
   * write retried inside the store): one that ends after a newer one ended may have put its older record
   * over the newer. Returns, then, the newer record's JSON to write again, when no newer write is still
   * on its way (it will be the last). Costs nothing while writes of a session do not overlap.
   */
  setEnded(tag: string, order: number, record: unknown): string | undefined {
    const writes = this.writes.get(tag);
    if (!writes) return undefined;
    if (order > writes.endedSet) {
      writes.endedSet = order;
      writes.endedJson = writes.running > 1 ? jsonOf(record) : undefined;
      writes.stale = false;
      return undefined;
    }
    if (writes.newestSet === writes.endedSet) return writes.endedJson;
    writes.stale = true; // a newer write is under way: it lands last, unless it fails (see setFailed)
    return undefined;
  }

  /**
   * A whole-record write of `tag` failed. If it was the newest under way while an older one ended late
   * (see {@link setEnded}), the store holds that older record: returns the newer ended record's JSON to
   * write again. If it is older than one that ended well, it is taken as a late end (it may have landed).
   */
  setFailed(tag: string, order: number): string | undefined {
    const writes = this.writes.get(tag);
    if (!writes) return undefined;
    // Older than one that ended well: a failure answered late (its caller gave up on it) may still have been
    // carried out (a driver's timeout after the server wrote): as for a late success, the newer record is
    // written again (or, with a newer write still under way, if that one fails).
    if (order < writes.endedSet) return this.setEnded(tag, order, undefined);
    if (order !== writes.newestSet || order <= writes.endedSet) return undefined;
    writes.newestSet = writes.endedSet; // (as if it never started: the newest that may land is the one ended)
    if (!writes.stale) return undefined;
    writes.stale = false;
    return writes.endedJson;
  }

  /** A write of `tag` ended; returns how many of its writes are still under way. */
  ended(tag: string): number {
    const writes = this.writes.get(tag);
    if (!writes) return 0;
    writes.running = Math.max(0, writes.running - 1);
    // Without other nodes, an ended write needs no remembering (nor its time).
    if (this.raceWindowMs === 0 && writes.running === 0) {
      // (The last record: a new Map, not an emptied one, which V8 shrinks in a runtime call.)
      if (this.writes.size === 1) this.writes = new Map();
      else this.writes.delete(tag);
      return 0;
    }
    writes.at = this.now();
    this.reinsert(tag, writes);
    this.sweep.arm();
    return writes.running;
  }

  /** Records held (tests of the bounds). */
  get size(): number {
    return this.writes.size;
  }

  /** Re-insert, so the map stays (roughly) ordered by time for pruning. */
  private reinsert(tag: string, writes: Writes): void {
    this.writes.delete(tag);
    this.writes.set(tag, writes);
  }

  private nextDue(): number | undefined {
    const writes: Writes | undefined = this.writes.values().next().value;
    return writes ? writes.at + (writes.running > 0 ? this.keepMs : this.raceWindowMs) : undefined;
  }

  /** Forget idle records older than the race window (a hung write counts as idle after keepMs). */
  private prune(now: number): void {
    for (const [tag, writes] of this.writes) {
      const age = now - writes.at;
      if (age <= this.raceWindowMs || (writes.running > 0 && age <= this.keepMs)) break;
      this.writes.delete(tag);
    }
  }
}

/** The JSON of a record kept to be written again (undefined if it has none: then it is not). */
function jsonOf(record: unknown): string | undefined {
  try {
    return JSON.stringify(record);
  } catch {
    return undefined;
  }
}
