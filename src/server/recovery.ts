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
    watchUses(socket, this);
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
    unwatchUses(this.socket, this);
    return held;
  }
}

/** The holds of a socket (two `sessions()` instances on one namespace hold it twice) and the one wrapper of its `use` they share. */
const watched = new WeakMap<Socket, { holds: Set<PacketHold>; wrapper: Socket['use'] }>();

/** Tell `hold` every middleware added through the socket's `use` (an own property of the socket, wrapping the prototype's). */
function watchUses(socket: Socket, hold: PacketHold): void {
  const known = watched.get(socket);
  if (known) return void known.holds.add(hold);
  const holds = new Set([hold]);
  const use = socket.use;
  const wrapper = function (this: Socket, fn: Middleware) {
    for (const each of holds) each.uses.push(fn);
    return use.call(this, fn as Parameters<Socket['use']>[0]);
  } as Socket['use'];
  Object.defineProperty(socket, 'use', { configurable: true, writable: true, value: wrapper });
  watched.set(socket, { holds, wrapper });
}

/** `hold` ended; the last one gives the socket its `use` back (unless someone wrapped ours since: then ours stays, passing calls on). */
function unwatchUses(socket: Socket, hold: PacketHold): void {
  const known = watched.get(socket);
  if (!known?.holds.delete(hold) || known.holds.size > 0) return;
  watched.delete(socket);
  if (Object.getOwnPropertyDescriptor(socket, 'use')?.value === known.wrapper) delete (socket as Partial<Socket>).use; // the prototype's again
}

/** `fns` in order on `packet`, as socket.io runs a socket's middlewares: the first error, or the end, goes to `done`. */
function runMiddlewares(socket: Socket, fns: Middleware[], packet: Packet, done: Next): void {
  const step = (i: number): void => {
    if (i === fns.length) return done();
    fns[i]!.call(socket, packet, (err) => (err ? done(err) : step(i + 1)));
  };
  step(0);
}

/**
 * Which session a socket was bound to, for its recovery: socket.io gives a recovered socket its old
 * id, rooms, `data` and missed broadcasts, which are the old session's. If its credential now names
 * another session (a logout, then a login as someone else, while it was away), it must not keep
 * them. Kept by the socket's `data` object, which socket.io hands over to the recovered socket (the
 * same object on one node; nothing of the app's is written): a WeakMap, no timer, nothing per
 * socket once its `data` is gone.
 */
export class RecoveryMemory {
  private readonly tags = new WeakMap<object, string>();

  /** `socket` is bound to the session of `tag` (called after `sconnection`, which may set `socket.data`). */
  connected(socket: Socket, tag: string): void {
    const data: unknown = socket.data;
    if (typeof data === 'object' && data !== null) this.tags.set(data, tag);
  }

  /** A recovered socket whose credential names another session than the one it had. */
  changed(socket: Socket, tag: string): boolean {
    if (!socket.recovered) return false;
    const data: unknown = socket.data;
    const before = typeof data === 'object' && data !== null ? this.tags.get(data) : undefined;
    return before !== undefined && before !== tag;
  }
}

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
