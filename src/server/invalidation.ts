/**
 * Telling the nodes that a session was destroyed. The destroying node's store hub hears it
 * (its `destroy` is wrapped); other nodes hear it through the Socket.IO adapter as a server-side
 * event carrying the session's tag, a hash of its id, so the raw id never travels.
 */
import { createHash } from 'node:crypto';
import type { Namespace } from 'socket.io';

/** Server-side event (node to node) naming the tag of a destroyed session. */
export const DESTROYED_EVENT = 'sio-sessions:destroyed';

const TAG_PREFIX = 'sio-sessions#';

/**
 * A session's tag: its name on the wire, in logs and in the destroyed set, a hash of its id (never a
 * socket.io room; the wire value keeps its 'sio-sessions#' prefix).
 */
export function sessionTag(sid: string): string {
  return TAG_PREFIX + createHash('sha256').update(sid).digest('base64url').slice(0, 27);
}

export const isSessionTag = (tag: unknown): tag is string => typeof tag === 'string' && tag.startsWith(TAG_PREFIX) && tag.length <= 64;

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
 * Relay destroys between the nodes of `namespace`: `tell(tag)` sends one to the other nodes;
 * `heard(tag)` is called for each one they send. Returns `tell` (undefined on a single node) and a disposer.
 *
 * A parent namespace (`io.of(/regex/)` or a function) has an adapter of its own that reaches no other
 * node, and its children exist on a node only while clients use them there: its destroys travel on
 * the main namespace (`io.sockets`), which every node has, when that one's adapter reaches the others.
 */
export function relayDestroys(namespace: Namespace, heard: (tag: string) => void): { tell?: (tag: string) => void; dispose: () => void } {
  const main = namespace.server.sockets;
  const via = !adapterReachesOtherNodes(namespace.adapter) && adapterReachesOtherNodes(main.adapter) ? main : namespace;
  const emitter = via as unknown as { on(e: string, l: (tag: unknown) => void): void; off(e: string, l: (tag: unknown) => void): void };
  const listener = (tag: unknown) => {
    if (isSessionTag(tag)) heard(tag);
  };
  emitter.on(DESTROYED_EVENT, listener);
  const tell = adapterReachesOtherNodes(via.adapter) ? (tag: string) => via.serverSideEmit(DESTROYED_EVENT, tag) : undefined;
  return { tell, dispose: () => emitter.off(DESTROYED_EVENT, listener) };
}
