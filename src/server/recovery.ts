/**
 * socket.io's `connectionStateRecovery` with `skipMiddlewares: true` connects a recovered socket
 * (a new Socket object with the old id, rooms and `data`, but none of the old listeners) without
 * running namespace middlewares, so no handshake bound it. Its session is resolved at `connection`
 * from its handshake's credential, and the packets it sends meanwhile are held until it is bound
 * (or answered with a notice when it is refused), so no handler ever runs without its session.
 */
import type { Socket } from 'socket.io';
import { ErrorCode, Events, NOTICE_FIELD, SESSION_ENDED, type EmitNotice } from '../protocol.js';
import { SessionError } from '../errors.js';
import { log } from './log.js';
import { noticePacket, QUEUE_FULL_RETRY_MS } from './runtime/events.js';

type Packet = unknown[];
type Next = (err?: Error) => void;
type Middleware = (packet: Packet, next: Next) => void;
type AnyListener = (...args: unknown[]) => void;

/** A held packet, with what of the socket had already seen it when it arrived. */
interface Held {
  packet: Packet;
  next: Next;
  /** How many middlewares were added through `use` during the hold before it arrived (socket.io runs those itself). */
  uses: number;
  /** The socket's `onAny` listeners when it arrived (socket.io called those before any middleware). */
  any: readonly AnyListener[];
}

/**
 * Holds a recovered socket's packets (a socket middleware) until {@link PacketHold.release} or {@link PacketHold.refuse}.
 * A held event with an ack gets SESSION_ENDED when its socket is refused: its session is not there.
 *
 * socket.io runs a packet through the middlewares the socket had when it arrived, and calls the
 * socket's `onAny` listeners before them. The app adds its own (its permission checks, its logging)
 * in `sconnection`, which fires only once the session is resolved: after the held packets arrived.
 * So that they see the held packets as they see every later one, the instance's `use` is wrapped
 * during the hold (the wrapper is the socket's own property, deleted when the last hold ends) to know the
 * middlewares added meanwhile, and at release each held packet first goes to the `onAny` listeners
 * and the middlewares it missed, in socket.io's order, before it goes on.
 */
export class PacketHold {
  private held: Held[] | undefined = [];
  private open = false;
  /** Middlewares added through the socket's `use` since the hold began, in order (the binding's own too). */
  readonly uses: Middleware[] = [];

  /** `limit`: packets held at most (`maxPendingEvents`); one more is answered queue-full at once, not kept. */
  constructor(
    private readonly socket: Socket,
    limit: number,
  ) {
    socket.use((packet, next) => {
      if (this.held && this.held.length >= limit) noticePacket(packet, 'queue-full', { retryAfter: QUEUE_FULL_RETRY_MS });
      else if (this.held) this.held.push({ packet, next, uses: this.uses.length, any: socket.listenersAny().slice() });
      else if (this.open) next();
      // refused: dropped (the socket is being disconnected)
    });
    usesOf.add(socket, this);
  }

  /** Bound: the held packets go on in order, each through what it missed (see the class); later ones pass straight on. */
  release(): void {
    const held = this.take();
    this.open = true;
    const any = this.socket.listenersAny() as AnyListener[];
    for (const { packet, next, uses, any: seen } of held) {
      for (const listener of any.slice()) if (!seen.includes(listener)) listener.apply(this.socket, packet);
      runMiddlewares(this.socket, this.uses.slice(uses), packet, next);
    }
  }

  /** Refused: every held event that asked for an ack gets one notice instead (invariant 7). */
  refuse(notice: EmitNotice = SESSION_ENDED): void {
    for (const { packet } of this.take()) {
      const ack = packet[packet.length - 1];
      if (typeof ack === 'function') ack({ [NOTICE_FIELD]: notice });
    }
  }

  private take(): Held[] {
    const held = this.held ?? [];
    this.held = undefined;
    usesOf.delete(this.socket, this);
    return held;
  }
}

/**
 * One wrapper of a method of another library's object, shared by everyone who needs it: an own
 * property of the object (over its prototype's method, or over someone else's wrapper) put at the
 * first `add`, deleted at the last `delete` if it is still ours (if someone wrapped over it since,
 * ours stays, passing calls on, with nobody left to ask).
 */
class SharedWrap<T extends object, M> {
  private readonly wraps = new WeakMap<T, { members: Set<M>; wrapper: unknown }>();

  constructor(
    private readonly method: string,
    /** The wrapper of `original` (the method it covers), which asks `members` (the set, as it is at each call). */
    private readonly make: (original: (...args: any[]) => any, members: ReadonlySet<M>) => (...args: any[]) => any,
  ) {}

  add(target: T, member: M): void {
    const known = this.wraps.get(target);
    if (known) return void known.members.add(member);
    const members = new Set([member]);
    const wrapper = this.make((target as Record<string, (...args: any[]) => any>)[this.method]!, members);
    Object.defineProperty(target, this.method, { configurable: true, writable: true, value: wrapper });
    this.wraps.set(target, { members, wrapper });
  }

  delete(target: T, member: M): void {
    const known = this.wraps.get(target);
    if (!known?.members.delete(member) || known.members.size > 0) return;
    this.wraps.delete(target);
    if (Object.getOwnPropertyDescriptor(target, this.method)?.value === known.wrapper) delete (target as Record<string, unknown>)[this.method]; // the prototype's again
  }
}

/**
 * A socket's `use`, wrapped while it has holds (two `sessions()` instances on one namespace hold it
 * twice): every middleware added through it is told to each hold.
 */
const usesOf = new SharedWrap<Socket, PacketHold>('use', (use, holds) =>
  function (this: Socket, fn: Middleware) {
    for (const each of holds) each.uses.push(fn);
    return use.call(this, fn);
  },
);

/** `fns` in order on `packet`, as socket.io runs a socket's middlewares: the first error, or the end, goes to `done`. */
function runMiddlewares(socket: Socket, fns: Middleware[], packet: Packet, done: Next): void {
  const step = (i: number): void => {
    if (i === fns.length) return done();
    fns[i]!.call(socket, packet, (err) => (err ? done(err) : step(i + 1)));
  };
  step(0);
}

/** The part of a namespace's adapter that recovery goes through (socket.io-adapter's public methods). */
interface RecoveringAdapter {
  restoreSession(pid: string, offset: string): Promise<{ data?: unknown } | null> | { data?: unknown } | null;
}
type Restore = RecoveringAdapter['restoreSession'];

/**
 * Which session a socket was bound to, for its recovery: socket.io gives a recovered socket its old
 * id, rooms, `data` and missed broadcasts, which are the old session's. If its credential now names
 * another session (a logout, then a login as someone else, while it was away), it must not keep
 * them. Kept by the socket's `data` object, which socket.io hands over to the recovered socket (the
 * same object on one node; nothing of the app's is written): a WeakMap, no timer, nothing per
 * socket once its `data` is gone.
 *
 * socket.io writes a recovered socket's missed broadcasts to the client before any middleware or
 * `connection` listener runs, and keeps what it persisted until `maxDisconnectionDuration` whoever
 * comes back with its private id. So the namespace's adapter is asked first (its `restoreSession`,
 * wrapped on the adapter instance, given back by `dispose()`): a socket whose session was destroyed
 * while it was away, or whose recovery was refused once already, is not recovered at all; it
 * connects as a new socket, through the handshake, with none of the old session's rooms or
 * broadcasts. (Before, a refused one came back with the same private id about four times a second,
 * its old session's broadcasts delivered each time, until `maxDisconnectionDuration`.) What only the
 * credential can tell (a login as someone else, the old session still alive) is refused at its
 * `connection` (see {@link SessionServer}'s recover), once.
 */
export class RecoveryMemory {
  private readonly tags = new WeakMap<object, string>();
  /** The `data` of sockets whose recovery was refused: never recovered again. */
  private readonly refusedData = new WeakSet<object>();
  /** Adapters whose `restoreSession` this memory guards (see {@link restoresOf}): left at dispose(). */
  private readonly adapters = new Set<RecoveringAdapter>();
  private disposed = false;

  /** `destroyed(tag)`: the session of `tag` was destroyed lately (here or, told through the adapter, on another node). */
  constructor(private readonly destroyed: (tag: string) => boolean) {}

  /** `socket` is bound to the session of `tag` (called after `sconnection`, which may set `socket.data`). */
  connected(socket: Socket, tag: string): void {
    const data: unknown = socket.data;
    if (typeof data === 'object' && data !== null) this.tags.set(data, tag);
    const adapter = socket.nsp.adapter as unknown as RecoveringAdapter;
    if (!this.disposed && !this.adapters.has(adapter)) this.adapters.add(adapter), restoresOf.add(adapter, this);
  }

  /** A recovered socket whose credential names another session than the one it had. */
  changed(socket: Socket, tag: string): boolean {
    if (!socket.recovered) return false;
    const data: unknown = socket.data;
    const before = typeof data === 'object' && data !== null ? this.tags.get(data) : undefined;
    return before !== undefined && before !== tag;
  }

  /** A recovered socket was refused as invalid: socket.io is not to recover it again. */
  refused(socket: Socket): void {
    const data: unknown = socket.data;
    if (socket.recovered && typeof data === 'object' && data !== null) this.refusedData.add(data);
  }

  /** Its adapters stop asking it (the last one to leave gives an adapter its own `restoreSession` back). */
  dispose(): void {
    this.disposed = true;
    for (const adapter of this.adapters) restoresOf.delete(adapter, this);
    this.adapters.clear();
  }

  /** Whether a session socket.io persisted may be restored: not when its socket's session ended, or its recovery was refused. */
  restorable(data: unknown): boolean {
    if (typeof data !== 'object' || data === null) return true;
    const tag = this.tags.get(data);
    return !this.refusedData.has(data) && !(tag !== undefined && this.destroyed(tag));
  }
}

/** A namespace adapter's `restoreSession`, wrapped while memories guard it: a session any of them will not have restored is not. */
const restoresOf = new SharedWrap<RecoveringAdapter, RecoveryMemory>('restoreSession', (restore, memories) =>
  async function (this: RecoveringAdapter, pid: string, offset: string) {
    const session = (await restore.call(this, pid, offset)) as Awaited<ReturnType<Restore>>;
    for (const memory of memories) if (session && !memory.restorable(session.data)) return null;
    return session;
  },
);

/**
 * A recovered socket whose credential no longer gives a session: its held events are answered,
 * the client is told (`invalid`, or `unavailable` so the SDK retries later), then the socket is
 * disconnected, which makes it leave its restored rooms.
 */
export function refuseRecovered(socket: Socket, hold: PacketHold, err: unknown): void {
  const data = err instanceof SessionError ? err.data : undefined;
  const unavailable = data?.code === ErrorCode.SESSION_UNAVAILABLE;
  hold.refuse(unavailable ? { code: ErrorCode.SESSION_UNAVAILABLE, reason: data!.reason as EmitNotice['reason'], retryAfter: data!.retryAfter } : SESSION_ENDED);
  log.handshake('recovered socket %s refused: %s', socket.id, (err as Error)?.message);
  if (!socket.connected) return;
  if (data?.code === ErrorCode.SESSION_INVALID) tellAndDisconnect(socket, Events.INVALID, data);
  else if (unavailable) tellAndDisconnect(socket, Events.UNAVAILABLE, data);
  else socket.disconnect();
}

/**
 * The last word before a server-side disconnect. With connectionStateRecovery, `socket.emit` goes
 * through the adapter, which a cluster adapter (redis-streams) delivers only after a Redis round
 * trip, after the disconnect: a `local` broadcast to the socket's own room is delivered at once.
 */
export function tellAndDisconnect(socket: Socket, event: string, payload: unknown): void {
  socket.nsp.local.to(socket.id).emit(event, payload);
  socket.disconnect();
}
