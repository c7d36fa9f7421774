/**
 * Per-connection mode (the default): the session loaded at connect is the one handlers use; a
 * change is saved at most `saveDelay` ms after the event that made it (so a crash loses at most
 * that window), and once more when a socket leaves. A session nothing changed writes nothing.
 * The debounce is per session, not per socket: one timer for all of its sockets on this node.
 */
import type { SessionEntry } from './session-entry.js';
import type { ServerContext } from './context.js';
import { saveTask } from './tasks.js';

/** Schedule a save of `entry` within `saveDelay` (not pushed back by later events: under steady traffic a change still lands in time). */
export function saveSoon(entry: SessionEntry, ctx: ServerContext): void {
  entry.saveTimer ??= setTimeout(() => {
    entry.saveTimer = undefined;
    void saveTask(entry, ctx);
  }, ctx.options.saveDelay);
}
