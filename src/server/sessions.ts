/**
 * `sessions(io, options)`: the session of the handshake's cookie (or cutter/parser) becomes
 * `socket.session` for every handler, with three outcomes kept apart:
 * a session (connect), invalid (refused with SESSION_INVALID, `sinvalid`), and unavailable
 * (store failure: refused with the retryable SESSION_UNAVAILABLE, never `sinvalid`).
 */
import { EventEmitter } from 'node:events';
import type { Namespace, Server, Socket } from 'socket.io';
import { ErrorCode, Events, type InvalidReason } from '../protocol.js';
import { OriginNotAllowedError, SessionInvalidError, SessionOptionsError, SessionUnavailableError } from '../errors.js';
import { resolveOptions, type ResolvedOptions, type SessionsOptions } from './options.js';
import { sessionIdFrom } from './session-id.js';
import { originAllowed } from './origin.js';
import { isExpired, StoreGateway } from './store.js';
import { KeyedQueue } from './queue.js';
import { onStoreDestroy, sessionRoom, Tombstones } from './invalidation.js';
import { BoundSession, type SocketSession } from './bound-session.js';
import type { ModeHost } from './mode-host.js';
import { savePerConnection } from './per-connection.js';
import { instrumentPerMessage } from './per-message.js';
import { serveClientScript } from './client-script.js';

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
  private readonly disposers: Array<() => void> = [];

  constructor(io: Server | Namespace, options: SessionsOptions) {
    super();
    this.options = resolveOptions(options);
    this.namespace = namespaceOf(io);
    this.gateway = new StoreGateway(this.options.store, this.options.storeTimeout);
    this.disposers.push(onStoreDestroy(this.options.store, (sid) => this.destroyed(sid)));
    this.namespace.use((socket, next) => {
      this.handshake(socket).then(() => next(), next);
    });
    const onConnection = (socket: Socket) => this.connected(socket);
    this.namespace.on('connection', onConnection);
    this.disposers.push(() => this.namespace.off('connection', onConnection));
    const httpServer = this.namespace.server.httpServer;
    if (this.options.serveClient && httpServer) this.disposers.push(serveClientScript(httpServer, this.namespace.server.path()));
  }

  /** The middleware: find the session or refuse with a typed error. */
  private async handshake(socket: Socket): Promise<void> {
    const { options } = this;
    if (!originAllowed(socket.request, options)) throw new OriginNotAllowedError();
    let found;
    try {
      found = await sessionIdFrom(socket.request, options);
    } catch (err) {
      // A throwing cutter/parser is the app's bug: report it, and refuse as no session.
      this.report(err, socket);
      found = { invalid: 'no-session-id' as const };
    }
    if ('invalid' in found) throw this.refuse(socket, found.invalid);
    let data;
    try {
      data = await this.gateway.get(found.sid);
    } catch (err) {
      this.report(err, socket);
      throw err;
    }
    if (!data) throw this.refuse(socket, 'not-found');
    if (isExpired(data)) throw this.refuse(socket, 'expired');
    if (this.tombstones.has(found.sid)) throw this.refuse(socket, 'destroyed');
    const bound = new BoundSession(socket, found.sid, data, this.gateway, this.tombstones);
    this.bindings.set(socket, bound);
    Object.defineProperty(socket, 'session', { configurable: true, enumerable: false, get: () => bound.session });
    if (options.perMessage) instrumentPerMessage(bound, this);
  }

  private refuse(socket: Socket, reason: InvalidReason): SessionInvalidError {
    this.emit('sinvalid', socket, reason);
    return new SessionInvalidError(reason);
  }

  private connected(socket: Socket): void {
    const bound = this.bindings.get(socket);
    if (!bound) return; // a socket of this namespace that another middleware let in before ours refused it
    void socket.join(bound.room);
    socket.use((_packet, next) => {
      bound.active = true;
      next();
    });
    const perConnection = this.options.perMessage ? undefined : savePerConnection(bound, this);
    const changed = perConnection ? perConnection.changed : () => void this.runExclusive(bound, () => bound.saveChanges());
    const { revalidateInterval } = this.options;
    const revalidation = revalidateInterval > 0 ? setInterval(() => void this.runExclusive(bound, () => bound.revalidate()), revalidateInterval) : undefined;
    revalidation?.unref?.();
    socket.on('disconnect', () => {
      clearInterval(revalidation);
      perConnection?.stop();
      // Queued: runs after the app's own disconnect listeners, so their changes are saved too.
      void this.runExclusive(bound, () => bound.saveChanges());
    });
    // Destroyed between our load and now: tell the socket at once.
    if (this.tombstones.has(bound.sid)) return this.invalidate(bound, 'destroyed');
    this.emit('sconnection', socket, bound.session);
    changed();
  }

  async runExclusive(bound: BoundSession, task: () => Promise<InvalidReason | undefined>): Promise<boolean> {
    try {
      const reason = await this.queue.run(bound.sid, task);
      if (!reason) return true;
      this.invalidate(bound, reason);
    } catch (err) {
      this.report(err, bound.socket);
      if (err instanceof SessionUnavailableError && bound.socket.connected) bound.socket.emit(Events.UNAVAILABLE, err.data);
    }
    return false;
  }

  report(error: unknown, socket?: Socket): void {
    if (this.listenerCount('serror') > 0) this.emit('serror', error, socket);
    else console.error('socket.io-sessions:', error);
  }

  /** Tell the socket its session is invalid, then disconnect it. Once per socket. */
  private invalidate(bound: BoundSession, reason: InvalidReason): void {
    if (bound.invalidated) return;
    bound.invalidated = true;
    const { socket } = bound;
    this.emit('sinvalid', socket, reason);
    if (!socket.connected) return;
    // The event and the disconnect travel in order on the same connection.
    socket.emit(Events.INVALID, { code: ErrorCode.SESSION_INVALID, reason });
    socket.disconnect();
  }

  /** The store destroyed `sid` (logout, regenerate, expiry clean-up): invalidate its sockets here. */
  private destroyed(sid: string): void {
    this.tombstones.add(sid);
    const ids = this.namespace.adapter.rooms.get(sessionRoom(sid));
    for (const id of ids ?? []) {
      const socket = this.namespace.sockets.get(id);
      const bound = socket && this.bindings.get(socket);
      if (bound) this.invalidate(bound, 'destroyed');
    }
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
