/**
 * Telling the nodes that a session was destroyed. The destroying node's store hub hears it
 * (its `destroy` is wrapped); other nodes hear it through the Socket.IO adapter as a server-side
 * event carrying the session's room name, a hash of its id, so the raw id never travels.
 */
import { createHash } from 'node:crypto';
import type { Namespace } from 'socket.io';

/** Server-side event (node to node) naming the room of a destroyed session. */
export const DESTROYED_EVENT = 'sio-sessions:destroyed';

const ROOM_PREFIX = 'sio-sessions#';

/** The name of a session on the wire and in logs: a hash of its id. */
export function sessionRoom(sid: string): string {
  return ROOM_PREFIX + createHash('sha256').update(sid).digest('base64url').slice(0, 27);
}

export const isSessionRoom = (room: unknown): room is string => typeof room === 'string' && room.startsWith(ROOM_PREFIX) && room.length <= 64;

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

/**
 * Relay destroys between the nodes of `namespace`: `tell(room)` sends one to the other nodes;
 * `heard(room)` is called for each one they send. Returns `tell` (undefined on a single node) and a disposer.
 */
export function relayDestroys(namespace: Namespace, heard: (room: string) => void): { tell?: (room: string) => void; dispose: () => void } {
  const emitter = namespace as unknown as { on(e: string, l: (room: unknown) => void): void; off(e: string, l: (room: unknown) => void): void };
  const listener = (room: unknown) => {
    if (isSessionRoom(room)) heard(room);
  };
  emitter.on(DESTROYED_EVENT, listener);
  const tell = adapterReachesOtherNodes(namespace.adapter) ? (room: string) => namespace.serverSideEmit(DESTROYED_EVENT, room) : undefined;
  return { tell, dispose: () => emitter.off(DESTROYED_EVENT, listener) };
}
