/**
 * socket.io-sessions/server: the express-session of the handshake as `socket.session`.
 */
import type { SocketSession } from './session-entry.js';

export { sessions, SessionServer, type SessionServerEvents } from './sessions.js';
export { enable, type EnableOptions } from './enable.js';
export type { SessionsOptions, Cutter, CookieParserMiddleware, OriginCheck } from './options.js';
export type { SocketSession } from './session-entry.js';
export type { TokenEndpointOptions } from './http/token-endpoint.js';
export { redisLock, type SessionLock, type RedisLockClient, type RedisLockOptions } from './lock.js';
export { MAX_TICKET_LENGTH } from './tickets.js';
export {
  ErrorCode,
  Events,
  CLIENT_SCRIPT_NAME,
  DEFAULT_TOKEN_PATH,
  TICKET_AUTH_FIELD,
  NOTICE_FIELD,
  noticeOf,
  type EmitNotice,
  type NoticeReason,
  type InvalidReason,
  type UnavailableReason,
  type SessionErrorData,
  type Ticket,
} from '../protocol.js';
export { SessionError, SessionInvalidError, SessionUnavailableError, OriginNotAllowedError, SessionOptionsError, SessionValueError, SessionHandlerError, type SessionServerError } from '../errors.js';
export { MAX_DEPTH } from './storable.js';

declare module 'socket.io' {
  // Same type parameters as socket.io's Socket class, so the declarations merge.
  interface Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
    /**
     * The session `sessions()` bound at this socket's handshake: an express-session `Session`
     * whose changes are saved as the mode says. Undefined on a namespace without `sessions()`
     * (typed as present: use `sio.sessionOf(socket)` where that can happen).
     */
    readonly session: SocketSession;
  }
}
