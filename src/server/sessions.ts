/**
 * `sessions(io, options)`: the session of the handshake's cookie (or cutter/parser) becomes
 * `socket.session` for every handler, with three outcomes kept apart:
 * a session (connect), invalid (refused with SESSION_INVALID, `sinvalid`), and unavailable
 * (store failure: refused with the retryable SESSION_UNAVAILABLE, never `sinvalid`).
 */
import { EventEmitter } from 'node:events';
import type { Namespace, Server, Socket } from 'socket.io';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionData } from 'express-session';
import { DEFAULT_TOKEN_PATH, ErrorCode, Events, TICKET_AUTH_FIELD, CredentialEvents, type InvalidReason, type Ticket } from '../protocol.js';
import { OriginNotAllowedError, SessionInvalidError, SessionOptionsError, SessionUnavailableError } from '../errors.js';
import { resolveOptions, type ResolvedOptions, type SessionsOptions } from './options.js';
import { sessionCookie, sessionIdFrom, type SessionIdResult } from './session-id.js';
import { audienceOf, originAllowed } from './origin.js';
import { StoreGateway } from './store.js';
import { KeyedQueue } from './queue.js';
import { adapterReachesOtherNodes, isSessionRoom, onStoreDestroy, sessionRoom, Tombstones } from './invalidation.js';
import { BoundSession, type SocketSession } from './bound-session.js';
import type { ModeHost } from './mode-host.js';
import { savePerConnection } from './per-connection.js';
import { instrumentPerMessage } from './per-message.js';
import { clientScriptHandler, serveClientScript } from './client-script.js';
import { TicketSealer } from './tickets.js';
import { keepTicketAlive } from './ticket-refresh.js';
import { tokenEndpoint, type TokenEndpointOptions } from './token-endpoint.js';

/** Server-side event (node to node) naming the room of a destroyed session. */
const DESTROYED_EVENT = 'sio-sessions:destroyed';

/** Marks a request that holds its session's lock (httpLock), so our own handlers do not wait for it again. */
const LOCK_HELD = Symbol('socket.io-sessions lock held');
type LockedRequest = IncomingMessage & { [LOCK_HELD]?: string };

/** A session found for a request: its id and stored data, or why there is none. */
type Lookup = { sid: string; data: SessionData } | { invalid: InvalidReason };

/** Events of the object `sessions()` returns. */
export interface SessionServerEvents {
  /** A socket connected with a loaded session (`socket.session === session`). */
  sconnection: [socket: Socket, session: SocketSession];
  /** A socket's session is invalid: at handshake (the socket never connects) or later (it is disconnected). */
  sinvalid: [socket: Socket, reason: InvalidReason];
  /** Something went wrong that is not the client's to fix: a store failure after connect, a throwing per-message handler. */
  serror: [error: unknown, socket: Socket | undefined];
}

/**
 * Returned by {@link sessions}: an emitter of `sconnection`, `sinvalid` and `serror`.
 *
 * @example
 * ```ts
 * const sio = sessions(io, { store, secret });
 * sio.on('sconnection', (socket, session) => {
 *   socket.on('hello', () => { session.greeted = true; });  // saved shortly after, and at disconnect
 * });
 * sio.on('sinvalid', (socket, reason) => console.log('refused', reason));
 * ```
 */
export class SessionServer extends EventEmitter<SessionServerEvents> implements ModeHost {
  readonly options: ResolvedOptions;
  readonly namespace: Namespace;
  private readonly gateway: StoreGateway;
  private readonly queue = new KeyedQueue();
  private readonly tombstones = new Tombstones();
  private readonly bindings = new WeakMap<Socket, BoundSession>();
  private readonly sealer: TicketSealer | undefined;
  private readonly disposers: Array<() => void> = [];

  constructor(io: Server | Namespace, options: SessionsOptions) {
    super();
    this.options = resolveOptions(options);
    this.namespace = namespaceOf(io);
    this.gateway = new StoreGateway(this.options.store, this.options.storeTimeout);
    this.sealer = this.options.secrets.length > 0 ? new TicketSealer(this.options.secrets, this.options.ticketTtl) : undefined;
    this.disposers.push(onStoreDestroy(this.options.store, (sid) => this.destroyed(sid)));
    this.namespace.use((socket, next) => {
      this.handshake(socket).then(() => next(), next);
    });
    // Another node's store destroyed a session (server-side event through the adapter).
    const onRemoteDestroy = (room: unknown) => isSessionRoom(room) && this.roomDestroyed(room);
    (this.namespace as unknown as EventEmitter).on(DESTROYED_EVENT, onRemoteDestroy);
    this.disposers.push(() => (this.namespace as unknown as EventEmitter).off(DESTROYED_EVENT, onRemoteDestroy));
    const onConnection = (socket: Socket) => this.connected(socket);
    this.namespace.on('connection', onConnection);
    this.disposers.push(() => this.namespace.off('connection', onConnection));
    const httpServer = this.namespace.server.httpServer;
    if (this.options.serveClient && httpServer) {
      this.disposers.push(serveClientScript(httpServer, this.namespace.server.path(), (req, renew) => this.embeddedTicket(req, renew)));
    }
  }

  /** The session id a cookie (or cutter/parser) names. A throwing cutter/parser is the app's bug: reported, and no session. */
  private async sessionIdOf(req: IncomingMessage, socket?: Socket): Promise<SessionIdResult> {
    try {
      return await sessionIdFrom(req, this.options);
    } catch (err) {
      this.report(err, socket);
      return { invalid: 'no-session-id' };
    }
  }

  /** Load the session an id names. Throws SessionUnavailableError (reported) when the store fails. */
  private async lookup(found: SessionIdResult, socket?: Socket): Promise<Lookup> {
    if ('invalid' in found) return found;
    if (this.tombstones.has(sessionRoom(found.sid))) return { invalid: 'destroyed' };
    let data;
    try {
      data = await this.gateway.get(found.sid);
    } catch (err) {
      this.report(err, socket);
      throw err;
    }
    // Expiry is the store's call, as in express-session: a session it returns is live.
    if (!data) return { invalid: 'not-found' };
    return { sid: found.sid, data };
  }

  /**
   * The middleware: find the session or refuse with a typed error. A ticket in `auth` decides
   * alone (it is bound to its page origin); otherwise the cookie, after the Origin check.
   */
  private async handshake(socket: Socket): Promise<void> {
    const { options } = this;
    const req = socket.request;
    const ticket = (socket.handshake.auth as Record<string, unknown> | undefined)?.[TICKET_AUTH_FIELD];
    let found: SessionIdResult;
    let ticketExpiresAt: number | undefined;
    if (ticket !== undefined && this.sealer) {
      const opened = await this.sealer.open(ticket, audienceOf(req));
      found = opened;
      if ('sid' in opened) ticketExpiresAt = opened.expiresAt;
    } else {
      if (!originAllowed(req, options)) throw new OriginNotAllowedError();
      found = await this.sessionIdOf(req, socket);
    }
    const result = await this.lookup(found, socket);
    if ('invalid' in result) throw this.refuse(socket, result.invalid);
    const bound = new BoundSession(socket, result.sid, result.data, this.gateway, this.tombstones);
    this.bindings.set(socket, bound);
    bound.ticketExpiresAt = ticketExpiresAt;
    Object.defineProperty(socket, 'session', { configurable: true, enumerable: false, get: () => bound.session });
    if (options.perMessage) instrumentPerMessage(bound, this);
  }

  /**
   * A ticket for the session of an HTTP request (its cookie), for the page origin that asks.
   * Throws SessionInvalidError or SessionUnavailableError.
   */
  async mintTicket(req: IncomingMessage): Promise<Ticket> {
    if (!this.sealer) throw new SessionOptionsError('socket.io-sessions: tickets need a "secret"');
    const result = await this.lookup(await this.sessionIdOf(req));
    if ('invalid' in result) throw new SessionInvalidError(result.invalid);
    return this.sealer.seal(result.sid, audienceOf(req));
  }

  /**
   * Re-issue the request's session cookie with a fresh expiry and extend the session in the
   * store, as express-session's `rolling` would: the `Set-Cookie` value, or undefined for a
   * browser-session cookie (no max age). Signed with the first secret, as express-session does.
   */
  private async renewCookie(req: IncomingMessage): Promise<string | undefined> {
    const result = await this.lookup(await this.sessionIdOf(req));
    if ('invalid' in result) throw new SessionInvalidError(result.invalid);
    const { sid, data } = result;
    const maxAge = data.cookie?.originalMaxAge;
    if (!maxAge || this.options.secrets.length === 0) return undefined;
    const expires = new Date(Date.now() + maxAge);
    // Written, not touched: connect-redis's touch extends the TTL but keeps the stored expiry, and
    // sockets learn the browser's cookie expiry from the record. Re-read under the lock, so only the cookie changes.
    const write = async () => {
      const current = await this.gateway.get(sid);
      if (current) await this.gateway.set(sid, { ...current, cookie: { ...current.cookie, expires } } as SessionData);
    };
    // Behind httpLock() this request already holds the session's lock (it is not reentrant).
    await ((req as LockedRequest)[LOCK_HELD] === sid ? write() : this.locked(sid, write));
    return sessionCookie(this.options.name, sid, this.options.secrets[0], data.cookie, expires);
  }

  /**
   * The served script's embedded ticket (and, on `?renew=1`, a renewed session cookie, for the
   * SDK told `renew-cookie` without a token endpoint): none without a valid session, when the
   * store fails, or when another site includes the script (a classic script tag carries no
   * Origin, but browsers say `Sec-Fetch-Site`): that page must not read a ticket minted with this
   * user's cookie.
   */
  private async embeddedTicket(req: IncomingMessage, renew: boolean): Promise<{ ticket?: Ticket; setCookie?: string }> {
    const site = req.headers['sec-fetch-site'];
    if (!this.sealer || req.headers.origin !== undefined || (site !== undefined && site !== 'same-origin' && site !== 'none')) return {};
    const ticket = await this.mintTicket(req).catch(() => undefined);
    const setCookie = ticket && renew ? await this.renewCookie(req).catch(() => undefined) : undefined;
    return { ticket, setCookie };
  }

  /**
   * The token endpoint, as Express/Connect middleware or a plain `http` listener: answers
   * `{ token, expiresAt, expiresIn }` (`Cache-Control: no-store`) for the request's session,
   * 401 `SESSION_INVALID` without one, 503 `SESSION_UNAVAILABLE` when the store fails, 403 for
   * an origin that is not allowed. Other paths go to `next`.
   *
   * @example
   * ```ts
   * app.use(sio.tokenHandler());                       // GET /socket.io-sessions/token
   * ```
   */
  tokenHandler({ path = DEFAULT_TOKEN_PATH }: TokenEndpointOptions = {}) {
    if (!this.sealer) throw new SessionOptionsError('socket.io-sessions: tickets need a "secret"');
    return tokenEndpoint(
      { originAllowed: (req) => originAllowed(req, this.options), mint: (req) => this.mintTicket(req), renewCookie: (req) => this.renewCookie(req) },
      path,
    );
  }

  private refuse(socket: Socket, reason: InvalidReason): SessionInvalidError {
    this.emit('sinvalid', socket, reason);
    return new SessionInvalidError(reason);
  }

  private connected(socket: Socket): void {
    const bound = this.bindings.get(socket);
    if (!bound) return; // a socket of this namespace that another middleware let in before ours refused it
    void socket.join(bound.room);
    const { ticketExpiresAt } = bound;
    const stopTicket = ticketExpiresAt !== undefined && this.sealer ? keepTicketAlive(bound, this, this.sealer, ticketExpiresAt) : undefined;
    socket.use((_packet, next) => {
      bound.active = true;
      next();
    });
    const perConnection = this.options.perMessage ? undefined : savePerConnection(bound, this);
    const changed = perConnection ? perConnection.changed : () => void this.runExclusive(bound, () => bound.saveChanges());
    const { revalidateInterval } = this.options;
    const revalidate = async () => {
      const reason = await bound.revalidate();
      const renewBy = reason ? undefined : bound.cookieRenewalDue();
      if (renewBy !== undefined) socket.emit(CredentialEvents.RENEW_COOKIE, { expiresAt: renewBy });
      return reason;
    };
    const revalidation = revalidateInterval > 0 ? setInterval(() => void this.runExclusive(bound, revalidate), revalidateInterval) : undefined;
    revalidation?.unref?.();
    socket.on('disconnect', () => {
      clearInterval(revalidation);
      perConnection?.stop();
      stopTicket?.();
      // Queued: runs after the app's own disconnect listeners, so their changes are saved too.
      void this.runExclusive(bound, () => bound.saveChanges());
    });
    // Destroyed between our load and now: tell the socket at once.
    if (this.tombstones.has(bound.room)) return this.invalidate(bound, 'destroyed');
    this.emit('sconnection', socket, bound.session);
    changed();
  }

  async runExclusive(bound: BoundSession, task: () => Promise<InvalidReason | undefined>): Promise<boolean> {
    try {
      const reason = await this.queue.run(bound.sid, () => this.locked(bound.sid, task));
      if (!reason) return true;
      this.invalidate(bound, reason);
    } catch (err) {
      this.report(err, bound.socket);
      if (err instanceof SessionUnavailableError && bound.socket.connected) bound.socket.emit(Events.UNAVAILABLE, err.data);
    }
    return false;
  }

  /** Run `task` holding the session's cross-node lock, when there is one. */
  private async locked<T>(sid: string, task: () => Promise<T>): Promise<T> {
    const { lock } = this.options;
    if (!lock) return task();
    const release = await lock.acquire(sid);
    try {
      return await task();
    } finally {
      await release().catch((err: unknown) => this.report(err));
    }
  }

  /**
   * Express/Connect middleware, mounted before express-session, that holds the session's lock
   * (the `lock` option) from before express-session loads the session until the response is
   * finished (it saves before that), so HTTP writes and socket units of one session never
   * overlap. Requests without a session pass unlocked; when the lock cannot be had: 503.
   */
  httpLock() {
    const { lock } = this.options;
    if (!lock) throw new SessionOptionsError('socket.io-sessions: httpLock() needs the "lock" option');
    return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
      this.sessionIdOf(req)
        .then(async (found) => {
          if ('invalid' in found) return next();
          const release = await lock.acquire(found.sid);
          (req as LockedRequest)[LOCK_HELD] = found.sid;
          let released = false;
          const done = () => {
            if (released) return;
            released = true;
            release().catch((err: unknown) => this.report(err));
          };
          res.once('finish', done);
          res.once('close', done);
          next();
        })
        .catch((err: unknown) => {
          this.report(err);
          res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1' });
          res.end(JSON.stringify((err as SessionUnavailableError).data ?? { code: ErrorCode.SESSION_UNAVAILABLE, reason: 'store-error' }));
        });
    };
  }

  report(error: unknown, socket?: Socket): void {
    if (this.listenerCount('serror') > 0) this.emit('serror', error, socket);
    else console.error('socket.io-sessions:', error);
  }

  invalidate(bound: BoundSession, reason: InvalidReason): void {
    if (bound.invalidated) return;
    bound.invalidated = true;
    const { socket } = bound;
    this.emit('sinvalid', socket, reason);
    if (!socket.connected) return;
    // The event and the disconnect travel in order on the same connection.
    socket.emit(Events.INVALID, { code: ErrorCode.SESSION_INVALID, reason });
    socket.disconnect();
  }

  /**
   * The store destroyed `sid` (logout, regenerate, expiry clean-up): invalidate its sockets here,
   * and on the other nodes through the adapter (by room name: the raw id never travels).
   */
  private destroyed(sid: string): void {
    const room = sessionRoom(sid);
    this.roomDestroyed(room);
    if (adapterReachesOtherNodes(this.namespace.adapter)) this.namespace.serverSideEmit(DESTROYED_EVENT, room);
  }

  private roomDestroyed(room: string): void {
    // Another node destroyed it while this node's save of it was under way: destroy it again.
    const rewritten = this.tombstones.add(room);
    if (rewritten !== undefined) this.gateway.destroy(rewritten).catch((err: unknown) => this.report(err));
    for (const id of this.namespace.adapter.rooms.get(room) ?? []) {
      const socket = this.namespace.sockets.get(id);
      const bound = socket && this.bindings.get(socket);
      if (bound) this.invalidate(bound, 'destroyed');
    }
  }

  /**
   * The served add-on (with its embedded ticket) as middleware, for when Socket.IO's HTTP server
   * is not the one that should serve it (then pass `serveClient: false`).
   */
  clientScriptHandler(basePath = this.namespace.server.path()) {
    return clientScriptHandler(basePath, (req, renew) => this.embeddedTicket(req, renew));
  }

  /** The session bound to a socket of this namespace, if any. */
  sessionOf(socket: Socket): SocketSession | undefined {
    return this.bindings.get(socket)?.session;
  }

  /** Stop listening to the store and serving the add-on. Connected sockets keep working until they disconnect. */
  close(): void {
    this.disposers.splice(0).forEach((dispose) => dispose());
  }
}

function namespaceOf(io: Server | Namespace): Namespace {
  if (io && typeof (io as Server).of === 'function' && (io as Server).sockets) return (io as Server).sockets;
  if (io && typeof (io as Namespace).use === 'function' && (io as Namespace).server) return io as Namespace;
  throw new SessionOptionsError('socket.io-sessions: the first argument must be a socket.io Server or Namespace');
}

/**
 * Make a Socket.IO server (or namespace) session-aware.
 *
 * @example
 * ```ts
 * import { sessions } from 'socket.io-sessions/server';
 * app.use(session({ store, secret }));
 * const sio = sessions(io, { store, secret });
 * sio.on('sconnection', (socket, session) => { ... });
 * ```
 */
export function sessions(io: Server | Namespace, options: SessionsOptions): SessionServer {
  return new SessionServer(io, options);
}
