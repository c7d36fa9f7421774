import type { IncomingMessage } from 'node:http';
import type { Store } from 'express-session';
import { DEFAULT_COOKIE_NAME } from '../protocol.js';
import { SessionOptionsError } from '../errors.js';
import { unknownOption } from '../options-check.js';
import type { SessionLock } from './lock.js';
import { GRACE_MS as TICKET_GRACE_MS } from './ticket-refresh.js';

/** Reads a session id from the handshake request, as the seed's `cutter` did. A value starting with `s:` is unsigned with `secret`. */
export type Cutter = (req: IncomingMessage) => string | null | undefined | Promise<string | null | undefined>;

/** A Connect-style cookie parser middleware (e.g. `cookieParser(secret)`), as in the seed's `parser` option. */
export type CookieParserMiddleware = (req: any, res: any, next: (err?: unknown) => void) => void;

/** Decides whether a browser Origin may open a cookie-authenticated socket. */
export type OriginCheck = (origin: string, req: IncomingMessage) => boolean;

/**
 * Options of {@link sessions}. Use the same `store`, `secret` and `name` as your express-session middleware.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * app.use(session({ store, secret: ['new', 'old'] }));
 * const sio = sessions(io, { store, secret: ['new', 'old'] });
 * ```
 */
export interface SessionsOptions {
  /** The express-session store the HTTP side uses (MemoryStore, connect-redis, …). Required. */
  store: Store;
  /**
   * The express-session secret, or a list for rotation: cookies signed with any of them are accepted.
   * Required unless a `cutter` returns raw (unsigned) ids.
   */
  secret?: string | string[];
  /**
   * The session cookie's name.
   * @default 'connect.sid'
   */
  name?: string;
  /**
   * Per-message mode: reload the session before every event, save it after the handler (also async),
   * send the ack after the save, and run the events of one session one at a time on this node.
   * @default false (per-connection: load at connect, save changes shortly after they happen and at disconnect)
   */
  perMessage?: boolean;
  /** Seed-style function that returns the session id from the handshake request; used when no signed cookie is found. */
  cutter?: Cutter;
  /** Seed-style cookie parser middleware; used when neither the cookie nor `cutter` gave an id. */
  parser?: CookieParserMiddleware;
  /**
   * Origins allowed to open cookie-authenticated sockets (Cross-Site WebSocket Hijacking defence).
   * A list of exact origins (`'https://app.example.com'`) or a function.
   * Requests without an `Origin` header (non-browser clients, same-origin polling GETs) are allowed.
   * @default the request's own host: `Origin` must be `http(s)://<Host header>`
   */
  origins?: string[] | OriginCheck;
  /**
   * How long a store call may take before the handshake is refused as `SESSION_UNAVAILABLE`. Also
   * the deadline of each per-message event, counted from its arrival (waiting for its turn, for the
   * lock, and the store calls): past it the event is not run and the client is told it is unavailable.
   * @default 5000
   */
  storeTimeout?: number;
  /**
   * Per-connection mode: how long after an event a changed session is saved (debounce), in ms.
   * @default 1000
   */
  saveDelay?: number;
  /**
   * How often an open socket checks that its session still exists (expiry, destroy by a process
   * without this library) and, if the socket was active, extends the session's life in the store (touch). In ms; 0 turns it off.
   * @default 60000
   */
  revalidateInterval?: number;
  /**
   * A lock per session across nodes (e.g. {@link redisLock}): every unit of work on a session
   * (per-message reload + handler + save, per-connection saves, revalidation) holds it, and so do
   * HTTP requests behind `sio.httpLock()`. Without it, units of one session are serialized per
   * node only, and concurrent writes from several nodes merge per top-level key (last writer wins).
   */
  lock?: SessionLock;
  /**
   * Per-message mode: how many of one socket's events may wait for their turn. Events beyond it are
   * not run; the client is told once (`sio-sessions:unavailable`, reason `queue-full`) until its
   * queue drains. Bounds the memory and work one client can queue.
   * @default 100
   */
  maxPendingEvents?: number;
  /**
   * Per-message mode: how long a handler may take (an async one: until its promise settles) before
   * the session's queue moves on without it: what it changed is undone, its ack is not sent, and
   * `serror` reports it. A handler that never settles would otherwise hold its session's events forever.
   * @default 30000
   */
  handlerTimeout?: number;
  /**
   * Lifetime of session tickets (token endpoint, served script), in ms. A ticket socket that does
   * not present a new ticket in time (the SDK refreshes in-band) is told its session is invalid.
   * @default 60000
   */
  ticketTtl?: number;
  /**
   * Serve the browser add-on at `<io path>/socket.io-sessions.js` on the Socket.IO HTTP server.
   * @default true
   */
  serveClient?: boolean;
}

export interface ResolvedOptions extends Required<Omit<SessionsOptions, 'cutter' | 'parser' | 'origins' | 'secret' | 'lock'>> {
  lock?: SessionLock;
  secrets: string[];
  cutter?: Cutter;
  parser?: CookieParserMiddleware;
  origins?: string[] | OriginCheck;
}

/** Every option `sessions()` knows, to name the nearest one when a key is misspelled. */
export const KNOWN: ReadonlyArray<keyof SessionsOptions> = [
  'store', 'secret', 'name', 'perMessage', 'cutter', 'parser', 'origins', 'storeTimeout', 'saveDelay',
  'revalidateInterval', 'lock', 'maxPendingEvents', 'handlerTimeout', 'ticketTtl', 'serveClient',
];

/** Throw for a key that is not an option, naming the nearest one. Shared by `sessions()` and the seed facade. */
export function rejectUnknownKeys(options: object, known: readonly string[], where: string): void {
  const message = unknownOption(options, known, where);
  if (message) throw new SessionOptionsError(message);
}

/** The longest delay Node's timers keep (about 24.8 days): a longer one fires after 1 ms, with only a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function positiveNumber(value: unknown, name: string, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new SessionOptionsError(`socket.io-sessions: option "${name}" must be a ${allowZero ? 'non-negative' : 'positive'} number of ms, got ${String(value)}`);
  }
  if (value > MAX_TIMER_MS) {
    throw new SessionOptionsError(`socket.io-sessions: option "${name}" must be at most ${MAX_TIMER_MS} ms (about 24.8 days; Node's timers fire at once beyond that), got ${value}`);
  }
  return value;
}

/**
 * The longest `ticketTtl` (2147480647 ms): a ticket socket's expiry timer is the ticket's lifetime
 * (its expiry is rounded up to the second: up to 999 ms more) plus the grace a refresh in flight
 * gets (ticket-refresh.ts), and it must fit Node's timers too, or every ticket socket would be ended
 * 1 ms after it connects.
 */
export const MAX_TICKET_TTL = MAX_TIMER_MS - TICKET_GRACE_MS - 1000;

function ticketTtl(value: unknown): number {
  const ttl = positiveNumber(value, 'ticketTtl', 60_000);
  if (ttl > MAX_TICKET_TTL) {
    throw new SessionOptionsError(
      `socket.io-sessions: option "ticketTtl" must be at most ${MAX_TICKET_TTL} ms (about 24.8 days, less the ${TICKET_GRACE_MS} ms a refresh in flight is given and 1 s of rounding: Node's timers fire at once beyond that), got ${ttl}`,
    );
  }
  return ttl;
}

/** Validate once, at start-up, so a typo fails loudly instead of refusing every handshake. */
export function resolveOptions(options: SessionsOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') {
    throw new SessionOptionsError('socket.io-sessions: options object with at least { store, secret } is required');
  }
  rejectUnknownKeys(options, KNOWN, 'sessions()');
  const { store, secret, cutter, parser, origins } = options;
  if (!store || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.destroy !== 'function') {
    throw new SessionOptionsError('socket.io-sessions: "store" must be an express-session store (with get, set and destroy)');
  }
  if (typeof (store as { createSession?: unknown }).createSession !== 'function') {
    throw new SessionOptionsError('socket.io-sessions: "store" must extend express-session\'s Store (it has no createSession)');
  }
  const secrets = secret === undefined ? [] : Array.isArray(secret) ? secret : [secret];
  if (secrets.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new SessionOptionsError('socket.io-sessions: "secret" must be a non-empty string or an array of them');
  }
  if (secrets.length === 0 && !cutter && !parser) {
    throw new SessionOptionsError('socket.io-sessions: "secret" is required to read the signed session cookie (or pass a "cutter")');
  }
  if (cutter !== undefined && typeof cutter !== 'function') throw new SessionOptionsError('socket.io-sessions: "cutter" must be a function (req) => sessionId');
  if (parser !== undefined && typeof parser !== 'function') throw new SessionOptionsError('socket.io-sessions: "parser" must be a cookie parser middleware');
  if (origins !== undefined && typeof origins !== 'function' && !(Array.isArray(origins) && origins.every((o) => typeof o === 'string'))) {
    throw new SessionOptionsError('socket.io-sessions: "origins" must be an array of origins or a function (origin, req) => boolean');
  }
  if (options.lock !== undefined && typeof options.lock?.acquire !== 'function') {
    throw new SessionOptionsError('socket.io-sessions: "lock" must have acquire(sid) (e.g. redisLock(client))');
  }
  const name = options.name ?? DEFAULT_COOKIE_NAME;
  if (typeof name !== 'string' || name.length === 0) throw new SessionOptionsError('socket.io-sessions: "name" must be a non-empty string');
  return {
    store,
    secrets,
    name,
    perMessage: Boolean(options.perMessage),
    cutter,
    parser,
    origins,
    storeTimeout: positiveNumber(options.storeTimeout, 'storeTimeout', 5000),
    saveDelay: positiveNumber(options.saveDelay, 'saveDelay', 1000, true),
    revalidateInterval: positiveNumber(options.revalidateInterval, 'revalidateInterval', 60_000, true),
    ticketTtl: ticketTtl(options.ticketTtl),
    maxPendingEvents: positiveNumber(options.maxPendingEvents, 'maxPendingEvents', 100),
    handlerTimeout: positiveNumber(options.handlerTimeout, 'handlerTimeout', 30_000),
    lock: options.lock,
    serveClient: options.serveClient ?? true,
  };
}
