/**
 * The session store as the library uses it: one hub per express-session store object, shared by
 * every `sessions()` instance (every namespace) of the process.
 *
 * - Every call has a deadline; every failure is a SessionUnavailableError (retryable). "No such
 *   session" and "not a session" are values, never errors.
 * - Every write of the store goes through one guarded path, whoever makes it (socket saves, cookie
 *   renewal, revalidation touches, and the app's own HTTP saves, since the store's `set`, `touch` and
 *   `destroy` are wrapped): a write of a destroyed session is dropped, and a write that raced a
 *   destroy is followed by one more destroy (see DestroyedSet). So a destroyed session never exists again.
 * - The hub marks each write (start and end) of a loaded session through this process (`live`,
 *   live-sessions.ts), so a loaded copy can ask whether anything wrote the session since a mark, and
 *   a write of ours is answered with whether it ran alone (an explicit token, see `write`).
 * - `close()` of the last user restores the store's own methods.
 */
import type { Store, SessionData } from 'express-session';
import { SessionUnavailableError } from '../errors.js';
import { DestroyedSet } from './destroyed-set.js';
import { RetiredCopies } from './retired-copies.js';
import { WritesInFlight } from './writes-in-flight.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { sessionTag } from './invalidation.js';
import { log } from './log.js';
import { LiveSessions, type WriteMark } from './live-sessions.js';

export { NO_MARK, type Live, type WriteMark } from './live-sessions.js';

/** How long a client should wait before retrying after a store failure. */
export const RETRY_AFTER_MS = 1000;
/** How long a session read for an HTTP surface (token endpoint, served script) may stand in for the handshake's read. */
const CARRY_MS = 2000;
const CARRY_MAX = 10_000;

export type SessionRecord = SessionData & Record<string, unknown>;
export type Loaded = { record: SessionRecord } | { invalid: 'not-found' | 'corrupt' | 'destroyed' };

type Callback = (err?: unknown, value?: unknown) => void;

/**
 * A write of ours: the session was destroyed before or while it ran; or it landed, and `current` is
 * the mark at which the store's record is what we wrote, when no other write of the session through
 * this process was under way, started or ended from its start until now (undefined otherwise: another
 * write may have landed after ours).
 */
export type Written = 'destroyed' | { current: WriteMark | undefined };

type StoreMethod = (this: Store, sid: string, ...rest: any[]) => unknown;

/**
 * A store record's cookie expiry, epoch ms (read several times per event: a Date's value or a parsed
 * string, no Date made). One that is not a date (another program's write) is none, as express-session
 * takes it (its Invalid Date never expires).
 */
export function expiryOf(cookie: { expires?: Date | string | number | null } | undefined): number | undefined {
  const expires = cookie?.expires;
  if (!expires) return undefined;
  const time = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : new Date(expires).getTime();
  return Number.isNaN(time) ? undefined : time;
}

/** What a store must have returned for it to be a session (express-session's createSession reads `cookie.expires`). */
export function isSessionRecord(value: unknown): value is SessionRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const { cookie } = value as { cookie?: unknown };
  return cookie !== null && typeof cookie === 'object' && !Array.isArray(cookie);
}

/** Express-session's MemoryStore keeps sessions in this process only: nothing else can write them. */
function processLocal(store: Store): boolean {
  return store.constructor?.name === 'MemoryStore' && typeof (store as { sessions?: unknown }).sessions === 'object';
}


/** The deadlines of every store call in the process (and of the reads carried to a handshake), on one timer. */
const deadlines = new Deadlines();

/**
 * Who hears a store call's answer, once: a SessionUnavailableError, or the answer. Never called
 * before the call that was given it returned (a store that calls back at once is heard on a
 * microtask), so a caller may go on with its own work first, as with a promise, without one.
 */
export type Answer<T> = (err: SessionUnavailableError | undefined, value?: T) => void;

/**
 * One store call in flight: it is its own deadline entry, and its callback settles it once (a store
 * that calls back twice, or after the deadline, is heard once). The caller hears `answer`'s view of
 * the store's value, made in the callback: no promise (and turn) per call on the event path.
 */
class StoreCall<T = unknown> implements Expiring {
  readonly deadline: number;
  /** (Set here, before `deadlines.add` sets it: every call keeps one shape.) */
  waiting = false;
  /** The store's method is running: an answer now waits for a microtask (see {@link Answer}). */
  calling = false;
  private settled = false;
  /**
   * Let go once heard: an ended call may wait in the deadline list a while, and must not hold its
   * caller (and through it a whole session record) there.
   */
  private then: Answer<T> | undefined;
  readonly done: Callback = (err, value) => {
    if (this.settled) return;
    this.settled = true;
    deadlines.delete(this);
    if (err) return this.deliver(new SessionUnavailableError('store-error', RETRY_AFTER_MS, { cause: err }));
    let answer: T;
    try {
      answer = this.answer(value ?? null);
    } catch (thrown) {
      // (A value whose `cookie` getter throws, say: the store's own callback must never see it.)
      return this.deliver(new SessionUnavailableError('store-error', RETRY_AFTER_MS, { cause: thrown }));
    }
    this.deliver(undefined, answer);
  };

  constructor(timeoutMs: number, then: Answer<T>) {
    this.deadline = Date.now() + Math.max(1, timeoutMs);
    this.then = then;
    deadlines.add(this);
  }

  expire(): void {
    this.settled = true;
    this.deliver(new SessionUnavailableError('store-timeout', RETRY_AFTER_MS));
  }

  private deliver(err: SessionUnavailableError | undefined, answer?: T): void {
    const then = this.then!;
    this.then = undefined;
    if (this.calling) queueMicrotask(() => then(err, answer));
    else hear(then, err, answer);
  }

  /** What the call answers for the store's value. */
  protected answer(value: unknown): T {
    return value as T;
  }
}

/**
 * The caller hears its answer inside the store's callback: what the caller throws must never reach
 * the store (which may take it for its own failure and call back again, unheard). It is thrown
 * again on its own, as an unhandled rejection of an awaited call would be.
 */
function hear<T>(then: Answer<T>, err: SessionUnavailableError | undefined, answer: T | undefined): void {
  try {
    then(err, answer);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

/** A promise of what a callback-style call answers (the HTTP surfaces, the handshake, the tasks: not the per-event path). */
export function promised<T>(start: (then: (err: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** A read: what the store returned, as a session, or why it is none. */
class ReadCall extends StoreCall<Loaded> {
  constructor(
    private readonly hub: StoreHub,
    private readonly sid: string,
    timeoutMs: number,
    then: Answer<Loaded>,
  ) {
    super(timeoutMs, then);
  }

  protected override answer(value: unknown): Loaded {
    if (this.hub.destroyed(this.sid)) return { invalid: 'destroyed' };
    if (value === null) return { invalid: 'not-found' };
    if (!isSessionRecord(value)) return { invalid: 'corrupt' };
    return { record: value };
  }
}

/**
 * A write of ours. It is also its own write token: `write()` hands it to the guarded path its
 * store call goes through (see `guardedWrite`), which sets `mark` when the write ran alone.
 */
class WriteCall extends StoreCall<Written> {
  /** Set when the write ended alone: the mark after it. */
  mark: WriteMark | undefined = undefined;

  constructor(
    private readonly hub: StoreHub,
    readonly sid: string,
    timeoutMs: number,
    then: Answer<Written>,
  ) {
    super(timeoutMs, then);
  }

  protected override answer(): Written {
    if (this.hub.destroyed(this.sid)) return 'destroyed';
    const { mark } = this;
    return { current: mark !== undefined && this.hub.live.unchangedSince(this.sid, mark) ? mark : undefined };
  }
}

/** Run a callback-style store method under `pending` (the record for set/touch); stores that also return a promise have its rejection handled. */
function call<T>(pending: StoreCall<T>, store: Store, method: StoreMethod, sid: string, record?: SessionRecord): void {
  pending.calling = true;
  try {
    const result = (record === undefined ? method.call(store, sid, pending.done) : method.call(store, sid, record, pending.done)) as unknown;
    if (result && typeof (result as Promise<unknown>).catch === 'function') (result as Promise<unknown>).catch((err) => pending.done(err ?? new Error('store rejected')));
  } catch (err) {
    pending.done(err ?? new Error('store threw'));
  } finally {
    pending.calling = false;
  }
}

const hubs = new WeakMap<Store, StoreHub>();

/** A session's writes counted for its watchers (see `StoreHub.watchWrites`). */
interface WriteWatch {
  watchers: number;
  started: number;
}

export class StoreHub {
  /** How long a write waits for the outcome of its session's destroy under way (then it is dropped). Process-wide; tests shorten it. */
  static destroyWaitMs = 10_000;

  /** This process's writes under way (and, on several nodes, lately ended), by session tag. */
  readonly writesInFlight = new WritesInFlight();
  /** Sessions destroyed lately, by tag: their writes are dropped (invariant 1). */
  readonly destroyedSet = new DestroyedSet(this.writesInFlight);
  /** No other process writes this store (express-session's MemoryStore): a copy nothing wrote since is current. */
  readonly local: boolean;
  private users = 0;
  /** Whole-record writes started through this store (their order, see `WritesInFlight.setEnded`). */
  private sets = 0;
  /** Sessions loaded in this process, by id, with the marks of their writes. */
  readonly live = new LiveSessions();
  /** Copies retired lately (see `retiredSince`). */
  private readonly retiredCopies = new RetiredCopies();
  /** The write `write()` is starting, its own token (handed over synchronously, see `writeOwn`). */
  private handing: WriteCall | undefined;
  /** Reads an HTTP surface made, each forgotten at its deadline (on the deadlines' timer) if no handshake took it. */
  private readonly carried = new Map<string, Expiring & { record: SessionRecord }>();
  private readonly destroyListeners = new Set<(sid: string, tag: string) => void>();
  /** Writes waiting for the outcome of a destroy under way, by tag (see `afterDestroy`). */
  private readonly destroyWaiters = new Map<string, Array<() => void>>();
  /** Who waits for the writes of a tag to end (see `whenQuiet`). */
  private readonly quietWaiters = new Map<string, Array<() => void>>();
  /** The sessions a read-modify-write of ours watches (see `watchWrites`): the writes started through this process, counted. */
  private readonly watched = new Map<string, WriteWatch>();
  private readonly own: { set: StoreMethod; destroy: StoreMethod; touch?: StoreMethod; clear?: StoreMethod };
  /** What writes through this store object showed, for set-up advice (advice.ts): any write at all, the last cookie options stored. */
  readonly seen: { written: boolean; cookie?: { secure?: unknown; sameSite?: unknown } } = { written: false };
  private readonly wrapped: { set: StoreMethod; destroy: StoreMethod; touch?: StoreMethod; clear?: StoreMethod };

  /** The hub of `store`, created (and the store wrapped) on first use. Pair with `release()`. */
  static acquire(store: Store): StoreHub {
    let hub = hubs.get(store);
    if (!hub) {
      hub = new StoreHub(store);
      hubs.set(store, hub);
    }
    hub.users += 1;
    return hub;
  }

  /** The hub of `store` if one is in use (tests of the bounds; no user is counted). */
  static of(store: Store): StoreHub | undefined {
    return hubs.get(store);
  }

  private constructor(readonly store: Store) {
    this.local = processLocal(store);
    const s = store as unknown as Record<string, StoreMethod | undefined>;
    this.own = { set: s.set!, destroy: s.destroy!, touch: s.touch, clear: s.clear };
    const hub = this;
    this.wrapped = {
      set(sid, data, cb?: Callback) {
        hub.see(data);
        return hub.guardedWrite(this, hub.own.set, sid, data, cb);
      },
      destroy(sid, cb?: Callback) {
        return hub.destroyThrough(this, sid, cb);
      },
      touch: this.own.touch && function (sid, data, cb?: Callback) {
        return hub.guardedWrite(this, hub.own.touch!, sid, data, cb);
      },
      // `clear()` destroys every session without a destroy each: the live ones here are told.
      // A read-modify-write under way (watchWrites) takes it for a write: it reads again, and finds the session gone.
      clear: this.own.clear && (function (this: Store, cb?: Callback) {
        hub.countClear();
        return hub.own.clear!.call(this, ((err?: unknown) => {
          hub.countClear();
          if (!err) for (const { sid } of [...hub.live.all()]) hub.destroyedElsewhere(sid);
          cb?.(err);
        }) as never);
      } as unknown as StoreMethod),
    };
    for (const [name, method] of Object.entries(this.wrapped)) if (method) s[name] = method;
  }

  /** One user fewer; the last one restores the store's own methods (unless someone wrapped them after us). */
  release(): void {
    if (--this.users > 0) return;
    hubs.delete(this.store);
    const s = this.store as unknown as Record<string, StoreMethod | undefined>;
    for (const name of ['set', 'destroy', 'touch', 'clear'] as const) {
      if (this.wrapped[name] !== undefined && s[name] === this.wrapped[name]) {
        if (Object.getPrototypeOf(this.store)[name] === this.own[name]) delete s[name];
        else s[name] = this.own[name];
      }
    }
  }

  /** What a write shows for set-up advice (a new object only when the cookie's options differ from the last seen). */
  private see(data: unknown): void {
    this.seen.written = true;
    const cookie = (data as { cookie?: { secure?: unknown; sameSite?: unknown } } | null)?.cookie;
    const seen = this.seen.cookie;
    if (cookie && (seen === undefined || seen.secure !== cookie.secure || seen.sameSite !== cookie.sameSite)) this.seen.cookie = { secure: cookie.secure, sameSite: cookie.sameSite };
  }

  /** Every write path of the store: dropped for a destroyed session, destroyed again if a destroy raced it. */
  private guardedWrite(store: Store, method: StoreMethod, sid: string, data: unknown, cb?: Callback): unknown {
    const own = this.takeToken(sid);
    const tag = this.tagOf(sid);
    if (!this.destroyedSet.empty && this.destroyedSet.has(tag)) {
      // A destroy under way may still fail (the store errs): the write runs after it, or is dropped if it succeeded.
      if (this.destroyedSet.unsettled(tag)) return void this.afterDestroy(tag, () => this.guardedWrite(store, method, sid, data, cb), cb);
      log.save('write of destroyed session %s dropped', tag);
      if (cb) process.nextTick(cb);
      return undefined;
    }
    this.uncarry(sid);
    if (this.watched.size !== 0) this.countStart(sid);
    const order = method === this.own.set ? ++this.sets : 0;
    // Ours runs alone if no other write is under way now and none starts or ends until ours ends.
    const alone = this.writesInFlight.started(tag, sid, order) === 1 && own !== undefined;
    const startedAt = this.live.bump(sid);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      const endedAt = this.live.bumpFrom(sid, startedAt);
      if (alone && endedAt !== undefined) own.mark = endedAt;
      const newer = order === 0 ? undefined : err ? this.writesInFlight.setFailed(tag, order) : this.writesInFlight.setEnded(tag, order, data);
      if (newer !== undefined) this.writeAgain(store, sid, tag, newer);
      const running = this.writesInFlight.ended(tag);
      if (!this.destroyedSet.empty && this.destroyedSet.writeEnded(tag)) this.destroyAgain(sid, tag);
      if (running === 0) this.wakeQuiet(tag);
      cb?.(err);
    };
    try {
      return method.call(store, sid, data, end);
    } catch (err) {
      // Told through the callback only, not also thrown: a MemoryStore serialises inside `set`, so an app's
      // `session.save()` of a BigInt or a cycle threw into its handler (in a per-connection handler: the
      // process ended) after the callback had the error.
      log.save('%s: the store threw while writing: %O', tag, err);
      end(err);
      return undefined;
    }
  }

  /**
   * A write ended after a newer one of the session had ended (see `WritesInFlight.setEnded`): the newer
   * record is written again, before anyone hears of the late one's end, so the store ends with the
   * newest write (an event told its save failed is not applied late over one that was acked).
   */
  private writeAgain(store: Store, sid: string, tag: string, json: string): void {
    log.save('%s: a write ended after a newer one; writing the newer record again', tag);
    try {
      this.wrapped.set.call(store, sid, JSON.parse(json), (err?: unknown) => err && log.save('%s: writing the newer record again failed: %O', tag, err));
    } catch (err) {
      log.save('%s: writing the newer record again threw: %O', tag, err);
    }
  }

  private destroyThrough(store: Store, sid: string, cb?: Callback): unknown {
    const tag = this.tagOf(sid);
    this.destroyedSet.destroying(tag);
    this.uncarry(sid);
    this.live.bump(sid);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      if (this.destroyedSet.destroyed(tag, !err)) this.destroyAgain(sid, tag);
      if (!err) {
        log.invalidate('session %s destroyed through the store', tag);
        for (const listener of [...this.destroyListeners]) listener(sid, tag);
      } else log.invalidate('a destroy of session %s failed: %O', tag, err);
      if (!this.destroyedSet.unsettled(tag)) this.destroySettled(tag);
      cb?.(err);
    };
    try {
      return this.own.destroy.call(store, sid, end);
    } catch (err) {
      // Told through the callback only, not also thrown, as a write's (guardedWrite): thrown too, the caller's
      // error path ran twice (an HTTP logout's), and in a per-connection handler the throw ended the process.
      log.invalidate('%s: the store threw while destroying: %O', tag, err);
      end(err);
      return undefined;
    }
  }

  /**
   * A write of a session whose destroy is under way waits for its outcome (at most `destroyWaitMs`; a
   * destroy that never ends then drops it, told to `cb` as a failure).
   */
  private afterDestroy(tag: string, run: () => void, cb: Callback | undefined): void {
    let waiters = this.destroyWaiters.get(tag);
    if (!waiters) this.destroyWaiters.set(tag, (waiters = []));
    const waiter = () => {
      clearTimeout(timer);
      run();
    };
    const timer = setTimeout(() => {
      // Given up: let go of the write (its record, and an HTTP request's req and res through its callback).
      const list = this.destroyWaiters.get(tag);
      const at = list ? list.indexOf(waiter) : -1;
      if (at >= 0) list!.splice(at, 1);
      if (list?.length === 0) this.destroyWaiters.delete(tag);
      log.save('write of session %s dropped: its destroy did not end within %d ms', tag, StoreHub.destroyWaitMs);
      cb?.(new Error(`socket.io-sessions: the session's destroy did not end within ${StoreHub.destroyWaitMs} ms; the write was dropped`));
    }, StoreHub.destroyWaitMs);
    timer.unref?.();
    waiters.push(waiter);
  }

  /** The destroys of `tag` under way ended (one succeeded, or all failed): the writes that waited go on. */
  private destroySettled(tag: string): void {
    const waiters = this.destroyWaiters.get(tag);
    if (!waiters) return;
    this.destroyWaiters.delete(tag);
    for (const run of waiters) run();
  }

  /** A session was destroyed without our destroy (by `clear()`): remember it and tell the listeners. */
  private destroyedElsewhere(sid: string): void {
    const tag = this.tagOf(sid);
    this.destroyedSet.destroying(tag);
    this.destroyedSet.destroyed(tag, true);
    this.destroySettled(tag);
    for (const listener of [...this.destroyListeners]) listener(sid, tag);
  }

  /** One more destroy, with the store's own method: the listeners already know. */
  private destroyAgain(sid: string, tag: string): void {
    log.invalidate('session %s destroyed once more: a write raced its destroy', tag);
    const failed: Answer<unknown> = (err) => err && log.invalidate('repeat destroy of %s failed: %O', tag, err);
    call(new StoreCall(30_000, failed), this.store, this.own.destroy, sid);
  }

  /** The token of our own write of `sid`, if this write is it (once). */
  private takeToken(sid: string): WriteCall | undefined {
    const token = this.handing;
    this.handing = undefined;
    return token?.sid === sid ? token : undefined;
  }

  /** A copy of `sid` retired (its last socket left, its save ran). */
  copyRetired(sid: string): void {
    this.retiredCopies.retired(sid);
  }

  /** The mark to give {@link retiredSince}, taken when a read begins. */
  retirementMark(): number {
    return this.retiredCopies.mark();
  }

  /** Whether a copy of `sid` retired after `mark` was taken (a read begun then may predate its last save). */
  retiredSince(sid: string, mark: number): boolean {
    return this.retiredCopies.retiredSince(sid, mark);
  }

  /** Whether a session was destroyed lately: a destroy of it succeeded (no hash computed while nothing was). */
  destroyed(sid: string): boolean {
    return !this.destroyedSet.empty && this.destroyedSet.confirmed(this.tagOf(sid));
  }

  /** A session's tag (cached for live sessions: a hash per write otherwise). */
  tagOf(sid: string): string {
    return this.live.of(sid)?.tag ?? sessionTag(sid);
  }

  /**
   * Resolves once no write of `sid` is under way in this process (or after `timeoutMs`). At once when
   * its writes have been under way for longer than `timeoutMs` without a break: one of them hangs (its
   * caller gave up on it at its deadline), and waiting for it would cost every later save its whole
   * deadline until the hung write is forgotten (WritesInFlight's `keepMs`, 10 minutes). (Writes that
   * overlap one another without a break for that long are taken the same way: the caller, which checks
   * the store after waiting, then checks it without waiting, a bounded number of times.)
   */
  whenQuiet(sid: string, timeoutMs: number): Promise<void> {
    const tag = this.tagOf(sid);
    const since = this.writesInFlight.busySince(tag);
    if (since === undefined || Date.now() - since >= timeoutMs) return Promise.resolve();
    return new Promise((resolve) => {
      let done = false;
      const wake = () => {
        if (done) return;
        done = true;
        deadlines.delete(wait);
        resolve();
      };
      // Given up waiting (a write that never ends): do not stay in the list either.
      const expire = () => {
        const waiters = this.quietWaiters.get(tag)?.filter((w) => w !== wake);
        if (waiters?.length) this.quietWaiters.set(tag, waiters);
        else this.quietWaiters.delete(tag);
        wake();
      };
      const wait: Expiring = { deadline: Date.now() + timeoutMs, expire };
      deadlines.add(wait);
      const waiters = this.quietWaiters.get(tag);
      if (waiters) waiters.push(wake);
      else this.quietWaiters.set(tag, [wake]);
    });
  }

  /**
   * Count the writes of `sid` that start through this process (any: express-session's, ours, a touch) until
   * `stop()`: a caller that writes a record it read can tell whether another write started meanwhile (its
   * record may be missing from the one read, or may land after ours). Session ids, not tags: no hash per write.
   */
  watchWrites(sid: string): { started(): number; stop(): void } {
    let watch = this.watched.get(sid);
    if (!watch) this.watched.set(sid, (watch = { watchers: 0, started: 0 }));
    watch.watchers += 1;
    let stopped = false;
    return {
      started: () => watch.started,
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (--watch.watchers === 0 && this.watched.get(sid) === watch) this.watched.delete(sid);
      },
    };
  }

  /** `clear()` writes every session: it counts for every one watched. */
  private countClear(): void {
    for (const watch of this.watched.values()) watch.started += 1;
  }

  private countStart(sid: string): void {
    const watch = this.watched.get(sid);
    if (watch) watch.started += 1;
  }

  private wakeQuiet(tag: string): void {
    const waiters = this.quietWaiters.get(tag);
    if (!waiters) return;
    this.quietWaiters.delete(tag);
    for (const wake of waiters) wake();
  }

  /** Call `listener(sid, tag)` after every successful destroy through the store. Returns a disposer. */
  onDestroy(listener: (sid: string, tag: string) => void): () => void {
    this.destroyListeners.add(listener);
    return () => this.destroyListeners.delete(listener);
  }

  /** Another node destroyed the session of `tag`. */
  remoteDestroyed(tag: string): void {
    const sid = this.destroyedSet.remote(tag);
    this.destroySettled(tag);
    if (sid !== undefined) this.destroyAgain(sid, tag);
  }

  /** What the hub holds right now, per session and process-wide (tests of the bounds: back to empty once idle). */
  sizes(): Record<'users' | 'live' | 'carried' | 'quietWaiters' | 'watched' | 'destroyListeners' | 'destroyWaiters' | 'deadlines' | 'tombstones' | 'writes' | 'retired', number> {
    const { users, live, carried, quietWaiters, watched, destroyListeners, destroyWaiters } = this;
    return { users, live: live.size, carried: carried.size, quietWaiters: quietWaiters.size, watched: watched.size, destroyListeners: destroyListeners.size, destroyWaiters: destroyWaiters.size, deadlines: deadlines.size, tombstones: this.destroyedSet.size, writes: this.writesInFlight.size, retired: this.retiredCopies.size };
  }

  /** Read a session. Rejects with SessionUnavailableError. */
  read(sid: string, timeoutMs: number): Promise<Loaded> {
    return promised((then) => this.readThen(sid, timeoutMs, then));
  }

  /** Read a session; `then` hears the record, or why there is none, or a SessionUnavailableError. */
  readThen(sid: string, timeoutMs: number, then: Answer<Loaded>): void {
    if (this.destroyed(sid)) return queueMicrotask(() => then(undefined, { invalid: 'destroyed' }));
    call(new ReadCall(this, sid, timeoutMs, then), this.store, this.store.get as StoreMethod, sid);
  }

  /** A read for an HTTP surface, carried (once, for a moment) to the handshake that follows it. */
  async readToCarry(sid: string, timeoutMs: number): Promise<Loaded> {
    const loaded = await this.read(sid, timeoutMs);
    if ('record' in loaded) this.carry(sid, loaded.record);
    return loaded;
  }

  /** Keep `record` for CARRY_MS (at most CARRY_MAX of them, the oldest dropped first): not until the next HTTP read, which may never come. */
  private carry(sid: string, record: SessionRecord): void {
    this.uncarry(sid);
    const carried = { record, deadline: Date.now() + CARRY_MS, expire: () => this.carried.get(sid) === carried && this.carried.delete(sid) };
    this.carried.set(sid, carried);
    deadlines.add(carried);
    for (const key of this.carried.keys()) {
      if (this.carried.size <= CARRY_MAX) break;
      this.uncarry(key);
    }
  }

  private uncarry(sid: string): void {
    const carried = this.carried.get(sid);
    if (!carried) return;
    this.carried.delete(sid);
    deadlines.delete(carried);
  }

  /** The handshake's read: a record an HTTP surface read a moment ago (nothing wrote it since), else the store's. */
  async readForHandshake(sid: string, timeoutMs: number): Promise<Loaded> {
    const carried = this.carried.get(sid);
    if (carried) {
      this.uncarry(sid);
      if (Date.now() <= carried.deadline && !this.destroyed(sid)) return { record: carried.record };
    }
    return this.read(sid, timeoutMs);
  }

  /**
   * Write a session, answered with whether the write ran alone (see {@link Written}); 'destroyed'
   * when it was destroyed before or while writing (the write is then undone). Throws SessionUnavailableError.
   */
  write(sid: string, record: SessionRecord, timeoutMs: number): Promise<Written> {
    return promised((then) => this.writeThen(sid, record, timeoutMs, then));
  }

  /** {@link write}, answered to `then`. */
  writeThen(sid: string, record: SessionRecord, timeoutMs: number, then: Answer<Written>): void {
    this.writeOwn(sid, this.store.set as StoreMethod, record, timeoutMs, then);
  }

  /** Extend a session's life (stores without touch get a set, as express-session does); answered as {@link write}. */
  touch(sid: string, record: SessionRecord, timeoutMs: number): Promise<Written> {
    return promised((then) => this.writeOwn(sid, (this.store.touch ?? this.store.set) as StoreMethod, record, timeoutMs, then));
  }

  private writeOwn(sid: string, method: StoreMethod, record: SessionRecord, timeoutMs: number, then: Answer<Written>): void {
    if (this.destroyed(sid)) return queueMicrotask(() => then(undefined, 'destroyed'));
    // call() runs the store's method (our wrapper, unless someone wrapped it after us) synchronously:
    // the guarded path takes the token there. A wrapper that defers it leaves the token untaken, and
    // the write counts as overlapped: safe (the caller checks the store), never a lost update.
    const pending = new WriteCall(this, sid, timeoutMs, then);
    this.handing = pending;
    call(pending, this.store, method, sid, record);
    this.handing = undefined;
  }
}
