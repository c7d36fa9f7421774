/**
 * socket.io-client as the script-tag add-on sees it: the global `io` that
 * `/socket.io/socket.io.js` defines. The add-on build (rollup.config.mjs) resolves
 * `socket.io-client` to this file, so the add-on carries the same code as the npm entry.
 */
import type { Lookup } from './connect.js';

const io = (globalThis as { io?: Lookup }).io;
if (typeof io !== 'function') {
  throw new Error('socket.io-sessions: the global "io" is missing; load /socket.io/socket.io.js first');
}

export { io };
