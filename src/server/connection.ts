/**
 * One object per connected namespace socket, the edge between socket.io and the session's runtime:
 * it binds the socket to its session (never through `socket.request`, which every namespace of one
 * connection shares), looks at every packet the client sends before socket.io dispatches it (one
 * middleware), makes each call of the app's listeners a unit of work queued on the session's runtime
 * (per-message mode), and owns the socket's ticket timer. What the client sends can never take the
 * session's place: client events named `smessage` or like socket.io's reserved events are dropped,
 * and listeners get the session from the server.
 */
import type { Socket } from 'socket.io';
import { CredentialEvents, ErrorCode, Events, type InvalidReason } from '../protocol.js';
import type { SessionServerError, SessionUnavailableError } from '../errors.js';
import type { ServerContext } from './context.js';
import type { ResolvedOptions } from './options.js';
import { SessionRuntime, type RuntimeSocket } from './runtime/index.js';
import { EventUnit, noticePacket, NOT_YET, QUEUE_FULL_RETRY_MS, type EventListenerEntry, type EventSource } from './runtime/events.js';
import { saveCopySoon, saveSoon, saveTask } from './runtime/tasks.js';
import { log } from './log.js';
import { audienceOf } from './origin.js';
import { translateSmessage, type SmessageHost } from './smessage.js';
import { corruptRecordError, type SessionEntry, type SocketSession } from './session-entry.js';
import { TicketAuthorization } from './ticket-refresh.js';
import { tellAndDisconnect } from './recovery.js';

type Listener = (...args: unknown[]) => unknown;
type Ack = (...args: unknown[]) => void;

/** Marks our listener wrappers; holds the app's listener (Node's EventEmitter unwraps `.listener` too). */
const WRAPPED = Symbol('socket.io-sessions unit');
/** Ours, registered in place of an app's listener (`once`: its `once` one); LATE: see {@link SocketBinding.awaitListener} (the packets it waits for). */
type Wrapper = Listener & { [WRAPPED]: true; listener: Listener; once?: boolean; [LATE]?: number };
const LATE = Symbol('socket.io-sessions late packet');

/** Events a client may not send: socket.io's own, and the seed's `smessage` (the server dispatches it). */
const DROPPED = new Set(['smessage', 'connect', 'connect_error', 'disconnect', 'disconnecting', 'error', 'newListener', 'removeListener']);

/**
 * Most arguments a client event may have. socket.io calls the listeners with the packet spread as
 * arguments: about 150,000 (some 400 KB, under socket.io's 1 MB default maxHttpBufferSize) overflow
 * the stack in its dispatch, an uncaught RangeError that ends the process; such an event is dropped.
 */
const MAX_ARGUMENTS = 10_000;

/** Where a socket keeps its binding (a symbol property: cheaper than a WeakMap entry per socket). */
const BINDING = Symbol('socket.io-sessions binding');
type BoundSocket = Socket & { [BINDING]?: SocketBinding };

/** The binding `sessions()` made for a socket at its handshake. */
export const bindingOf = (socket: Socket): SocketBinding | undefined => (socket as BoundSocket)[BINDING];

/** The session of a namespace socket bound by `sessions()`; undefined elsewhere. */
export function sessionOfSocket(socket: Socket): SocketSession | undefined {
  return bindingOf(socket)?.entry.session;
}

/**
 * The event loop's turn, as far as reservations need it: counted up once at the end of a turn in
 * which a packet was reserved (one immediate per turn, shared by every socket, not a tick per packet).
 */
let turn = 0;
let turnEnding = false;
function endTurn(): void {
  turn += 1;
  turnEnding = false;
}
function turnOf(): number {
  if (!turnEnding) {
    turnEnding = true;
    setImmediate(endTurn);
  }
  return turn;
}

/** One `disconnect` listener for every socket (`this` is the socket): nothing allocated per socket. */
function onDisconnect(this: Socket): void {
  bindingOf(this)?.stop();
}

/** The client was told its queue is full; told again only after it drained. */
const OVERFLOW_TOLD = 1;
/** A store failure was reported (serror) in this tick. */
const REPORTED = 2;
/** Told its session is invalid. */
const TOLD = 4;
/** Disconnected. */
const GONE = 8;

export class SocketBinding implements RuntimeSocket, EventSource, SmessageHost {
  /**
   * Its units waiting or running (per-message mode; made at its first event). An array, kept when
   * empty: there are few (maxPendingEvents), and emptying a Set makes V8 shrink it, once per event
   * for a socket with one event in flight.
   */
  private units: EventUnit[] | undefined;
  /**
   * Packets let through whose units are not queued yet. socket.io runs its middleware for every
   * packet of a read (or of a held batch) first, then dispatches each on a tick right after: every
   * bound check that must count a packet runs before those dispatches, and the first one (a wrapper
   * running) sets this back to 0. A packet socket.io never dispatches (a middleware after ours
   * stopped it, its listeners went away) leaves its reservation until the loop's turn ends
   * (`reservedTurn`). No tick of our own per packet (one was about 3% of per-message's server CPU
   * per event in the bench).
   */
  reserved = 0;
  /** The loop's turn the reservations were made in (see {@link turnOf}). */
  private reservedTurn = 0;
  /** OVERFLOW_TOLD | REPORTED | TOLD | GONE (one field, not four: there is one binding per socket). */
  private flags = 0;
  private ticket: TicketAuthorization | undefined;
  /**
   * The hub's retirement mark when the handshake read the copy (see `StoreHub.retiredSince`);
   * undefined when it joined the live copy.
   */
  readMark: number | undefined = undefined;
  /** Other instances on the socket's namespace that told `sconnection` for it: they tell `sinvalid` too. */
  private alsoTold: Array<ServerContext['invalid']> | undefined;
  /** Our stand-in listeners by event, while packets nobody listened to wait for socket.io's dispatch (see {@link awaitListener}). */
  private late: Map<string, Wrapper> | undefined;
  /** The session's runtime in this process (from {@link start}). */
  private runtime!: SessionRuntime;

  constructor(
    readonly socket: Socket,
    public entry: SessionEntry,
    readonly ctx: ServerContext,
    private readonly ticketExpiresAt?: number,
  ) {
    Object.defineProperty(socket, BINDING, { value: this, configurable: true });
  }

  get gone(): boolean {
    return (this.flags & GONE) !== 0;
  }

  /**
   * Not started yet, with a copy read before a copy of its session retired here (that copy's last
   * save, at its last socket's disconnect, may have landed after the read), and no live copy to join
   * instead: started on it, the socket would lose what that save wrote (a page reload in
   * per-connection mode). Its session is to be resolved again.
   */
  get stale(): boolean {
    const { readMark } = this;
    if (readMark === undefined || this.runtime) return false;
    const { hub } = this.ctx;
    return !SessionRuntime.find(hub, this.entry.sid)?.entry && hub.retiredSince(this.entry.sid, readMark);
  }

  get disconnected(): boolean {
    return this.socket.disconnected;
  }

  get sid(): string {
    return this.entry.sid;
  }

  get options(): ResolvedOptions {
    return this.ctx.options;
  }

  get perMessage(): boolean {
    return this.ctx.options.perMessage;
  }

  get session(): SocketSession {
    return this.entry.session;
  }

  /**
   * socket.io's `connection`: join the session's runtime (and its live copy), watch packets, keep the ticket. False
   * when the session went invalid since the handshake loaded it (the socket was told).
   */
  start(): boolean {
    // Started already: two instances on one namespace each hear `connection`, and the socket has one
    // binding (the last handshake's). Started twice, the socket was listed twice in its runtime, had
    // two packet middlewares (maxPendingEvents halved) and was counted twice (a close() never gave the store back).
    if (this.runtime) return !(this.flags & (TOLD | GONE));
    const { socket, ctx } = this;
    // The session's live copy in this process, shared by its sockets (ours, if it has none yet).
    this.runtime = SessionRuntime.of(ctx.hub, this.entry.sid);
    this.entry = this.runtime.join(this, this.entry);
    socket.use(this.onPacket.bind(this) as (packet: unknown, next: (err?: Error) => void) => void);
    socket.on('disconnect', onDisconnect);
    ctx.tracked(1);
    this.runtime.keepChecking(ctx.wheel);
    if (this.ticketExpiresAt !== undefined && ctx.sealer) {
      this.ticket = new TicketAuthorization(this, ctx.sealer, audienceOf(socket.request, ctx.options), this.ticketExpiresAt);
    }
    const reason = ctx.hub.destroyed(this.entry.sid) ? 'destroyed' : this.entry.invalid;
    if (reason) {
      this.invalidate(reason);
      return false;
    }
    return true;
  }

  /** Another instance on the namespace told `sconnection` for this socket: it is told of the invalidation too. */
  alsoTell(invalid: ServerContext['invalid']): void {
    (this.alsoTold ??= []).push(invalid);
  }

  /** After `sconnection`: save what its listeners changed, if anything. */
  connected(): void {
    if (this.entry.touched) this.changed();
  }

  changed(): void {
    if (this.ctx.options.perMessage) void saveTask(this.runtime, this.ctx);
    else saveSoon(this.runtime, this.ctx);
  }

  private onPacket(packet: unknown[], next: (err?: Error) => void): void {
    // (socket.io's parser lets event names be numbers too; a listener of 1 is a listener of '1'.)
    const event = typeof packet[0] === 'number' ? String(packet[0]) : packet[0];
    if (typeof event !== 'string' || DROPPED.has(event)) {
      log.handshake('socket %s: dropped a client event named %o', this.socket.id, event);
      return noticePacket(packet, 'event-refused'); // never delivered, yet answered if it asked (invariant 7)
    }
    if (packet.length > MAX_ARGUMENTS) {
      log.handshake('socket %s: dropped a client event %o with %d arguments', this.socket.id, event, packet.length - 1);
      return noticePacket(packet, 'event-refused');
    }
    if (event === CredentialEvents.REFRESH && this.ticket) {
      this.ticket.refresh(packet[1], packet[packet.length - 1]);
      return next(); // the app may listen too; the refresh itself is ours, never a unit of work
    }
    this.entry.active = true;
    if (event === 'message') translateSmessage(this);
    if (!this.ctx.options.perMessage) {
      next();
      this.changed();
      return;
    }
    if (this.reservedTurn !== turn) this.reserved = 0; // an earlier turn's: its packets were dispatched by now, or never will be
    if ((this.units?.length ?? 0) + this.reserved >= this.ctx.options.maxPendingEvents) return this.overflow(packet);
    // The units of this packet are queued when socket.io dispatches it, on the next tick (none when nobody listens
    // and nothing of this socket waits, queued or let through: a listener can come only from an earlier event's
    // handler, see awaitListener).
    const count = this.wrapListeners(event);
    // (Our stand-in of an earlier packet of this read counts as none: this one needs it too.)
    const none = count === 0 || (count === 1 && this.late?.has(event));
    const late = none && (this.units?.length || this.reserved) && typeof packet[packet.length - 1] === 'function' ? this.awaitListener(event) : undefined;
    if (late || count > 0) {
      this.reserved += 1;
      this.reservedTurn = turnOf();
    }
    next();
    // socket.io queued its dispatch of this packet (a tick) if the middlewares after ours passed it at once: ours
    // leaves after it. (One a middleware after ours holds longer is dispatched to nobody, as without it.)
    if (late) process.nextTick(late);
  }

  /** Not run: every such emit gets its notice; the socket's status push goes once until the queue drained. */
  private overflow(packet: unknown[]): void {
    noticePacket(packet, 'queue-full', { retryAfter: QUEUE_FULL_RETRY_MS });
    if (this.flags & OVERFLOW_TOLD) return;
    this.flags |= OVERFLOW_TOLD;
    log.lock('socket %s: %d events waiting, refusing more', this.socket.id, this.units?.length ?? 0);
    this.emit(Events.UNAVAILABLE, { code: ErrorCode.SESSION_UNAVAILABLE, reason: 'queue-full', retryAfter: QUEUE_FULL_RETRY_MS });
  }

  /**
   * Wrap the listeners of `event` (those not wrapped yet) so each call becomes a unit of work on the
   * session's runtime. Called before socket.io dispatches the event to them, so every way of adding
   * a listener works (`on`, `once`, `prependListener`, `EventEmitter.prototype.on.call(socket, ...)`).
   * Public EventEmitter calls only: the list is taken down and put back in its order, wrapped; the
   * wrapper carries the app's function in `.listener`, so `off(event, listener)` and `listeners()` see it.
   */
  private wrapListeners(event: string): number {
    const { socket } = this;
    const registered = socket.rawListeners(event) as Listener[];
    if (registered.every((listener) => WRAPPED in listener)) return registered.length;
    socket.removeAllListeners(event);
    for (const listener of registered) socket.on(event, WRAPPED in listener ? listener : this.wrap(event, listener));
    return registered.length;
  }

  private wrap(event: string, registered: Listener): Wrapper {
    // Node's `once` registers a wrapper that holds the listener in `.listener`; we take over its job.
    const once = typeof (registered as { listener?: unknown }).listener === 'function';
    const listener = once ? (registered as unknown as { listener: Listener }).listener : registered;
    const binding = this;
    let fired = false;
    const wrapper = function (this: unknown, ...args: unknown[]) {
      binding.reserved = 0; // dispatched: the burst's bound checks are done (see `reserved`)
      // A `once` listener takes the first event only; it stays registered until that event's unit
      // runs (so a handler before it can still take it off), then the unit takes it off.
      if (once && fired) return;
      fired = true;
      // (The ack stays in its place at the end of `args`: the unit puts its held ack there.)
      const ack = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as Ack) : undefined;
      // The next listener of the same emit (socket.io calls them in turn with its one ack): one unit.
      const last = binding.units?.[binding.units.length - 1];
      if (ack && last?.sameEmit(ack)) return last.join(listener, wrapper, once);
      binding.queue(new EventUnit(binding, Date.now() + binding.ctx.options.storeTimeout, listener, args, ack, event, wrapper, once));
    } as Wrapper;
    wrapper[WRAPPED] = true;
    wrapper.listener = listener;
    if (once) wrapper.once = true;
    return wrapper;
  }

  private queue(unit: EventUnit): void {
    (this.units ??= []).push(unit);
    this.runtime.event(unit);
  }

  /**
   * A packet with an ack that no listener waits for, while earlier events of this socket wait their turn: one of their
   * handlers may add the listener (`socket.on('chat', ...)` in a 'join' handler), as it would have before this packet
   * came in plain socket.io, where handlers run as packets come. A listener of ours takes the packet when socket.io
   * dispatches it (so the middlewares after ours still decide), and its unit (NOT_YET) goes to the listeners
   * registered at its turn (events.ts `EventUnit.run`). It is there only from our middleware to socket.io's dispatch
   * (ticks, before any handler runs: no app code sees it); one per event, however many packets of a read it takes.
   * Returns what takes it off (once the last of those packets was dispatched). Without an ack, such a packet is
   * dropped, as before: it took a place in the socket's queue (`maxPendingEvents`) for an event nobody may handle.
   */
  private awaitListener(event: string): () => void {
    const { socket } = this;
    let late = this.late?.get(event);
    if (!late) {
      const binding = this;
      late = function (this: unknown, ...args: unknown[]) {
        binding.reserved = 0; // dispatched (see `reserved`)
        const ack = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as Ack) : undefined;
        if (ack) binding.queue(new EventUnit(binding, Date.now() + binding.ctx.options.storeTimeout, NOT_YET, args, ack, event, NOT_YET));
      } as Wrapper;
      late[WRAPPED] = true;
      late[LATE] = 0;
      socket.on(event, late);
      (this.late ??= new Map()).set(event, late);
    }
    const held = late;
    held[LATE]! += 1;
    return () => {
      if ((held[LATE]! -= 1) > 0) return;
      socket.removeListener(event, held);
      this.late!.delete(event);
    };
  }

  listenersNow(event: string): EventListenerEntry[] {
    this.wrapListeners(event);
    const found: EventListenerEntry[] = [];
    for (const wrapper of this.socket.rawListeners(event) as Wrapper[]) if (wrapper[LATE] === undefined) found.push({ listener: wrapper.listener, wrapper, once: wrapper.once === true });
    return found;
  }

  settled(unit: EventUnit): void {
    const units = this.units;
    const at = units ? units.indexOf(unit) : -1;
    if (!units || at < 0) return;
    if (at === units.length - 1) units.pop();
    else units.splice(at, 1);
    if (units.length === 0) this.flags &= ~OVERFLOW_TOLD;
  }

  report(error: SessionServerError): void {
    this.ctx.report(error, this.socket);
  }

  emit(event: string, payload: unknown): void {
    if (this.socket.connected) this.socket.emit(event, payload);
  }

  /** A store failure: the client is told, once per event that was not run (reported once per tick, unless `reported` already). */
  unavailable(error: SessionUnavailableError, reported = false): void {
    if (!reported && !(this.flags & REPORTED)) {
      this.flags |= REPORTED;
      this.report(error);
      process.nextTick(() => (this.flags &= ~REPORTED));
    }
    this.emit(Events.UNAVAILABLE, error.data);
  }

  invalidate(reason: InvalidReason): void {
    if (this.flags & TOLD) return;
    this.flags |= TOLD;
    const { socket } = this;
    log.invalidate('socket %s: session invalid (%s)', socket.id, reason);
    if (reason === 'corrupt') this.ctx.report(corruptRecordError(this.entry.tag), socket);
    this.ctx.invalid(socket, reason);
    for (const tell of this.alsoTold ?? []) tell(socket, reason);
    if (!socket.connected) return;
    // Its events that will not run are answered before the socket is told and disconnected.
    if (this.units) for (const unit of [...this.units]) unit.notice('session-ended');
    // The event and the disconnect travel in order on the same connection.
    tellAndDisconnect(socket, Events.INVALID, { code: ErrorCode.SESSION_INVALID, reason });
  }

  get copySaver(): (entry: SessionEntry) => void {
    const { ctx } = this;
    return (entry) => saveCopySoon(ctx, entry);
  }

  /** The socket left: its waiting units are dropped (they changed nothing); its changes are saved. */
  stop(): void {
    if (this.gone) return;
    this.flags |= GONE;
    this.ctx.tracked(-1);
    this.ticket?.stop();
    const { runtime } = this;
    runtime.leave(this);
    // Queued: runs after the app's own disconnect listeners, so their changes are saved too.
    const saved = saveTask(runtime, this.ctx, this.entry);
    if (runtime.sockets.length === 0) void saved.finally(() => runtime.retire());
  }
}
