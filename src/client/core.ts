/**
 * The core of socket.io-sessions, without the option check: what the size budget measures
 * (dist/client/index.min.js, also the npm entry under the `production` export condition) and what
 * the script-tag add-on carries. index.ts is the same API with misspelled options caught.
 *
 * @example
 * ```ts
 * import { connectWithSession } from 'socket.io-sessions';
 * const socket = connectWithSession();          // same origin, session cookie
 * socket.sessions.on('invalid', (ctx) => console.log(ctx.reason, ctx.action));
 * socket.emit('hello');                           // everything else is plain socket.io-client
 * ```
 */
import { io } from 'socket.io-client';
import { createConnectWithSession } from './connect.js';

export const connectWithSession = createConnectWithSession(io);
export { createConnectWithSession };
export { SessionEventEmitter, controllerOf } from './connect.js';
export type { ConnectWithSessionOptions, SessionSocket, SharedSocket, TabsProvider, SdkEmitter, SessionController, SessionClientEvents, SessionState, InvalidContext, UnavailableContext } from './connect.js';
export type { InvalidAction, OnInvalid } from './invalid-policy.js';
export { takeReload } from './invalid-policy.js';
export { ErrorCode, Events, type InvalidReason, type UnavailableReason, type SessionErrorData, type EmitNotice, type NoticeReason } from '../protocol.js';
export { SessionError, SessionInvalidError, SessionUnavailableError, OriginNotAllowedError, SessionOptionsError, SessionEmitError } from '../errors.js';
