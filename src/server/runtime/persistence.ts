/**
 * The runtime's persistence, which its batches and tasks use: how the loaded copy (SessionEntry) is
 * brought up to date, saved and revalidated through the store hub. Saving merges only the keys changed here into the
 * store's record, and reads that record first only when something else may have written it since
 * the copy was loaded: a write through this process (the hub's marks say), or any other process
 * when the store is shared and the copy was not just loaded in the same turn.
 */
import type { InvalidReason } from '../../protocol.js';
import type { SessionValueError } from '../../errors.js';
import type { Changes } from '../tracker.js';
import { NO_MARK, promised, type Loaded, type SessionRecord, type WriteMark } from '../store.js';
import type { SessionEntry } from '../session-entry.js';
import { log } from '../log.js';

/** Who is told of a key left out of a save because its value cannot be stored (the binding, or the instance). */
export interface Refusals {
  report(error: SessionValueError): void;
}

/** How many times a merge re-reads when writes keep landing during its read. */
const MAX_REREADS = 3;

/**
 * Read the record; with `hub.read`'s errors. Re-reads while writes land during the read (bounded).
 * `settled`: the hub's mark at which the record read is the store's (no write of ours during the read).
 */
async function read(entry: SessionEntry, timeoutMs: number, first = 1): Promise<{ loaded: Loaded; settled: WriteMark | undefined }> {
  const { hub, sid } = entry;
  for (let attempt = first; ; attempt++) {
    const before = hub.live.mark(sid);
    const loaded = await hub.read(sid, timeoutMs);
    const settled = hub.live.unchangedSince(sid, before) ? before : undefined;
    // (No copy loaded here, NO_MARK: the marks cannot tell, and reading again would not either.)
    if (settled !== undefined || before === NO_MARK || attempt >= MAX_REREADS || !('record' in loaded)) return { loaded, settled };
  }
}

/** Put `changes` (key → JSON, undefined: deleted) into `record`; true if any key differed. */
function merge(record: SessionRecord, changes: Changes): boolean {
  let differed = false;
  for (const [key, json] of changes.now) {
    if ((Object.hasOwn(record, key) ? JSON.stringify(record[key]) : undefined) === json) continue;
    differed = true;
    if (json === undefined) delete record[key];
    else record[key] = JSON.parse(json);
  }
  return differed;
}

/** Who hears how a load or a save of the copy went: a store failure, or the invalid reason when the session is gone. */
export type Outcome = (err: unknown, reason?: InvalidReason) => void;

/**
 * Bring the copy up to date before a unit of work, then tell `then`: at once when nothing can have
 * changed it, else once reloaded. The invalid reason when the session is gone; a store failure is
 * a SessionUnavailableError.
 */
export function refresh(entry: SessionEntry, timeoutMs: number, then: Outcome): void {
  if (entry.invalid) return then(undefined, entry.invalid);
  if (entry.trustworthy) return then(undefined);
  reload(entry, timeoutMs, then);
}

/** Reload the copy. The first read is answered to `then` straight from the store's callback (no promise on the event path); re-reads as `read`. */
function reload(entry: SessionEntry, timeoutMs: number, then: Outcome): void {
  const { hub, sid } = entry;
  const before = hub.live.mark(sid);
  hub.readThen(sid, timeoutMs, (err, loaded) => {
    if (err) return then(err);
    if (hub.live.unchangedSince(sid, before)) return takenIn(entry, loaded!, before, then);
    if (!('record' in loaded!)) return takenIn(entry, loaded!, undefined, then);
    void read(entry, timeoutMs, 2).then((again) => takenIn(entry, again.loaded, again.settled, then), then);
  });
}

/** {@link takeIn}, told to `then` (what it throws is a failure of the load). */
function takenIn(entry: SessionEntry, loaded: Loaded, settled: WriteMark | undefined, then: Outcome): void {
  let reason: InvalidReason | undefined;
  try {
    reason = takeIn(entry, loaded, settled);
  } catch (err) {
    return then(err);
  }
  then(undefined, reason);
}

/** Take a read's answer into the copy (`settled`: the mark at which it is the store's); the invalid reason when the session is gone (or its record is not one). */
function takeIn(entry: SessionEntry, loaded: Loaded, settled: WriteMark | undefined): InvalidReason | undefined {
  const reason = entry.goneReason(loaded);
  if (reason) return reason;
  entry.adopt((loaded as { record: SessionRecord }).record, settled);
  return undefined;
}

/**
 * Save the keys changed here, merged into the store's record, then tell `then` (at once when there
 * is nothing to write). `trusted`: the copy was loaded in the same turn (or under the session lock),
 * so the record is read first only if a write through this process came since. The invalid reason
 * when the session is gone; a store failure is a SessionUnavailableError (the changes stay, to be
 * saved next time). A key whose value cannot be stored is left out (the other keys are saved) and
 * reported to `refusals`, once per value.
 */
export function save(entry: SessionEntry, trusted: boolean, timeoutMs: number, refusals: Refusals, then: Outcome): void {
  if (entry.invalid || !entry.touched) return then(undefined);
  const changes = entry.takeChanges();
  for (const error of changes.refused) refusals.report(error);
  if (changes.now.size === 0) return then(undefined); // nothing to write: no store call, no turn
  if (trusted && entry.current) return writeCopy(entry, changes, timeoutMs, then);
  writeMerged(entry, changes, timeoutMs).then((reason) => then(undefined, reason), then);
}

/** {@link save} as a promise (the tasks). */
export function saved(entry: SessionEntry, trusted: boolean, timeoutMs: number, refusals: Refusals): Promise<InvalidReason | undefined> {
  return promised<InvalidReason | undefined>((then) => save(entry, trusted, timeoutMs, refusals, then));
}

/**
 * Write the whole copy (it equals the store's record but for `changes`, taken from the entry). If
 * the store fails they are given back to the entry, to be saved next time.
 */
function writeCopy(entry: SessionEntry, changes: Changes, timeoutMs: number, then: Outcome): void {
  const record = entry.storableCopy();
  entry.keepTouchedExpiry(record);
  entry.hub.writeThen(entry.sid, record, timeoutMs, (err, written) => {
    if (err) {
      entry.restore(changes);
      return then(err);
    }
    if (written === 'destroyed') return then(undefined, 'destroyed');
    logSaved(entry, changes, true);
    const { current } = written!;
    // Our write ran alone (the hub's answer): the store holds what we wrote.
    if (current !== undefined) {
      entry.markCurrent(current);
      return then(undefined);
    }
    // Another write of the session through this process overlapped ours (an HTTP request saving its
    // whole, older copy): it may have landed after ours. Make sure what we changed is in the store.
    ensureWritten(entry, changes, timeoutMs).then((reason) => {
      if (!reason) entry.markCurrent(undefined);
      then(undefined, reason);
    }, (error: unknown) => {
      entry.restore(changes);
      then(error);
    });
  });
}

function logSaved(entry: SessionEntry, changes: Changes, fromCopy: boolean): void {
  if (log.save.enabled) log.save('%s saved %d key(s)%s', entry.tag, changes.now.size, fromCopy ? '' : ' (merged into the store record)');
}

/** Read the store's record, put `changes` (taken from the entry) into it and write it. If the store fails they are given back to the entry. */
async function writeMerged(entry: SessionEntry, changes: Changes, timeoutMs: number): Promise<InvalidReason | undefined> {
  try {
    const got = await read(entry, timeoutMs);
    const gone = entry.goneReason(got.loaded);
    if (gone) return gone;
    const record = (got.loaded as { record: SessionRecord }).record;
    /** A write of ours overtook the read the record came from. */
    const overtaken = got.settled === undefined;
    merge(record, changes);
    entry.keepTouchedExpiry(record);
    const written = await entry.hub.write(entry.sid, record, timeoutMs);
    if (written === 'destroyed') return 'destroyed';
    logSaved(entry, changes, false);
    // Our write ran alone on a record nothing overtook: the store holds what we wrote; else see writeCopy.
    const current = overtaken ? undefined : written.current;
    const reason = current === undefined ? await ensureWritten(entry, changes, timeoutMs) : undefined;
    if (reason) return reason;
    entry.adopt(record, current, changes.now.keys());
    return undefined;
  } catch (err) {
    entry.restore(changes);
    throw err;
  }
}

/**
 * After a write that others overlapped: once they ended, read the record and write our changed
 * keys again where it lacks them (a few times at most). The invalid reason if the session is gone.
 */
async function ensureWritten(entry: SessionEntry, changes: Changes, timeoutMs: number): Promise<InvalidReason | undefined> {
  const { hub, sid } = entry;
  for (let attempt = 0; attempt < MAX_REREADS; attempt++) {
    await hub.whenQuiet(sid, timeoutMs);
    const { loaded } = await read(entry, timeoutMs);
    const reason = entry.goneReason(loaded);
    if (reason) return reason;
    const record = (loaded as { record: SessionRecord }).record;
    if (!merge(record, changes)) return undefined;
    log.save('%s: an overlapping write dropped our changes; writing them again', entry.tag);
    entry.keepTouchedExpiry(record);
    if ((await hub.write(sid, record, timeoutMs)) === 'destroyed') return 'destroyed';
  }
  return undefined;
}

/**
 * Check the session still exists, taking in what others wrote; extend its life in the store when
 * one of its sockets was active. The invalid reason when it is gone. Throws SessionUnavailableError.
 */
export async function revalidate(entry: SessionEntry, timeoutMs: number): Promise<InvalidReason | undefined> {
  if (entry.invalid) return undefined;
  // Always read: this is what notices a session removed behind the library's back (another
  // program, a store's own expiry clean-up, `store.clear()`), once per interval per session.
  const { loaded, settled } = await read(entry, timeoutMs);
  const reason = takeIn(entry, loaded, settled);
  if (reason) return reason;
  if (!entry.active) return undefined;
  entry.active = false;
  entry.touchCookie();
  const wasCurrent = entry.hub.live.unchangedSince(entry.sid, entry.mark);
  const written = await entry.hub.touch(entry.sid, entry.storableCopy(), timeoutMs);
  if (written === 'destroyed') return 'destroyed';
  if (wasCurrent) entry.markCurrent(written.current);
  return undefined;
}
