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

const ROOM_PREFIX = 'sio-sessions#';

/** The room every socket of one session joins. */
export function sessionRoom(sid: string): string {
  return ROOM_PREFIX + createHash('sha256').update(sid).digest('base64url').slice(0, 27);
}

export const isSessionRoom = (room: unknown): room is string => typeof room === 'string' && room.startsWith(ROOM_PREFIX);

/**
 * Sessions destroyed recently (on this node, or on another one that told us through the
 * adapter), by room name, so that a save already under way, or a handshake that loaded the
 * session a moment before the logout, cannot bring the session back. It also remembers this
 * node's recent saves: a destroy on another node can land between our read and our write, and
 * its notice reach us after the write; then the destroy must be repeated.
 */
export class Tombstones {
  private readonly destroyedAt = new Map<string, number>();
  private readonly writes = new Map<string, { sid: string; at: number }>();
  constructor(private readonly keepMs = 10 * 60_000, private readonly writeWindowMs = 10_000) {}

  /** Remember a destroyed session; returns the id when this node wrote it within the window (destroy it again). */
  add(room: string, now = Date.now()): string | undefined {
    this.destroyedAt.delete(room); // re-insert so the map stays ordered by time
    this.destroyedAt.set(room, now);
    prune(this.destroyedAt, (at) => now - at > this.keepMs);
    const write = this.writes.get(room);
    return write && now - write.at <= this.writeWindowMs ? write.sid : undefined;
  }

  has(room: string): boolean {
    return this.destroyedAt.has(room);
  }

  /** This node just wrote the session of `room`. */
  wrote(room: string, sid: string, now = Date.now()): void {
    this.writes.delete(room);
    this.writes.set(room, { sid, at: now });
    prune(this.writes, (w) => now - w.at > this.writeWindowMs);
  }
}

/** Drop the oldest entries of an insertion-ordered map while `old(value)` holds. */
function prune<V>(map: Map<string, V>, old: (value: V) => boolean): void {
  for (const [key, value] of map) {
    if (!old(value)) break;
    map.delete(key);
  }
}

/**
 * Whether the namespace's adapter carries server-side events to other nodes (the Redis adapter
 * does; the default in-memory one only warns). Found by where `serverSideEmit` is defined: on the
 * base adapter class itself (whose parent is EventEmitter) means "not supported".
 */
export function adapterReachesOtherNodes(adapter: object): boolean {
  let proto = Object.getPrototypeOf(adapter);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, 'serverSideEmit')) proto = Object.getPrototypeOf(proto);
  if (!proto) return false;
  const parent = Object.getPrototypeOf(proto);
  return !!parent && Object.prototype.hasOwnProperty.call(parent, 'serverSideEmit');
}
