/**
 * The words both sides share: event names, error codes and reasons, paths.
 * The only file that `src/client` and `src/server` both import.
 */

/** Codes carried in `err.data.code` of a refused handshake and in pushed session events. */
export const ErrorCode = {
  /** No session, bad signature, unknown, expired or destroyed: retrying with the same credential cannot help. */
  SESSION_INVALID: 'SESSION_INVALID',
  /** The session store failed or timed out: transient, retry with backoff; the session may be fine. */
  SESSION_UNAVAILABLE: 'SESSION_UNAVAILABLE',
  /** The handshake's Origin is not allowed: fatal for this page, reloading cannot help. */
  ORIGIN_NOT_ALLOWED: 'ORIGIN_NOT_ALLOWED',
  /**
   * Per-event only (an {@link EmitNotice}): the event's handler threw, rejected or hung past
   * `handlerTimeout`, or what it stored cannot be serialised, or the server never delivers such an
   * event (a reserved name, too many arguments). Sending the same emit again will
   * most likely fail the same way; the session itself is fine.
   */
  EVENT_FAILED: 'EVENT_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a session is invalid. */
export type InvalidReason =
  /** no session id in the handshake (no cookie, empty cutter result) */
  | 'no-session-id'
  /** the cookie's signature matches none of the secrets */
  | 'bad-signature'
  /** the store has no such session */
  | 'not-found'
  /** the session's cookie expiry has passed */
  | 'expired'
  /** the session was destroyed (logout, login's regenerate, expiry clean-up) */
  | 'destroyed'
  /** the store returned something that is not a session (not an object, or no `cookie`): a retry cannot fix it */
  | 'corrupt'
  /** a ticket that is not a ticket: not a string, oversized, not a compact JWE */
  | 'ticket-malformed'
  /** a ticket that fails authentication: changed, or sealed with a key this server does not hold */
  | 'ticket-tampered'
  /** a ticket past its `exp` (also: a connected ticket socket that was not refreshed in time) */
  | 'ticket-expired'
  /** a ticket minted for another page origin */
  | 'ticket-audience'
  /** an in-band refresh with a ticket of another session */
  | 'ticket-session-mismatch'
  /** a socket recovered by `connectionStateRecovery` whose credential now names another session than the one it had (a logout and a login while it was away) */
  | 'session-changed';

/** Why the store could not answer, or the event could not be run now. All are transient: retry later. */
export type UnavailableReason =
  /** the store called back with an error (or threw) */
  | 'store-error'
  /** a store call took longer than `storeTimeout` */
  | 'store-timeout'
  /** the session's lock (`lock` option) could not be had in time */
  | 'lock-timeout'
  /** per-message mode: this socket already has `maxPendingEvents` events waiting; the event was not run */
  | 'queue-full'
  /** per-message mode: the event waited longer than `storeTimeout` for its turn; it was not run */
  | 'queue-timeout';

/** Why an emit that asked for an ack got an {@link EmitNotice} instead of its ack (invariant 7). */
export type NoticeReason =
  | UnavailableReason
  /** the handler threw or rejected; its changes were undone */
  | 'handler-error'
  /** the handler did not settle within `handlerTimeout`; its changes were undone */
  | 'handler-timeout'
  /** a value the handler stored cannot be serialised (BigInt, cycle, too deep, throwing getter); `key` names it */
  | 'not-storable'
  /** the server never delivers this event: its name is reserved (socket.io's, or `smessage`) or not a string, or it has more than 10,000 arguments */
  | 'event-refused'
  /** the session ended (logout, expiry, login elsewhere) before the event ran, or while it was buffered in the client */
  | 'session-ended';

/**
 * The answer to an emit that asked for an ack and did not get its ack: sent as the ack's only
 * argument, `{ [NOTICE_FIELD]: notice }`, so it names that emit (its ack id) and an emit is answered
 * exactly once. The SDK turns it into a `SessionEmitError` on that emit.
 */
export interface EmitNotice {
  code: ErrorCode;
  reason: NoticeReason;
  /** For `SESSION_UNAVAILABLE`: a hint in ms before retrying. */
  retryAfter?: number;
  /** For `not-storable`: the session key whose value cannot be stored. */
  key?: string;
}

/** The notice of an emit whose session ended before it ran (invariant 10): the server's, the SDK's and every tab's. */
export const SESSION_ENDED: EmitNotice = { code: ErrorCode.SESSION_INVALID, reason: 'session-ended' };

/** The field of an ack's only argument that marks it as an {@link EmitNotice}. */
export const NOTICE_FIELD = 'sio-sessions:notice';

/** The notice carried by an ack's arguments, if they are one. */
export function noticeOf(args: ArrayLike<unknown>): EmitNotice | undefined {
  // (Only an object has the field, and only an object has a `reason`: what comes over the wire is JSON.)
  const notice = args.length === 1 ? ((args[0] as Record<string, unknown> | null | undefined)?.[NOTICE_FIELD] as EmitNotice | null | undefined) : undefined;
  return typeof notice?.reason === 'string' ? notice : undefined;
}

/** `err.data` of a refused handshake, and the payload of {@link Events.INVALID}. */
export interface SessionErrorData {
  code: ErrorCode;
  reason: InvalidReason | UnavailableReason | 'origin';
  /** For `SESSION_UNAVAILABLE`: a hint in ms before retrying. */
  retryAfter?: number;
  /** The server's message, when it can name the likely cause of a refusal and the option that fixes it (as `err.message`). */
  message?: string;
}

/** Events the server pushes to a connected client. */
export const Events = {
  /** The session went bad mid-connection; a server `disconnect` follows. Payload: {@link SessionErrorData}. */
  INVALID: 'sio-sessions:invalid',
  /** A store failure while handling an event (per-message mode); the event was not run. Payload: {@link SessionErrorData}. */
  UNAVAILABLE: 'sio-sessions:unavailable',
} as const;

/** Credential events: ticket expiry and refresh, cookie renewal (kept apart from {@link Events}: the core client does not carry them). */
export const CredentialEvents = {
  /** Server → client, after a ticket connect or refresh: when the socket's credential runs out. Payload: {@link CredentialExpiry}. */
  CREDENTIAL: 'sio-sessions:credential',
  /** Client → server, with ack: a new ticket for the live socket (in-band refresh, no reconnect). Ack: {@link RefreshResult}. */
  REFRESH: 'sio-sessions:refresh',
  /**
   * Server → client: the browser's session cookie expires soon while the socket keeps the session
   * alive; renew it over HTTP (`GET <token endpoint>?renew=1`; `tickets({ tokenUrl })` does). Payload: `{ expiresAt }`.
   */
  RENEW_COOKIE: 'sio-sessions:renew-cookie',
} as const;

/** The field of the handshake `auth` payload that carries a ticket. */
export const TICKET_AUTH_FIELD = 'sessionTicket';

/** A ticket is a few hundred characters; anything far larger is refused before parsing (the server), or not sent (the SDK). */
export const MAX_TICKET_LENGTH = 2048;

/** Where the token endpoint answers unless told otherwise. */
export const DEFAULT_TOKEN_PATH = '/socket.io-sessions/token';

/** The global the served script puts its embedded ticket on: `globalThis[EMBED_GLOBAL].ticket`. */
export const EMBED_GLOBAL = '__socketIoSessions';

/**
 * The embedded ticket when the server could not tell whether the request has a session (its store
 * failed): a string, never a ticket (those are objects), distinct from `null` (no session). The SDK
 * retries it with backoff as an unavailable credential source, never as "no session".
 */
export const EMBED_UNAVAILABLE = 'unavailable';

/** A sealed ticket as the token endpoint and the served script hand it out. */
export interface Ticket {
  token: string;
  /** Epoch ms, by the server's clock. */
  expiresAt: number;
  /** ms from when it was issued: what clients schedule with, immune to clock skew. */
  expiresIn: number;
}

/** Payload of {@link CredentialEvents.CREDENTIAL}. */
export interface CredentialExpiry {
  expiresAt: number;
  expiresIn: number;
}

/** Ack of {@link CredentialEvents.REFRESH}. */
export type RefreshResult = ({ ok: true } & CredentialExpiry) | ({ ok: false } & SessionErrorData);

/** File name of the served browser add-on, under the Socket.IO path (seed path: `/socket.io/socket.io-sessions.js`). */
export const CLIENT_SCRIPT_NAME = 'socket.io-sessions.js';

/** Default express-session cookie name. */
export const DEFAULT_COOKIE_NAME = 'connect.sid';

/** True when `data` looks like the `err.data` of a handshake refused by this library. */
export function isSessionErrorData(data: unknown): data is SessionErrorData {
  // (A primitive's `code` is undefined, as is a missing one's.)
  return Object.values(ErrorCode).includes((data as SessionErrorData | null)?.code!);
}
