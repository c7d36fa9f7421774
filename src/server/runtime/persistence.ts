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
import type { Loaded, SessionRecord, WriteMark } from '../store.js';
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
    if (settled !== undefined || attempt >= MAX_REREADS || !('record' in loaded)) return { loaded, settled };
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

/**
 * Bring the copy up to date before a unit of work: reload unless nothing can have changed it (then
 * the answer is not a promise: nothing waits a turn for it). The invalid reason when the session is
 * gone. Throws (or rejects with) SessionUnavailableError.
 */
export function refresh(entry: SessionEntry, timeoutMs: number): InvalidReason | undefined | Promise<InvalidReason | undefined> {
  if (entry.invalid) return entry.invalid;
  if (entry.trustworthy) return undefined;
  return reload(entry, timeoutMs);
}

/** Reload the copy. The first read is answered in one `.then` (no async layers for the common case); re-reads as `read`. */
function reload(entry: SessionEntry, timeoutMs: number): Promise<InvalidReason | undefined> {
  const { hub, sid } = entry;
  const before = hub.live.mark(sid);
  return hub.read(sid, timeoutMs).then((loaded) => {
    if (hub.live.unchangedSince(sid, before)) return takeIn(entry, loaded, before);
    if (!('record' in loaded)) return takeIn(entry, loaded, undefined);
    return read(entry, timeoutMs, 2).then((again) => takeIn(entry, again.loaded, again.settled));
  });
}

/** Take a read's answer into the copy (`settled`: the mark at which it is the store's); the invalid reason when the session is gone. */
function takeIn(entry: SessionEntry, loaded: Loaded, settled: WriteMark | undefined): InvalidReason | undefined {
  const reason = entry.goneReason(loaded);
  if (reason) return reason;
  entry.adopt((loaded as { record: SessionRecord }).record, settled);
  return undefined;
}

/**
 * Save the keys changed here, merged into the store's record. `trusted`: the copy was loaded in the
 * same turn (or under the session lock), so the record is read first only if a write through this
 * process came since. Returns the invalid reason when the session is gone. Throws
 * SessionUnavailableError (the changes stay, to be saved next time). A key whose value cannot be
 * stored is left out (the other keys are saved) and reported to `refusals`, once per value.
 */
export function save(entry: SessionEntry, trusted: boolean, timeoutMs: number, refusals: Refusals): InvalidReason | undefined | Promise<InvalidReason | undefined> {
  if (entry.invalid || !entry.touched) return undefined;
  const changes = entry.takeChanges();
  for (const error of changes.refused) refusals.report(error);
  if (changes.now.size === 0) return undefined; // nothing to write: no promise, no turn
  return write(entry, changes, trusted && entry.current, timeoutMs);
}

/** Write `changes` (taken from the entry). If the store fails they are given back to the entry, to be saved next time. */
async function write(entry: SessionEntry, changes: Changes, fromCopy: boolean, timeoutMs: number): Promise<InvalidReason | undefined> {
  try {
    let record: SessionRecord;
    /** A write of ours overtook the read the record came from. */
    let overtaken = false;
    if (fromCopy) record = entry.storableCopy();
    else {
      const got = await read(entry, timeoutMs);
      const reason = entry.goneReason(got.loaded);
      if (reason) return reason;
      record = (got.loaded as { record: SessionRecord }).record;
      overtaken = got.settled === undefined;
      merge(record, changes);
    }
    entry.keepTouchedExpiry(record);
    const written = await entry.hub.write(entry.sid, record, timeoutMs);
    if (written === 'destroyed') return 'destroyed';
    if (log.save.enabled) log.save('%s saved %d key(s)%s', entry.tag, changes.now.size, fromCopy ? '' : ' (merged into the store record)');
    // Our write ran alone (the hub's answer) on a record nothing overtook: the store holds what we wrote.
    const current = overtaken ? undefined : written.current;
    // Else another write of the session through this process overlapped ours (an HTTP request saving
    // its whole, older copy): it may have landed after ours. Make sure what we changed is in the store.
    const reason = current === undefined ? await ensureWritten(entry, changes, timeoutMs) : undefined;
    if (reason) return reason;
    if (fromCopy) entry.markCurrent(current);
    else entry.adopt(record, current, changes.now.keys());
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
