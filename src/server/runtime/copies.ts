/**
 * The late copies a process holds work for (tasks.ts): copies that are not their session's live one,
 * changed after their socket left, with a save due or queued. Keyed by the copy, and indexed by its
 * session id, so that a request of one session (httpLock's turn) finds that session's copies without
 * looking at the others' (after a reconnect storm there may be many).
 */
export interface LateCopy {
  readonly sid: string;
}

export class LateCopies<Copy extends LateCopy, V> {
  private readonly byCopy = new Map<Copy, V>();
  private readonly bySid = new Map<string, Set<Copy>>();

  get size(): number {
    return this.byCopy.size;
  }

  get(copy: Copy): V | undefined {
    return this.byCopy.get(copy);
  }

  has(copy: Copy): boolean {
    return this.byCopy.has(copy);
  }

  set(copy: Copy, value: V): void {
    this.byCopy.set(copy, value);
    const copies = this.bySid.get(copy.sid);
    if (copies) copies.add(copy);
    else this.bySid.set(copy.sid, new Set([copy]));
  }

  delete(copy: Copy): boolean {
    if (!this.byCopy.delete(copy)) return false;
    const copies = this.bySid.get(copy.sid)!;
    copies.delete(copy);
    if (copies.size === 0) this.bySid.delete(copy.sid);
    return true;
  }

  /** The copies of session `sid` (none: an empty list). */
  of(sid: string): Copy[] {
    const copies = this.bySid.get(sid);
    return copies ? [...copies] : [];
  }

  entries(): Array<[Copy, V]> {
    return [...this.byCopy];
  }

  /** Session ids with a copy here (tests: nothing is left behind). */
  get sessions(): number {
    return this.bySid.size;
  }
}
