/**
 * A small error hierarchy shared by server and client: branch on the class or on `code`,
 * never on message text.
 */
import { ErrorCode, type EmitNotice, type SessionErrorData } from './protocol.js';

/** Base class of every session outcome that is not "connected". `data` travels in `err.data` of a refused handshake. */
export class SessionError extends Error {
  override readonly name: string = 'SessionError';
  readonly code: ErrorCode;
  readonly reason: SessionErrorData['reason'];
  readonly data: SessionErrorData;

  constructor(message: string, data: SessionErrorData, options?: { cause?: unknown }) {
    super(message, options);
    this.code = data.code;
    this.reason = data.reason;
    this.data = data;
  }
}

/** The session is gone or was never there: a fresh credential (or a new login) is needed. */
export class SessionInvalidError extends SessionError {
  override readonly name = 'SessionInvalidError';
  constructor(reason: SessionErrorData['reason'], options?: { cause?: unknown }) {
    super(`session invalid (${reason})`, { code: ErrorCode.SESSION_INVALID, reason }, options);
  }
}

/** The session store failed or timed out: transient, retry later. */
export class SessionUnavailableError extends SessionError {
  override readonly name = 'SessionUnavailableError';
  constructor(reason: SessionErrorData['reason'], retryAfter?: number, options?: { cause?: unknown }) {
    super(`session store unavailable (${reason})`, { code: ErrorCode.SESSION_UNAVAILABLE, reason, retryAfter }, options);
  }
}

/** The page's Origin is not on the server's allowlist. */
export class OriginNotAllowedError extends SessionError {
  override readonly name = 'OriginNotAllowedError';
  constructor() {
    super('origin not allowed', { code: ErrorCode.ORIGIN_NOT_ALLOWED, reason: 'origin' });
  }
}

/**
 * One emit that asked for an ack got a notice instead (invariant 7): `emitWithAck` rejects with it,
 * `socket.timeout(ms).emit(..., (err) => ...)` gets it as `err`. `code`/`reason` say why
 * (`SESSION_UNAVAILABLE`: retry later; `SESSION_INVALID` 'session-ended'; `EVENT_FAILED`).
 */
export class SessionEmitError extends Error {
  override readonly name = 'SessionEmitError';
  readonly code: EmitNotice['code'];
  readonly reason: EmitNotice['reason'];
  readonly notice: EmitNotice;
  constructor(notice: EmitNotice, readonly event?: string) {
    super(`emit${event === undefined ? '' : ` '${event}'`} failed: ${notice.reason}${notice.key === undefined ? '' : ` (key '${notice.key}')`}`);
    this.code = notice.code;
    this.reason = notice.reason;
    this.notice = notice;
  }
}

/** Bad options passed to `sessions()`, `enable()` or `connectWithSession()`. Thrown at once, synchronously. */
export class SessionOptionsError extends TypeError {
  override readonly name = 'SessionOptionsError';
  readonly code = 'INVALID_OPTIONS';
}
