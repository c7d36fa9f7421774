/**
 * Knowing when a session is destroyed: the store's `destroy` (called by `req.session.destroy()`,
 * `regenerate()`, or expiry clean-up) is wrapped once per store, and every sessions() instance
 * sharing that store hears of it. Each socket sits in a room named after a hash of its session
 * id, so the raw id never appears in room names or adapter traffic.
 */
import { createHash } from 'node:crypto';
import type { Store } from 'express-session';

type DestroyListener = (sid: string) => void;
const listenersByStore = new WeakMap<Store, Set<DestroyListener>>();

/** Call `listener(sid)` after every successful destroy through `store`. Returns a disposer. */
export function onStoreDestroy(store: Store, listener: DestroyListener): () => void {
  let listeners = listenersByStore.get(store);
  if (!listeners) {
    const set = new Set<DestroyListener>();
    listeners = set;
    listenersByStore.set(store, set);
    const destroy = store.destroy;
    store.destroy = function (this: Store, sid: string, callback?: (err?: unknown) => void) {
      return destroy.call(this, sid, (err?: unknown) => {
        if (!err) for (const notify of [...set]) notify(sid);
        callback?.(err);
      });
    };
  }
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The room every socket of one session joins. */
export function sessionRoom(sid: string): string {
  return `sio-sessions#${createHash('sha256').update(sid).digest('base64url').slice(0, 27)}`;
}

/**
 * Session ids destroyed recently on this node, so that a save already under way, or a handshake
 * that loaded the session a moment before the logout, cannot bring the session back.
 */
export class Tombstones {
  private readonly destroyedAt = new Map<string, number>();
  constructor(private readonly keepMs = 10 * 60_000) {}

  add(sid: string, now = Date.now()): void {
    this.destroyedAt.delete(sid); // re-insert so the map stays ordered by time
    this.destroyedAt.set(sid, now);
    for (const [id, at] of this.destroyedAt) {
      if (now - at <= this.keepMs) break; // insertion order: the rest are newer
      this.destroyedAt.delete(id);
    }
  }

  has(sid: string): boolean {
    return this.destroyedAt.has(sid);
  }
}
