/**
 * The sessions loaded in this process for one store (one SessionEntry per id, shared by its
 * sockets), each with a mark of its writes through this process: every write's start and end (and a
 * destroy) moves it, so a loaded copy can ask whether anything wrote the session since a mark. The
 * marks are opaque: no caller counts them (the store hub's write token says whether a write ran alone).
 */

/** A session loaded in this process (see SessionEntry). */
export interface Live {
  readonly sid: string;
  readonly tag: string;
}

declare const MARK: unique symbol;
/** An opaque point in the history of a loaded session's writes through this process. */
export type WriteMark = number & { readonly [MARK]: true };
/** No point: never unchanged since. */
export const NO_MARK = -1 as WriteMark;
/** Marks are unique process-wide, so a mark of one registration never matches another's. */
let lastMark = 0;

export class LiveSessions {
  private readonly live = new Map<string, { live: Live; mark: WriteMark }>();

  /** Mark this process's writes of a loaded session from now on (until `untrack`). */
  track(live: Live): void {
    this.live.set(live.sid, { live, mark: ++lastMark as WriteMark });
  }

  untrack(live: Live): void {
    if (this.live.get(live.sid)?.live !== live) return;
    this.live.delete(live.sid);
  }

  /** Every session loaded in this process. */
  *all(): IterableIterator<Live> {
    for (const { live } of this.live.values()) yield live;
  }

  /** The loaded session of an id. */
  of(sid: string): Live | undefined {
    return this.live.get(sid)?.live;
  }

  /** (A scan: only another node's destroy notice asks; an index by tag would cost memory per session.) */
  byTag(tag: string): Live | undefined {
    for (const { live } of this.live.values()) if (live.tag === tag) return live;
    return undefined;
  }

  /** Where the writes of a loaded session through this process stand now (NO_MARK when it is not loaded). */
  mark(sid: string): WriteMark {
    return this.live.get(sid)?.mark ?? NO_MARK;
  }

  /** No write of `sid` through this process started or ended since `mark` was taken. */
  unchangedSince(sid: string, mark: WriteMark): boolean {
    return mark !== NO_MARK && this.mark(sid) === mark;
  }

  /** A write event of `sid`: its new mark (NO_MARK when it is not loaded here). */
  bump(sid: string): WriteMark {
    const entry = this.live.get(sid);
    if (!entry) return NO_MARK;
    return (entry.mark = ++lastMark as WriteMark);
  }

  /**
   * A write of `sid` ended: its new mark when nothing moved the mark since `since` (the write's
   * start), undefined otherwise or when it is not loaded here. (One lookup for both.)
   */
  bumpFrom(sid: string, since: WriteMark): WriteMark | undefined {
    const entry = this.live.get(sid);
    if (!entry) return undefined;
    const unmoved = entry.mark === since;
    entry.mark = ++lastMark as WriteMark;
    return unmoved ? entry.mark : undefined;
  }

  get size(): number {
    return this.live.size;
  }
}
