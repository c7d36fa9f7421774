/**
 * `sessions(io, options)`: the session of the handshake's cookie (or ticket, cutter, parser)
 * becomes `socket.session` for every handler, with three outcomes kept apart: a session
 * (connect), invalid (refused with SESSION_INVALID, `sinvalid`), and unavailable (store failure:
 * refused with the retryable SESSION_UNAVAILABLE, never `sinvalid`).
 *
 * This file only wires the parts together; a session flows one way through them:
 * resolver (request → credential → id → loaded session) → connection (one binding per socket:
 * packets in, events made units) → runtime/ (one per session in the process: its sockets, its queue
 * with the lock, the batch, load and save, the save debounce and revalidation) → session-entry (the
 * loaded copy) → store (deadlines, guarded writes, the write token). docs/architecture.md has the map.
 */
import { EventEmitter } from 'node:events';
import type { DefaultEventsMap, Namespace, Server, Socket } from 'socket.io';
import { DEFAULT_TOKEN_PATH, type InvalidReason } from '../protocol.js';
import { describeThrown, SessionError, SessionHandlerError, SessionOptionsError, SessionUnavailableError, type SessionServerError } from '../errors.js';
import { resolveOptions, type SessionsOptions } from './options.js';
import { StoreHub, type SessionRecord } from './store.js';
import { relayDestroys, sessionTag } from './invalidation.js';
import { Resolver } from './resolver.js';
import { bindingOf, SocketBinding, sessionOfSocket } from './connection.js';
import { installSessionGetter } from './session-getter.js';
import { corruptRecordError, isCorruptRecord, SessionEntry, type SocketSession } from './session-entry.js';
import { TicketSealer } from './tickets.js';
import { PacketHold, RecoveryMemory, refuseRecovered } from './recovery.js';
import { HttpSurfaces } from './http/index.js';
import type { TokenEndpointOptions } from './http/token-endpoint.js';
import type { ServerContext } from './context.js';
import { flush, revalidationWheel } from './runtime/tasks.js';
import { SessionRuntime } from './runtime/index.js';
import { isThenable } from './runtime/events.js';
import { log } from './log.js';
import { Advice } from './advice.js';

/** An event map as socket.io takes it (its own `EventsMap` is not exported). */
type EventsMap = Record<string, any>;

/** Events of the object `sessions()` returns, with the app's socket type. */
export interface SessionServerEvents<S = Socket> {
  /**
   * A socket connected with a loaded session (`socket.session === session`). Also for a socket
   * socket.io recovered (`socket.recovered`, connectionStateRecovery): a new Socket without the old listeners.
   */
  sconnection: [socket: S, session: SocketSession];
  /** A socket's session is invalid: at handshake (the socket never connects) or later (it is disconnected). */
  sinvalid: [socket: S, reason: InvalidReason];
  /** Something went wrong that is not the client's to fix: a store failure, a throwing per-message handler, a corrupt record. */
  serror: [error: SessionServerError, socket: S | undefined];
}

type ServerEvents<L extends EventsMap, E extends EventsMap, S extends EventsMap, D> = SessionServerEvents<Socket<L, E, S, D>>;
type EventName = keyof SessionServerEvents;

/**
 * Node's EventEmitter typing accepts any event name (`sio.on('sconection', …)` compiles with it):
 * these overloads take only the three events, with their arguments.
 */
export interface SessionServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  on<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  once<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  addListener<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  prependListener<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  prependOnceListener<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  off<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
  removeListener<K extends EventName>(event: K, listener: (...args: ServerEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[K]) => void): this;
}

/**
 * Returned by {@link sessions}: an emitter of `sconnection`, `sinvalid` and `serror`, typed with the
 * event maps of the Socket.IO server it was given.
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
export class SessionServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends EventEmitter<SessionServerEvents<Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>> {
  private readonly ctx: ServerContext;
  private readonly http: HttpSurfaces;
  private readonly disposers: Array<() => void> = [];
  /**
   * What its connected sockets still need (the store's guarded methods, the relay of logouts, the
   * `socket.session` getter): given back by `close()` only once its last socket is gone, so a socket
   * that stays connected after it keeps its session, its logouts and invariant 1.
   */
  private readonly lasting: Array<() => void> = [];
  /** Its sockets started and not stopped. */
  private sockets = 0;
  private closed = false;
  private readonly namespace: Namespace;
  private getterInstalled = false;
  /** The session each socket had, for its recovery (see RecoveryMemory). */
  private readonly recoveries: RecoveryMemory;

  constructor(io: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData> | Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>, options: SessionsOptions) {
    super();
    const namespace = namespaceOf(io as Server | Namespace);
    this.namespace = namespace;
    const resolved = resolveOptions(options);
    this.disposers.push(claimMode(namespace, resolved.perMessage));
    const hub = StoreHub.acquire(resolved.store);
    this.lasting.push(() => hub.release());
    this.recoveries = new RecoveryMemory(
      (tag) => hub.destroyedSet.confirmed(tag),
      (socket) => bindingOf(socket)?.entry.tag,
    );
    this.recoveries.guard(namespace.adapter);
    this.lasting.push(() => this.recoveries.dispose());
    const base = {
      options: resolved,
      hub,
      sealer: resolved.secrets.length > 0 ? new TicketSealer(resolved.secrets, resolved.ticketTtl) : undefined,
      report: (error: SessionServerError, socket?: Socket) => this.report(error, socket),
      invalid: (socket: Socket, reason: InvalidReason) => this.tell('sinvalid', socket, reason),
      advice: new Advice(resolved, hub),
      tracked: (delta: 1 | -1) => this.tracked(delta),
    };
    const ctx: ServerContext = (this.ctx = { ...base, wheel: revalidationWheel(base) });
    const resolver = new Resolver(ctx);
    this.http = new HttpSurfaces(ctx, resolver);

    // Destroys: this process's (through the store) reach the session's sockets and the other nodes;
    // theirs (through the adapter) reach ours.
    const relay = relayDestroys(namespace, (tag) => {
      hub.remoteDestroyed(tag);
      const live = SessionEntry.byTag(hub, tag);
      if (live) SessionRuntime.find(hub, live.sid)?.invalidate('destroyed');
    });
    if (relay.tell) hub.writesInFlight.raceWindowMs = 5_000;
    this.lasting.push(relay.dispose);
    this.lasting.push(
      hub.onDestroy((sid, tag) => {
        SessionRuntime.find(hub, sid)?.invalidate('destroyed');
        relay.tell?.(tag);
      }),
    );

    this.disposers.push(
      useMiddleware(namespace, (socket, next) => {
        this.handshake(socket, resolver).then(() => next(), next);
      }),
    );
    const onConnection = (socket: Socket) => {
      const binding = bindingOf(socket);
      // Bound to a copy that went stale before the socket connected (see SocketBinding.stale): resolved
      // again as a recovered socket is, its packets held until then (by the instance that bound it).
      if (binding?.stale) return void (binding.ctx === this.ctx && this.recover(socket, resolver));
      if (binding || !socket.recovered) this.connected(socket);
      else this.recover(socket, resolver);
    };
    namespace.on('connection', onConnection);
    this.disposers.push(() => namespace.off('connection', onConnection));
    // Served on the Socket.IO HTTP server, also one it gets later (`io.attach()`/`io.listen()` after sessions()).
    if (resolved.serveClient) this.disposers.push(this.http.serveClientScript(namespace.server));
  }

  /** The middleware: bind the socket to its session, or refuse it with a typed error. */
  private async handshake(socket: Socket, resolver: Resolver): Promise<void> {
    try {
      const { sid, record, entry, ticketExpiresAt, readMark } = await resolver.handshake(socket.request, socket.handshake.auth);
      const bound = entry ?? this.newEntry(sid, record!);
      // Recovered with another session's credential: its rooms, data and broadcasts are the old session's.
      if (this.recoveries.changed(socket, bound.tag)) throw this.ctx.advice.invalid('session-changed', socket.request);
      new SocketBinding(socket, bound, this.ctx, ticketExpiresAt).readMark = entry ? undefined : readMark;
      // At the first binding, not the first connection: the app's middlewares after ours and its
      // `connection` listeners read `socket.session` too (before, a fresh process's first socket read undefined).
      if (!this.getterInstalled) {
        this.getterInstalled = true;
        this.lasting.push(installSessionGetter(socket));
      }
      if (log.handshake.enabled) log.handshake('socket %s bound to %s', socket.id, bound.tag);
    } catch (err) {
      if (err instanceof SessionError && err.code === 'SESSION_INVALID') {
        this.recoveries.refused(socket, err.reason as InvalidReason);
        this.tell('sinvalid', socket, err.reason as InvalidReason);
      }
      else if (err instanceof SessionUnavailableError) this.report(err, socket);
      log.handshake('socket %s refused: %s', socket.id, (err as Error).message);
      throw err;
    }
  }

  /** A handshake's entry for the store's record; one express-session's Session refuses is a corrupt record (reported, refused 'corrupt'). */
  private newEntry(sid: string, record: SessionRecord): SessionEntry {
    try {
      return new SessionEntry(this.ctx.hub, sid, record);
    } catch (err) {
      if (!isCorruptRecord(err)) throw err;
      this.ctx.report(corruptRecordError(sessionTag(sid), (err as Error).cause));
      throw this.ctx.advice.invalid('corrupt');
    }
  }

  /** socket.io's `connection`: the bound socket joins its session and `sconnection` fires. False if it was not bound or its session ended meanwhile. */
  private connected(socket: Socket): boolean {
    const binding = bindingOf(socket);
    if (!binding) return false; // a socket of this namespace that another middleware let in before ours refused it
    if (!binding.start()) return false;
    // Another instance's binding (several on one namespace: the socket has the last handshake's): this
    // one told `sconnection`, so it tells `sinvalid` too.
    if (binding.ctx !== this.ctx) binding.alsoTell(this.ctx.invalid);
    this.tell('sconnection', socket, binding.entry.session);
    this.recoveries.connected(socket, binding.entry.tag);
    binding.connected();
    return true;
  }

  /**
   * A socket socket.io recovered without running our middleware (`skipMiddlewares`), or one whose
   * handshake's copy went stale before it connected: it gets its session from its handshake's
   * credential as a new one would, its packets held until then; a recovered socket is a new Socket
   * without the old listeners, so `sconnection` fires again.
   */
  private recover(socket: Socket, resolver: Resolver): void {
    const hold = new PacketHold(socket, this.ctx.options.maxPendingEvents);
    this.handshake(socket, resolver).then(
      () => {
        if (socket.connected && this.connected(socket)) hold.release();
        else hold.refuse();
      },
      (err: unknown) => refuseRecovered(socket, hold, err),
    );
  }

  /**
   * Call the app's listeners of `sconnection` or `sinvalid`. They are the app's code, like its
   * handlers: what one throws, or rejects with when it is async, is reported (`serror`, a
   * SessionHandlerError with it as the cause), never thrown into socket.io's connection, a logout or
   * the session's queue, nor left as an unhandled rejection.
   */
  private tell(event: 'sconnection' | 'sinvalid', socket: Socket, arg: SocketSession | InvalidReason): void {
    this.callListeners(event, [socket, arg], (err) =>
      this.report(new SessionHandlerError('handler-error', `an ${event} listener threw: ${describeThrown(err)}`, { cause: err }), socket),
    );
  }

  /** To `serror`'s listeners, or console.error without one (also what an `serror` listener throws: there is nowhere else to tell). */
  private report(error: SessionServerError, socket?: Socket): void {
    if (this.listenerCount('serror') === 0) return console.error('socket.io-sessions:', error);
    this.callListeners('serror', [error, socket], (err) => console.error('socket.io-sessions: an serror listener threw', err, 'while told', error));
  }

  /**
   * Each listener of `event` in turn, as `emit` calls them (`once` ones too), but each even when one
   * before it failed; what one throws, or its promise rejects with, goes to `failed`.
   */
  private callListeners(event: EventName, args: unknown[], failed: (err: unknown) => void): void {
    for (const listener of this.rawListeners(event) as Array<(...a: unknown[]) => unknown>) {
      try {
        const result = listener.apply(this, args);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (err) {
        failed(err);
      }
    }
  }

  /**
   * The token endpoint, as Express/Connect middleware or a plain `http` listener: answers
   * `{ token, expiresAt, expiresIn }` (`Cache-Control: no-store`) for the request's session,
   * 401 `SESSION_INVALID` without one, 503 `SESSION_UNAVAILABLE` when the store fails, 403 for
   * an origin that is not allowed. Other paths go to `next`. Mount it before express-session (it
   * reads the cookie itself).
   *
   * @example
   * ```ts
   * app.use(sio.tokenHandler());                       // GET /socket.io-sessions/token
   * ```
   */
  tokenHandler({ path = DEFAULT_TOKEN_PATH }: TokenEndpointOptions = {}) {
    return this.http.tokenHandler(path);
  }

  /**
   * Express/Connect middleware, mounted before express-session, that holds the session's turn
   * from before express-session loads the session until the response is finished (it saves before
   * that), so HTTP writes and socket units of one session never overlap and no read-modify-write is
   * lost. The turn is the session's queue in this process, or with the `lock` option the cross-node
   * lock. Requests without a session pass; a turn not had within `storeTimeout`: 503
   * `SESSION_UNAVAILABLE`; a request holds it for `handlerTimeout` at most.
   *
   * @example
   * ```ts
   * app.use(sio.httpLock());   // before app.use(session(...))
   * ```
   */
  httpLock() {
    return this.http.httpLock();
  }

  /**
   * The served add-on (with its embedded ticket) as middleware, for when Socket.IO's HTTP server
   * is not the one that should serve it (then pass `serveClient: false`).
   */
  clientScriptHandler(basePath = this.namespace.server.path()) {
    return this.http.clientScript(basePath);
  }

  /**
   * Save every pending change now (per-connection mode waits up to `saveDelay` otherwise) and
   * resolve once all the work queued so far (saves, per-message events, revalidation) has run.
   * For a graceful shutdown (after `io.close()`, before closing the store) and for tests. A save
   * that failed and waits to be retried is not waited for (its failure went to `serror`).
   *
   * @example
   * ```ts
   * io.close(() => sio.flush().then(() => store.close()));
   * ```
   */
  flush(): Promise<void> {
    return flush(this.ctx);
  }

  /** The session bound to a socket of this namespace, if any. */
  sessionOf(socket: Socket): SocketSession | undefined {
    return sessionOfSocket(socket);
  }

  /**
   * Stop: no more handshakes are checked by this instance and the served script is given back.
   * Connected sockets keep working until they disconnect (their sessions, logouts reaching them);
   * the store's methods and the `socket.session` getter are given back when the last one is gone.
   */
  close(): void {
    this.closed = true;
    this.disposers.splice(0).forEach((dispose) => dispose());
    if (this.sockets === 0) this.lasting.splice(0).forEach((dispose) => dispose());
  }

  private tracked(delta: 1 | -1): void {
    this.sockets += delta;
    // (After the disconnect's turn: the app's own disconnect listeners and the socket's last save still have the session.)
    if (this.closed && this.sockets === 0) setImmediate(() => this.sockets === 0 && this.lasting.splice(0).forEach((dispose) => dispose()));
  }
}

type Middleware = (socket: Socket, next: (err?: Error) => void) => void;

/** Per namespace, the handshake middlewares of the open `sessions()` instances on it. */
const dispatchers = new WeakMap<Namespace, Middleware[]>();

/**
 * `namespace.use(fn)`, undone by the returned disposer. socket.io has no way to take a middleware
 * back, so each namespace gets ONE middleware per process, which runs the instances listed for it:
 * an instance adds itself here and its close() removes it, leaving nothing behind.
 */
function useMiddleware(namespace: Namespace, fn: Middleware): () => void {
  let list = dispatchers.get(namespace);
  if (!list) {
    const fns: Middleware[] = (list = []);
    dispatchers.set(namespace, fns);
    namespace.use((socket, next) => runInTurn(fns.slice(), socket, next));
  }
  const fns = list;
  fns.push(fn);
  return () => {
    const at = fns.indexOf(fn);
    if (at >= 0) fns.splice(at, 1);
  };
}

/** Each middleware in turn, as socket.io runs its own: the first error stops the chain. */
function runInTurn(fns: Middleware[], socket: Socket, next: (err?: Error) => void, at = 0): void {
  if (at === fns.length) return next();
  fns[at]!(socket, (err) => (err ? next(err) : runInTurn(fns, socket, next, at + 1)));
}

/** The mode of the open instances on each namespace (several may share one: the socket has one binding, the last handshake's). */
const modes = new WeakMap<Namespace, { perMessage: boolean; open: number }>();

/**
 * Several instances on one namespace must agree on the mode: the socket's events run under the
 * options of the instance whose handshake bound it last, and a per-connection binding under a
 * per-message instance's listeners would send their acks before the save. Returns the release.
 */
function claimMode(namespace: Namespace, perMessage: boolean): () => void {
  const mode = modes.get(namespace);
  if (mode && mode.open > 0 && mode.perMessage !== perMessage) {
    throw new SessionOptionsError(
      `socket.io-sessions: another sessions() on the namespace "${namespace.name}" is open in ${mode.perMessage ? 'per-message' : 'per-connection'} mode; instances on one namespace must share the mode (give this one its own namespace, or the same perMessage)`,
    );
  }
  const claimed = mode && mode.open > 0 ? mode : { perMessage, open: 0 };
  claimed.open += 1;
  modes.set(namespace, claimed);
  let released = false;
  return () => {
    if (!released) (released = true), (claimed.open -= 1);
  };
}

function namespaceOf(io: Server | Namespace): Namespace {
  if (io && typeof (io as Server).of === 'function' && (io as Server).sockets) return (io as Server).sockets;
  if (io && typeof (io as Namespace).use === 'function' && (io as Namespace).server) return io as Namespace;
  throw new SessionOptionsError('socket.io-sessions: the first argument must be a socket.io Server or Namespace');
}

/**
 * Make a Socket.IO server (or namespace) session-aware. The returned emitter's sockets carry the
 * server's event maps (`new Server<ClientToServer, ServerToClient>()`).
 *
 * @example
 * ```ts
 * import { sessions } from 'socket.io-sessions/server';
 * app.use(session({ store, secret }));
 * const sio = sessions(io, { store, secret });
 * sio.on('sconnection', (socket, session) => { ... });
 * ```
 */
export function sessions<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(
  io: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData> | Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
  options: SessionsOptions,
): SessionServer<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
  return new SessionServer(io, options);
}
