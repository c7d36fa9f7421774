/**
 * `socket.session` on every socket: a getter on socket.io's Socket prototype, put there while a
 * `sessions()` instance is open and taken back by the last one's close().
 */
import type { Socket } from 'socket.io';
import { sessionOfSocket } from './connection.js';
import type { SocketSession } from './session-entry.js';

type Lookup = (socket: Socket) => SocketSession | undefined;

/**
 * What the getter reads, shared by every copy of this library in the process (the ESM and the
 * CommonJS build loaded side by side, or two installs of the package): each copy keeps its bindings
 * under its own symbol, so a getter of one copy alone would give `undefined` for the other's sockets,
 * and the first copy to close would take the getter from the other. So the getter lives on the
 * prototype once, under a key every copy finds (`Symbol.for`), and asks each open copy's lookup in
 * turn; the last copy to close puts back what was there before.
 */
interface Registry {
  /** The lookup of each copy with an open instance (usually one). */
  lookups: Lookup[];
  /** Open instances per lookup. */
  users: Map<Lookup, number>;
  previous: PropertyDescriptor | undefined;
  /** The getter put there (the app may have put its own over it since: then that one stays). */
  get: () => unknown;
}
const REGISTRY = Symbol.for('socket.io-sessions: socket.session getter');
type Proto = { [REGISTRY]?: Registry };

/**
 * `socket.session` for every socket of the process: a getter on socket.io's Socket prototype reading
 * the socket's own binding (nothing is added per socket). Installed while a `sessions()` instance
 * is open; returns a disposer. A prototype patch, so it must be undoable: the last instance's close()
 * (of any copy of the library) puts back what was there before (or deletes it).
 */
export function installSessionGetter(socket: Socket): () => void {
  const proto = Object.getPrototypeOf(socket) as Proto;
  let registry = proto[REGISTRY];
  if (!registry) {
    const lookups: Lookup[] = [];
    const get = function (this: Socket) {
      // (One lookup, as a rule: one copy of the library.)
      let session = lookups[0]?.(this);
      for (let i = 1; session === undefined && i < lookups.length; i++) session = lookups[i]!(this);
      return session;
    };
    registry = { lookups, users: new Map(), previous: Object.getOwnPropertyDescriptor(proto, 'session'), get };
    Object.defineProperty(proto, REGISTRY, { value: registry, configurable: true });
    Object.defineProperty(proto, 'session', {
      configurable: true,
      enumerable: false,
      get,
      set() {
        throw new TypeError('socket.io-sessions: socket.session is read-only (change its keys instead)');
      },
    });
  }
  const current = registry;
  const users = current.users.get(sessionOfSocket) ?? 0;
  if (users === 0) current.lookups.push(sessionOfSocket);
  current.users.set(sessionOfSocket, users + 1);
  let disposed = false;
  return () => {
    if (disposed) return;
    disposed = true;
    const left = current.users.get(sessionOfSocket)! - 1;
    if (left > 0) return void current.users.set(sessionOfSocket, left);
    current.users.delete(sessionOfSocket);
    current.lookups.splice(current.lookups.indexOf(sessionOfSocket), 1);
    if (current.lookups.length > 0 || proto[REGISTRY] !== current) return;
    delete proto[REGISTRY];
    // Put back what was there before, unless the app put its own `session` there since (it stays).
    if (Object.getOwnPropertyDescriptor(proto, 'session')?.get !== current.get) return;
    if (current.previous) Object.defineProperty(proto, 'session', current.previous);
    else delete (proto as { session?: unknown }).session;
  };
}
