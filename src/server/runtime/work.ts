/**
 * The runtime's work on a session: a per-message batch (load, the handlers in turn, save, then the
 * acks), and the persistence it and the tasks use: how the loaded copy (SessionEntry) is brought up
 * to date, saved and revalidated through the store hub. Saving merges only the keys changed here into the
 * store's record, and reads that record first only when something else may have written it since
 * the copy was loaded: a write through this process (the hub's marks say), or any other process
 * when the store is shared and the copy was not just loaded in the same turn.
 */
import type { InvalidReason } from '../../protocol.js';
import { asUnavailable, type SessionValueError } from '../../errors.js';
import type { PerMessageUnit } from '../per-message.js';
import type { Changes } from '../tracker.js';
import type { Loaded, SessionRecord, WriteMark } from '../store.js';
import type { SessionEntry } from '../session-entry.js';
import { log } from '../log.js';

export interface SaveOptions {
  /** The copy was loaded in the same turn (or under the session lock). */
  trusted: boolean;
  timeoutMs: number;
  /** Told of each key left out of the save because its value cannot be stored (once per value). */
  refused(error: SessionValueError): void;
}

/** How many times a merge re-reads when writes keep landing during its read. */
const MAX_REREADS = 3;

/**
 * Run units of one entry as one batch: load, each handler in turn (a throwing one's changes are
 * undone, it gets no ack), save, then the acks. The load and the save are in the same turn (and
 * under the session lock, when there is one), so the save trusts the load.
 */
export function runBatch(units: PerMessageUnit[]): Promise<void> {
  // Units of one session id normally share one entry; a retired entry's last units run on their own.
  const { entry } = units[0].host;
  for (const unit of units) if (unit.host.entry !== entry) return runGroups(byEntry(units));
  return runGroup(units);
}

async function runGroups(groups: PerMessageUnit[][]): Promise<void> {
  for (const group of groups) await runGroup(group);
}

/** What is awaited here is only what is pending: the store (the load when needed, the save), an async handler. */
async function runGroup(units: PerMessageUnit[]): Promise<void> {
  const { entry, timeoutMs } = units[0].host;
  let reason: InvalidReason | undefined;
  try {
    const loading = refresh(entry, timeoutMs);
    reason = typeof loading === 'object' ? await loading : loading;
  } catch (err) {
    return failAll(units, err);
  }
  if (reason) return ended(entry, units, reason);
  const ran: PerMessageUnit[] = [];
  for (const unit of units) {
    const running = unit.run(entry, ran.length === 0);
    if (typeof running === 'boolean' ? running : await running) ran.push(unit);
  }
  try {
    const saving = save(entry, { trusted: true, timeoutMs, refused: (error) => units[0].host.report(error) });
    reason = typeof saving === 'object' ? await saving : saving;
  } catch (err) {
    entry.discard();
    return failAll(ran, err);
  }
  if (reason) return ended(entry, ran, reason);
  for (const unit of ran) unit.succeed();
}

/** The session ended before these events ran (or were saved): each is told, then the sockets are told and disconnected. */
function ended(entry: SessionEntry, units: PerMessageUnit[], reason: InvalidReason): void {
  for (const unit of units) unit.notice('session-ended');
  entry.invalidate(reason);
}

/** The load or the save failed: every event of the batch is answered "unavailable" (values that cannot be stored were refused before). */
function failAll(units: PerMessageUnit[], err: unknown): void {
  const error = asUnavailable(err);
  for (const unit of units) unit.fail(error);
}

function byEntry(units: PerMessageUnit[]): PerMessageUnit[][] {
  const groups = new Map<SessionEntry, PerMessageUnit[]>();
  for (const unit of units) {
    const group = groups.get(unit.host.entry);
    if (group) group.push(unit);
    else groups.set(unit.host.entry, [unit]);
  }
  return [...groups.values()];
}

/**
 * Read the record; with `hub.read`'s errors. Re-reads while writes land during the read (bounded).
 * `settled`: the hub's mark at which the record read is the store's (no write of ours during the read).
 */
async function read(entry: SessionEntry, timeoutMs: number): Promise<{ loaded: Loaded; settled: WriteMark | undefined }> {
  const { hub, sid } = entry;
  for (let attempt = 1; ; attempt++) {
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

async function reload(entry: SessionEntry, timeoutMs: number): Promise<InvalidReason | undefined> {
  const { loaded, settled } = await read(entry, timeoutMs);
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
 * stored is left out (the other keys are saved) and given to `refused`, once per value.
 */
export function save(entry: SessionEntry, { trusted, timeoutMs, refused }: SaveOptions): InvalidReason | undefined | Promise<InvalidReason | undefined> {
  if (entry.invalid || !entry.touched) return undefined;
  const changes = entry.takeChanges();
  changes.refused.forEach(refused);
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
  const reason = entry.goneReason(loaded);
  if (reason) return reason;
  entry.adopt((loaded as { record: SessionRecord }).record, settled);
  if (!entry.active) return undefined;
  entry.active = false;
  entry.touchCookie();
  const wasCurrent = entry.hub.live.unchangedSince(entry.sid, entry.mark);
  const written = await entry.hub.touch(entry.sid, entry.storableCopy(), timeoutMs);
  if (written === 'destroyed') return 'destroyed';
  if (wasCurrent) entry.markCurrent(written.current);
  return undefined;
}
