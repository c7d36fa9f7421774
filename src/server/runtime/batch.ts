/**
 * A per-message batch: the waiting events of one session and one `sessions()` instance, run as one
 * unit of work: load (only if something may have changed the copy), each handler in turn, one save,
 * then the acks. What is awaited is only what is pending: the store, an async handler.
 */
import type { InvalidReason } from '../../protocol.js';
import { asUnavailable } from '../../errors.js';
import type { SessionEntry } from '../session-entry.js';
import type { EventUnit } from './event.js';
import { refresh, save } from './persistence.js';

/** The runtime a batch runs in (index.ts): it tells the session's sockets the session ended. */
export interface BatchOwner {
  invalidate(reason: InvalidReason, entry: SessionEntry): void;
}

/**
 * Run units of one entry as one batch: load, each handler in turn (a throwing one's changes are
 * undone, it gets no ack), save, then the acks. The load and the save are in the same turn (and
 * under the session lock, when there is one), so the save trusts the load.
 */
export function runBatch(runtime: BatchOwner, units: EventUnit[]): Promise<void> {
  // Units of one session id normally share one entry; a retired entry's last units run on their own.
  const { entry } = units[0].source;
  for (const unit of units) if (unit.source.entry !== entry) return runGroups(runtime, byEntry(units));
  return runGroup(runtime, units);
}

async function runGroups(runtime: BatchOwner, groups: EventUnit[][]): Promise<void> {
  for (const group of groups) await runGroup(runtime, group);
}

/** What is awaited here is only what is pending: the store (the load when needed, the save), an async handler. */
async function runGroup(runtime: BatchOwner, units: EventUnit[]): Promise<void> {
  const { entry } = units[0].source;
  const timeoutMs = units[0].options.storeTimeout;
  let reason: InvalidReason | undefined;
  try {
    const loading = refresh(entry, timeoutMs);
    reason = typeof loading === 'object' ? await loading : loading;
  } catch (err) {
    return failAll(units, err);
  }
  if (reason) return ended(runtime, entry, units, reason);
  const ran: EventUnit[] = [];
  for (const unit of units) {
    const running = unit.run(entry, ran.length === 0);
    if (typeof running === 'boolean' ? running : await running) ran.push(unit);
  }
  try {
    const saving = save(entry, true, timeoutMs, units[0].source);
    reason = typeof saving === 'object' ? await saving : saving;
  } catch (err) {
    entry.discard();
    return failAll(ran, err);
  }
  if (reason) return ended(runtime, entry, ran, reason);
  for (const unit of ran) unit.succeed();
}

/** The session ended before these events ran (or were saved): each is told, then the sockets are told and disconnected. */
function ended(runtime: BatchOwner, entry: SessionEntry, units: EventUnit[], reason: InvalidReason): void {
  for (const unit of units) unit.notice('session-ended');
  runtime.invalidate(reason, entry);
}

/** The load or the save failed: every event of the batch is answered "unavailable" (values that cannot be stored were refused before). */
function failAll(units: EventUnit[], err: unknown): void {
  const error = asUnavailable(err);
  for (const unit of units) unit.fail(error);
}

function byEntry(units: EventUnit[]): EventUnit[][] {
  const groups = new Map<SessionEntry, EventUnit[]>();
  for (const unit of units) {
    const group = groups.get(unit.source.entry);
    if (group) group.push(unit);
    else groups.set(unit.source.entry, [unit]);
  }
  return [...groups.values()];
}
