/**
 * `socket.session` on every socket: a getter on socket.io's Socket prototype, put there while a
 * `sessions()` instance is open and taken back by the last one's close().
 */
import type { Socket } from 'socket.io';
import { sessionOfSocket } from './connection.js';

/**
 * `socket.session` for every socket of the process: a getter on socket.io's Socket prototype reading
 * the socket's own binding (nothing is added per socket). Installed while a `sessions()` instance
 * is open; returns a disposer. A prototype patch, so it must be undoable: the last instance's close()
 * puts back what was there before (or deletes it).
 */
let installed: { proto: object; users: number; previous?: PropertyDescriptor } | undefined;
export function installSessionGetter(socket: Socket): () => void {
  const proto = Object.getPrototypeOf(socket) as object;
  if (!installed) {
    installed = { proto, users: 0, previous: Object.getOwnPropertyDescriptor(proto, 'session') };
    Object.defineProperty(proto, 'session', {
      configurable: true,
      enumerable: false,
      get(this: Socket) {
        return sessionOfSocket(this);
      },
      set() {
        throw new TypeError('socket.io-sessions: socket.session is read-only (change its keys instead)');
      },
    });
  }
  const current = installed;
  current.users += 1;
  let disposed = false;
  return () => {
    if (disposed) return;
    disposed = true;
    if (--current.users > 0 || installed !== current) return;
    installed = undefined;
    if (current.previous) Object.defineProperty(current.proto, 'session', current.previous);
    else delete (current.proto as { session?: unknown }).session;
  };
}
