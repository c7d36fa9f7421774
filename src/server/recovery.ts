/**
 * socket.io's `connectionStateRecovery` with `skipMiddlewares: true` connects a recovered socket
 * (a new Socket object with the old id, rooms and `data`, but none of the old listeners) without
 * running namespace middlewares, so no handshake bound it. Its session is resolved at `connection`
 * from its handshake's credential, and the packets it sends meanwhile are held until it is bound
 * (or answered with a notice when it is refused), so no handler ever runs without its session.
 */
import type { Socket } from 'socket.io';
import { ErrorCode, Events, NOTICE_FIELD, SESSION_ENDED, type EmitNotice, type InvalidReason } from '../protocol.js';
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
 * property of the object (over its prototype's method, or over an own property someone put there
 * before) put at the first `add`, taken back at the last `delete` if it is still ours (what it
 * covered is put back); if someone wrapped over it since, ours stays, passing calls on, with
 * nobody left to ask.
 */
class SharedWrap<T extends object, M> {
  private readonly wraps = new WeakMap<T, { members: Set<M>; wrapper: unknown; covered: PropertyDescriptor | undefined }>();

  constructor(
    private readonly method: string,
    /** The wrapper of `original` (the method it covers), which asks `members` (the set, as it is at each call). */
    private readonly make: (original: (...args: any[]) => any, members: ReadonlySet<M>) => (...args: any[]) => any,
  ) {}

  add(target: T, member: M): void {
    const known = this.wraps.get(target);
    if (known) return void known.members.add(member);
    const members = new Set([member]);
    const covered = Object.getOwnPropertyDescriptor(target, this.method);
    const wrapper = this.make((target as Record<string, (...args: any[]) => any>)[this.method]!, members);
    Object.defineProperty(target, this.method, { configurable: true, writable: true, value: wrapper });
    this.wraps.set(target, { members, wrapper, covered });
  }

  delete(target: T, member: M): void {
    const known = this.wraps.get(target);
    if (!known?.members.delete(member) || known.members.size > 0) return;
    this.wraps.delete(target);
    if (Object.getOwnPropertyDescriptor(target, this.method)?.value !== known.wrapper) return;
    if (known.covered) Object.defineProperty(target, this.method, known.covered);
    else delete (target as Record<string, unknown>)[this.method]; // the prototype's again
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

/** What socket.io hands an adapter to keep for a socket it may recover, and gets back (socket.io-adapter's public types). */
interface PersistedSession {
  sid: string;
  data?: unknown;
  /** Ours: the tag of the session the socket had (a hash of its id), kept with the rest. */
  [TAG_FIELD]?: unknown;
}

/** The part of a namespace's adapter that recovery goes through (socket.io-adapter's public methods). */
interface RecoveringAdapter {
  persistSession(session: PersistedSession): void;
  restoreSession(pid: string, offset: string): Promise<PersistedSession | null> | PersistedSession | null;
}

/** The field of a persisted session that carries its socket's session tag (kept by every adapter: socket.io's spreads the object, redis-streams encodes all of it). */
const TAG_FIELD = 'socketIoSessionsTag';

const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;

/**
 * The session each socket had, by its `data` object (read, never written; nothing of the app's is
 * changed): socket.io hands it to the recovered socket (the same object on one node; a cluster
 * adapter's copy is entered when it is restored). One per process, so that an instance closed and
 * a new one opened on the same server still know the sockets of the old.
 */
const tagsByData = new WeakMap<object, string>();

/**
 * By the private id a client recovers with (`socket.handshake.auth.pid`, which socket.io restored
 * its session by): the tag of the session restored for this recovery (what the socket had, whatever
 * the app keeps in `socket.data`, an object it shares between sockets or a string), and whether its
 * recovery was refused. Entries are made only by real restores and refusals (a private id is a
 * secret of its client); each is kept {@link PID_KEEP_MS}, at most {@link PIDS_KEPT} of them.
 */
const byPid = new Map<string, { tag?: string; refused?: boolean; at: number }>();
const PIDS_KEPT = 100_000;
/** Longer than socket.io's default `maxDisconnectionDuration` (2 min), as the destroyed set's memory. */
const PID_KEEP_MS = 10 * 60_000;

function rememberPid(pid: string, what: { tag?: string; refused?: boolean }): void {
  const now = Date.now();
  const known = byPid.get(pid);
  byPid.delete(pid); // (re-inserted last: the map stays in time order)
  byPid.set(pid, { ...known, ...what, at: now });
  for (const [old, { at }] of byPid) {
    if (byPid.size <= PIDS_KEPT && now - at < PID_KEEP_MS) break;
    byPid.delete(old);
  }
}

const pidOf = (socket: Socket): string | undefined => {
  const pid: unknown = (socket.handshake.auth as { pid?: unknown } | undefined)?.pid;
  return typeof pid === 'string' ? pid : undefined;
};

/** Reasons a handshake gives that the credential cannot fix by itself (a ticket the SDK fetches again can). */
const ENDS_RECOVERY = new Set<InvalidReason>(['no-session-id', 'bad-signature', 'not-found', 'expired', 'destroyed', 'corrupt', 'session-changed']);

/**
 * Which session a socket was bound to, for its recovery: socket.io gives a recovered socket its old
 * id, rooms, `data` and missed broadcasts, which are the old session's. If its credential now names
 * another session (a logout, then a login as someone else, while it was away), it must not keep
 * them.
 *
 * socket.io writes a recovered socket's missed broadcasts to the client before any middleware or
 * `connection` listener runs, and keeps what it persisted until `maxDisconnectionDuration` (the
 * in-memory adapter: whoever comes back with its private id). So the namespace's adapter is asked
 * first: its `persistSession` is wrapped to keep the socket's session tag with what it persists
 * (through a cluster adapter too: on another node, or as a copy), and its `restoreSession` to
 * decline a socket whose session was destroyed while it was away (here or, told through the
 * adapter, on another node), or whose recovery was refused once already: it connects as a new
 * socket, through the handshake, with none of the old session's rooms or broadcasts. (Before, a
 * refused one came back with the same private id about four times a second, its old session's
 * broadcasts delivered each time, until `maxDisconnectionDuration`.) What only the credential can
 * tell (a login as someone else, the old session still alive) is refused at its `connection` (see
 * {@link SessionServer}'s recover), once. Both wrappers are own properties of the adapter
 * instance, shared by every instance, given back when the last one is disposed.
 */
export class RecoveryMemory {
  /** Adapters this memory guards (weakly: a dynamic namespace's child and its adapter may be dropped by socket.io). */
  private adapters = new Set<WeakRef<RecoveringAdapter>>();
  private readonly guarded = new WeakSet<RecoveringAdapter>();
  /** Size of {@link adapters} after its last sweep of dropped ones. */
  private swept = 0;
  private disposed = false;

  constructor(
    /** The session of `tag` was destroyed lately (here or, told through the adapter, on another node). */
    readonly destroyed: (tag: string) => boolean,
    /** The tag of the session a connected socket is bound to, if any. */
    readonly tagOf: (socket: Socket) => string | undefined,
  ) {}

  /** `socket` is bound to the session of `tag` (called after `sconnection`, which may set `socket.data`). */
  connected(socket: Socket, tag: string): void {
    if (isObject(socket.data)) tagsByData.set(socket.data, tag);
    this.guard(socket.nsp.adapter);
  }

  /**
   * Ask this memory before `adapter` restores a session (the namespace's at the start, so that the
   * sockets of an instance closed before are guarded; a dynamic namespace's children and an adapter
   * socket.io made anew as their first socket connects).
   */
  guard(namespaceAdapter: unknown): void {
    const adapter = namespaceAdapter as RecoveringAdapter;
    if (this.disposed || this.guarded.has(adapter) || typeof adapter.restoreSession !== 'function' || typeof adapter.persistSession !== 'function') return;
    this.guarded.add(adapter);
    persistsOf.add(adapter, this);
    restoresOf.add(adapter, this);
    this.adapters.add(new WeakRef(adapter));
    if (this.adapters.size > 2 * this.swept + 16) this.sweep();
  }

  /** A recovered socket whose credential names another session than the one it had. */
  changed(socket: Socket, tag: string): boolean {
    if (!socket.recovered) return false;
    const pid = pidOf(socket);
    const before = (pid === undefined ? undefined : byPid.get(pid)?.tag) ?? (isObject(socket.data) ? tagsByData.get(socket.data) : undefined);
    return before !== undefined && before !== tag;
  }

  /** A recovered socket was refused for `reason`: socket.io is not to recover it again, unless a new credential may still do (a ticket). */
  refused(socket: Socket, reason: InvalidReason): void {
    if (!socket.recovered || !ENDS_RECOVERY.has(reason)) return;
    const pid = pidOf(socket);
    if (pid !== undefined) rememberPid(pid, { refused: true });
  }

  /** Its adapters stop asking it (the last one to leave gives an adapter its own methods back). */
  dispose(): void {
    this.disposed = true;
    for (const ref of this.adapters) {
      const adapter = ref.deref();
      if (!adapter) continue;
      persistsOf.delete(adapter, this);
      restoresOf.delete(adapter, this);
    }
    this.adapters.clear();
  }

  private sweep(): void {
    this.adapters = new Set([...this.adapters].filter((ref) => ref.deref() !== undefined));
    this.swept = this.adapters.size;
  }
}

/**
 * What the adapter persists for a socket, with the tag of its session: the socket's binding says it
 * (the socket is still in its namespace when socket.io persists it; its `data` may be an object the
 * app put there after `sconnection`), else its `data` object (a socket recovered from a copy).
 */
const persistsOf = new SharedWrap<RecoveringAdapter, RecoveryMemory>('persistSession', (persist, memories) =>
  function (this: RecoveringAdapter, session: PersistedSession) {
    const socket = (this as { nsp?: { sockets?: Map<string, Socket> } }).nsp?.sockets?.get(session.sid);
    let tag: string | undefined;
    if (socket) for (const memory of memories) tag ??= memory.tagOf(socket);
    tag ??= isObject(session.data) ? tagsByData.get(session.data) : undefined;
    return persist.call(this, tag === undefined ? session : { ...session, [TAG_FIELD]: tag });
  },
);

/** A namespace adapter's `restoreSession`: a session any guarding memory will not have restored is not. */
const restoresOf = new SharedWrap<RecoveringAdapter, RecoveryMemory>('restoreSession', (restore, memories) =>
  async function (this: RecoveringAdapter, pid: string, offset: string) {
    const session = (await restore.call(this, pid, offset)) as PersistedSession | null;
    if (!session) return session;
    const { data } = session;
    const kept = session[TAG_FIELD];
    const tag = typeof kept === 'string' ? kept : isObject(data) ? tagsByData.get(data) : undefined;
    if (byPid.get(pid)?.refused) return null;
    if (tag !== undefined) {
      for (const memory of memories) if (memory.destroyed(tag)) return null;
      if (isObject(data)) tagsByData.set(data, tag); // a copy (a cluster adapter's): the socket's `data` from now on
      rememberPid(pid, { tag });
    }
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
