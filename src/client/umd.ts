/**
 * Script-tag add-on (dist/umd/socket.io-sessions.js, served at /socket.io/socket.io-sessions.js):
 * after `<script src="/socket.io/socket.io.js">`, attaches `io.connectWithSession` to the global
 * `io` (the seed's API) and exposes the global `ioSessions` with `connectWithSession`, the error
 * codes and the error classes the SDK itself raises (a store outage is told by
 * `err.code === ErrorCode.SESSION_UNAVAILABLE`). Its socket.io-client is that global `io`
 * (global-io.ts is swapped in for `socket.io-client` by rollup.config.mjs). The namespace is kept small on purpose: every
 * export costs bytes in a file that has a 3 KB budget; the npm and CDN builds export everything.
 * The option check (option-check.ts) is in the second part of the served script (tickets-umd.ts).
 */
import { io } from './global-io.js';
import { connectWithSession } from './core.js';

export { connectWithSession, ErrorCode, SessionError, SessionInvalidError, OriginNotAllowedError, SessionOptionsError, SessionEmitError, takeReload, SessionEventEmitter, controllerOf } from './core.js';

(io as typeof io & { connectWithSession?: typeof connectWithSession }).connectWithSession = connectWithSession;
