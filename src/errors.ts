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
    super(`emit '${event}' failed: ${notice.reason}`); // `notice.key` names a not-storable key
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

/**
 * A value in the session cannot be stored (invariant 8): a BigInt, a cycle, the session itself,
 * a throwing getter or `toJSON`, nesting deeper than `MAX_DEPTH`, or an accessor defined on the
 * session. `key` names the session key. In per-message mode the event that stored it fails alone
 * (its changes undone; its ack is a `not-storable` notice); in per-connection mode the key is left
 * out of the saves until it holds a storable value. Reported once through `serror`.
 */
export class SessionValueError extends TypeError {
  override readonly name = 'SessionValueError';
  readonly code = ErrorCode.EVENT_FAILED;
  readonly reason = 'not-storable' as const;
  constructor(
    readonly key: string,
    /** What is wrong with the value, in words. */
    readonly problem: string,
  ) {
    super(
      `socket.io-sessions: session key '${key}' cannot be stored: ${problem}. A session holds JSON data only ` +
        '(strings, numbers, booleans, null, plain objects and arrays); the key was not stored',
    );
  }

  /** The notice an emit that stored it gets as its ack. */
  get notice(): EmitNotice {
    return { code: this.code, reason: this.reason, key: this.key };
  }
}

/**
 * The app's own code failed where the library called it: a per-message handler threw or rejected
 * (`handler-error`) or did not settle within `handlerTimeout` (`handler-timeout`; its changes were
 * undone and its later writes are not saved), a `cutter` or `parser` threw (`handler-error`, the
 * handshake gets `no-session-id`). `cause` is what the app's code threw (for a timeout: its pending
 * promise is not awaited any more).
 */
export class SessionHandlerError extends Error {
  override readonly name = 'SessionHandlerError';
  readonly code = ErrorCode.EVENT_FAILED;
  constructor(
    readonly reason: 'handler-error' | 'handler-timeout',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`socket.io-sessions: ${message}`, options);
  }

  /** The notice an emit whose handler failed gets as its ack. */
  get notice(): EmitNotice {
    return { code: this.code, reason: this.reason };
  }
}

/** What the app's code threw, in a line (it may throw anything, even a value whose toString throws). */
export function describeThrown(thrown: unknown): string {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown);
  } catch {
    return 'a value that cannot be shown';
  }
}

/** A failure on the way to the store (or the lock), typed: the store's own error becomes its `cause`. */
export function asUnavailable(err: unknown): SessionUnavailableError {
  return err instanceof SessionUnavailableError ? err : new SessionUnavailableError('store-error', 1000, { cause: err });
}

/**
 * What `serror` can carry: the store failed or timed out ({@link SessionUnavailableError}), a record
 * is not a session ({@link SessionInvalidError}, reason `corrupt`), a value cannot be stored
 * ({@link SessionValueError}), or the app's own code failed ({@link SessionHandlerError}, `cause` is
 * what it threw). Branch on the class or on `code`/`reason`.
 */
export type SessionServerError = SessionUnavailableError | SessionInvalidError | SessionValueError | SessionHandlerError;
