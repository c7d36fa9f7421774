/**
 * socket.io-sessions: connect to a session-aware Socket.IO server with the page's session.
 * The core (core.ts) plus the option check: a misspelled option of `connectWithSession()`,
 * `tickets()` or `sharedTabs()` throws `SessionOptionsError` naming the nearest option. Bundlers
 * that build with the `production` export condition (Vite, webpack in production mode) get the
 * core alone (dist/client/index.min.js), as the size budget counts it.
 *
 * @example
 * ```ts
 * import { connectWithSession } from 'socket.io-sessions';
 * const socket = connectWithSession();          // same origin, session cookie
 * socket.sessions.on('invalid', (ctx) => console.log(ctx.reason, ctx.action));
 * socket.emit('hello');                           // everything else is plain socket.io-client
 * ```
 */
import { connectWithSession as connectUnchecked } from './core.js';
import { withOptionCheck } from './option-check.js';

export * from './core.js';
export const connectWithSession = withOptionCheck(connectUnchecked);
