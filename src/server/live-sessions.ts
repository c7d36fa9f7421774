/**
 * The sessions this process serves for one store, by id: one record each (the session's runtime,
 * runtime/index.ts), holding the copy loaded here, if any, and a mark of the session's writes
 * through this process: every write's start and end (and a destroy) moves it while a copy is
 * loaded, so that copy can ask whether anything wrote the session since a mark. The marks are
 * opaque: no caller counts them (the store hub's write token says whether a write ran alone).
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
/** Marks are unique process-wide, so a mark of one loaded copy never matches another's. */
let lastMark = 0;

/** What the registry holds per session id (the session's runtime). */
export interface LiveRecord {
  readonly sid: string;
  /** The copy loaded here whose writes are counted, if any. */
  readonly entry: Live | undefined;
  /** Where the writes stand (meaningful while `entry` is there); set here only. */
  mark: WriteMark;
  /** The tag it is indexed by (see `LiveSessions.byTag`); set here only. */
  indexedTag?: string;
}

export class LiveSessions<R extends LiveRecord = LiveRecord> {
  private readonly records = new Map<string, R>();
  /**
   * The records with a copy loaded, by its tag: built at the first {@link byTag} (only another
   * node's destroy notice asks, so a single node never pays for it), kept from then on.
   */
  private tags: Map<string, R> | undefined;

  /** The record of an id, if the process serves that session. */
  get(sid: string): R | undefined {
    return this.records.get(sid);
  }

  add(record: R): void {
    this.records.set(record.sid, record);
  }

  remove(record: R): void {
    if (this.records.get(record.sid) !== record) return;
    this.records.delete(record.sid);
    if (record.indexedTag !== undefined && this.tags?.get(record.indexedTag) === record) this.tags.delete(record.indexedTag);
  }

  /** Every record (each session the process serves). */
  values(): IterableIterator<R> {
    return this.records.values();
  }

  /** Sessions served, loaded or not. */
  get count(): number {
    return this.records.size;
  }

  /** `record` has a new copy loaded: its writes are counted from a fresh mark (no earlier mark matches it). */
  fresh(record: R): void {
    record.mark = ++lastMark as WriteMark;
    if (this.tags && record.entry) this.index(record, record.entry.tag);
  }

  /** Every session loaded in this process. */
  *all(): IterableIterator<Live> {
    for (const { entry } of this.records.values()) if (entry) yield entry;
  }

  /** The loaded session of an id. */
  of(sid: string): Live | undefined {
    return this.records.get(sid)?.entry;
  }

  /** The loaded session of a tag (another node's destroy notice names a session by its tag). */
  byTag(tag: string): Live | undefined {
    if (!this.tags) {
      this.tags = new Map();
      for (const record of this.records.values()) if (record.entry) this.index(record, record.entry.tag);
    }
    const entry = this.tags.get(tag)?.entry;
    return entry?.tag === tag ? entry : undefined;
  }

  private index(record: R, tag: string): void {
    record.indexedTag = tag;
    this.tags!.set(tag, record);
  }

  /** Where the writes of a loaded session through this process stand now (NO_MARK when it is not loaded). */
  mark(sid: string): WriteMark {
    const record = this.records.get(sid);
    return record?.entry ? record.mark : NO_MARK;
  }

  /** No write of `sid` through this process started or ended since `mark` was taken. */
  unchangedSince(sid: string, mark: WriteMark): boolean {
    return mark !== NO_MARK && this.mark(sid) === mark;
  }

  /** A write event of `sid`: its new mark (NO_MARK when it is not loaded here). */
  bump(sid: string): WriteMark {
    const record = this.records.get(sid);
    if (!record?.entry) return NO_MARK;
    return (record.mark = ++lastMark as WriteMark);
  }

  /** A write of `sid` ended: the new mark when none moved it since `since` (it ran alone), else undefined. */
  bumpFrom(sid: string, since: WriteMark): WriteMark | undefined {
    const record = this.records.get(sid);
    if (!record?.entry) return undefined;
    const unmoved = record.mark === since;
    record.mark = ++lastMark as WriteMark;
    return unmoved ? record.mark : undefined;
  }

  /** Sessions loaded here. */
  get size(): number {
    let loaded = 0;
    for (const { entry } of this.records.values()) if (entry) loaded += 1;
    return loaded;
  }
}
