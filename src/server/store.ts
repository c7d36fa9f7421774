/**
 * The session store as the library uses it: one hub per express-session store object, shared by
 * every `sessions()` instance (every namespace) of the process.
 *
 * - Every call has a deadline; every failure is a SessionUnavailableError (retryable). "No such
 *   session" and "not a session" are values, never errors.
 * - Every write of the store goes through one guarded path, whoever makes it (socket saves, cookie
 *   renewal, revalidation touches, and the app's own HTTP saves, since the store's `set`, `touch` and
 *   `destroy` are wrapped): a write of a destroyed session is dropped, and a write that raced a
 *   destroy is followed by one more destroy (see Tombstones). So a destroyed session never exists again.
 * - Writes made through this process bump a version per loaded session, so a loaded copy can tell
 *   whether anything wrote the session since it was loaded (see SessionEntry).
 * - `close()` of the last user restores the store's own methods.
 */
import type { Store, SessionData } from 'express-session';
import { SessionUnavailableError } from '../errors.js';
import { Tombstones } from './tombstones.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { sessionRoom } from './invalidation.js';
import { log } from './log.js';

/** How long a client should wait before retrying after a store failure. */
export const RETRY_AFTER_MS = 1000;
/** How long a session read for an HTTP surface (token endpoint, served script) may stand in for the handshake's read. */
const CARRY_MS = 2000;
const CARRY_MAX = 10_000;

export type SessionRecord = SessionData & Record<string, unknown>;
export type Loaded = { record: SessionRecord } | { invalid: 'not-found' | 'corrupt' | 'destroyed' };

type Callback = (err?: unknown, value?: unknown) => void;

/** A session loaded in this process: the hub counts its writes in `version` (see SessionEntry). */
export interface Live {
  readonly sid: string;
  readonly room: string;
  version: number;
}
type StoreMethod = (this: Store, sid: string, ...rest: any[]) => unknown;

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
 * One store call in flight: it is its own deadline entry, and its callback settles it once (a store
 * that calls back twice, or after the deadline, is heard once).
 */
class StoreCall implements Expiring {
  readonly deadline: number;
  readonly promise: Promise<unknown>;
  private settled = false;
  private resolve!: (value: unknown) => void;
  private reject!: (err: unknown) => void;
  readonly done: Callback = (err, value) => {
    if (this.settled) return;
    this.settled = true;
    deadlines.delete(this);
    if (err) this.reject(new SessionUnavailableError('store-error', RETRY_AFTER_MS, { cause: err }));
    else this.resolve(value ?? null);
  };

  constructor(timeoutMs: number) {
    this.deadline = Date.now() + Math.max(1, timeoutMs);
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    deadlines.add(this);
  }

  expire(): void {
    this.settled = true;
    this.reject(new SessionUnavailableError('store-timeout', RETRY_AFTER_MS));
  }
}

/** Call a callback-style store method with a deadline; stores that also return a promise have its rejection handled. */
function call(store: Store, method: StoreMethod, args: unknown[], timeoutMs: number): Promise<unknown> {
  const pending = new StoreCall(timeoutMs);
  try {
    const result = method.call(store, ...(args as [string]), pending.done) as unknown;
    if (result && typeof (result as Promise<unknown>).catch === 'function') (result as Promise<unknown>).catch((err) => pending.done(err ?? new Error('store rejected')));
  } catch (err) {
    pending.done(err ?? new Error('store threw'));
  }
  return pending.promise;
}

const hubs = new WeakMap<Store, StoreHub>();

export class StoreHub {
  readonly tombstones = new Tombstones();
  /** No other process writes this store (express-session's MemoryStore): a copy nothing wrote since is current. */
  readonly local: boolean;
  private users = 0;
  /** Sessions loaded in this process, by id. */
  private readonly live = new Map<string, Live>();
  /** Reads an HTTP surface made, each forgotten at its deadline (on the deadlines' timer) if no handshake took it. */
  private readonly carried = new Map<string, Expiring & { record: SessionRecord }>();
  private readonly destroyListeners = new Set<(sid: string, room: string) => void>();
  /** Who waits for the writes of a room to end (see `whenQuiet`). */
  private readonly quietWaiters = new Map<string, Array<() => void>>();
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
        hub.seen.written = true;
        const cookie = (data as { cookie?: { secure?: unknown; sameSite?: unknown } } | null)?.cookie;
        if (cookie) hub.seen.cookie = { secure: cookie.secure, sameSite: cookie.sameSite };
        return hub.guardedWrite(this, hub.own.set, sid, [data], cb);
      },
      destroy(sid, cb?: Callback) {
        return hub.destroyThrough(this, sid, cb);
      },
      touch: this.own.touch && function (sid, data, cb?: Callback) {
        return hub.guardedWrite(this, hub.own.touch!, sid, [data], cb);
      },
      // `clear()` destroys every session without a destroy each: the live ones here are told.
      clear: this.own.clear && (function (this: Store, cb?: Callback) {
        return hub.own.clear!.call(this, ((err?: unknown) => {
          if (!err) for (const sid of [...hub.live.keys()]) hub.destroyedElsewhere(sid);
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

  /** Every write path of the store: dropped for a destroyed session, destroyed again if a destroy raced it. */
  private guardedWrite(store: Store, method: StoreMethod, sid: string, args: unknown[], cb?: Callback): unknown {
    const room = this.roomOf(sid);
    if (this.tombstones.has(room)) {
      log.save('write of destroyed session %s dropped', room);
      if (cb) process.nextTick(cb);
      return undefined;
    }
    this.uncarry(sid);
    this.bump(sid);
    this.tombstones.writeStarted(room, sid);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      this.bump(sid);
      if (this.tombstones.writeEnded(room)) this.destroyAgain(sid, room);
      if (this.tombstones.running(room) === 0) this.wakeQuiet(room);
      cb?.(err);
    };
    try {
      return method.call(store, sid, ...args, end);
    } catch (err) {
      end(err);
      throw err;
    }
  }

  private destroyThrough(store: Store, sid: string, cb?: Callback): unknown {
    const room = this.roomOf(sid);
    this.tombstones.destroying(room);
    this.uncarry(sid);
    this.bump(sid);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      if (this.tombstones.destroyed(room, !err)) this.destroyAgain(sid, room);
      if (!err) {
        log.invalidate('session %s destroyed through the store', room);
        for (const listener of [...this.destroyListeners]) listener(sid, room);
      }
      cb?.(err);
    };
    try {
      return this.own.destroy.call(store, sid, end);
    } catch (err) {
      end(err);
      throw err;
    }
  }

  /** A session was destroyed without our destroy (by `clear()`): remember it and tell the listeners. */
  private destroyedElsewhere(sid: string): void {
    const room = this.roomOf(sid);
    this.tombstones.destroying(room);
    this.tombstones.destroyed(room, true);
    for (const listener of [...this.destroyListeners]) listener(sid, room);
  }

  /** One more destroy, with the store's own method: the listeners already know. */
  private destroyAgain(sid: string, room: string): void {
    log.invalidate('session %s destroyed once more: a write raced its destroy', room);
    call(this.store, this.own.destroy, [sid], 30_000).catch((err: unknown) => log.invalidate('repeat destroy of %s failed: %O', room, err));
  }

  private bump(sid: string): void {
    const live = this.live.get(sid);
    if (live) live.version += 1;
  }

  /** Whether a session was destroyed lately (no hash computed while nothing was). */
  destroyed(sid: string): boolean {
    return !this.tombstones.empty && this.tombstones.has(this.roomOf(sid));
  }

  /** A session's room name (cached for live sessions: a hash per write otherwise). */
  roomOf(sid: string): string {
    return this.live.get(sid)?.room ?? sessionRoom(sid);
  }

  /** Count this process's writes of a loaded session from now on (until `untrack`). */
  track(live: Live): void {
    this.live.set(live.sid, live);
  }

  untrack(live: Live): void {
    if (this.live.get(live.sid) !== live) return;
    this.live.delete(live.sid);
  }

  /** Every session loaded in this process. */
  liveSessions(): IterableIterator<Live> {
    return this.live.values();
  }

  /** The loaded session of an id, or of a room. */
  liveOf(sid: string): Live | undefined {
    return this.live.get(sid);
  }

  /** (A scan: only another node's destroy notice asks; an index by room would cost memory per session.) */
  liveInRoom(room: string): Live | undefined {
    for (const live of this.live.values()) if (live.room === room) return live;
    return undefined;
  }

  /** Whether a write of `sid` is under way in this process. */
  writing(sid: string): boolean {
    return this.tombstones.running(this.roomOf(sid)) > 0;
  }

  /** Resolves once no write of `sid` is under way in this process (or after `timeoutMs`). */
  whenQuiet(sid: string, timeoutMs: number): Promise<void> {
    const room = this.roomOf(sid);
    if (this.tombstones.running(room) === 0) return Promise.resolve();
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
        const waiters = this.quietWaiters.get(room)?.filter((w) => w !== wake);
        if (waiters?.length) this.quietWaiters.set(room, waiters);
        else this.quietWaiters.delete(room);
        wake();
      };
      const wait: Expiring = { deadline: Date.now() + timeoutMs, expire };
      deadlines.add(wait);
      const waiters = this.quietWaiters.get(room);
      if (waiters) waiters.push(wake);
      else this.quietWaiters.set(room, [wake]);
    });
  }

  private wakeQuiet(room: string): void {
    const waiters = this.quietWaiters.get(room);
    if (!waiters) return;
    this.quietWaiters.delete(room);
    for (const wake of waiters) wake();
  }

  /** Call `listener(sid, room)` after every successful destroy through the store. Returns a disposer. */
  onDestroy(listener: (sid: string, room: string) => void): () => void {
    this.destroyListeners.add(listener);
    return () => this.destroyListeners.delete(listener);
  }

  /** Another node destroyed the session of `room`. */
  remoteDestroyed(room: string): void {
    const sid = this.tombstones.remote(room);
    if (sid !== undefined) this.destroyAgain(sid, room);
  }

  /** What the hub holds right now, per session and process-wide (tests of the bounds: back to empty once idle). */
  sizes(): Record<'users' | 'live' | 'carried' | 'quietWaiters' | 'destroyListeners' | 'deadlines' | 'tombstones' | 'writes', number> {
    const { users, live, carried, quietWaiters, destroyListeners } = this;
    return { users, live: live.size, carried: carried.size, quietWaiters: quietWaiters.size, destroyListeners: destroyListeners.size, deadlines: deadlines.size, ...this.tombstones.size };
  }

  /** Read a session. Throws SessionUnavailableError. */
  async read(sid: string, timeoutMs: number): Promise<Loaded> {
    if (this.destroyed(sid)) return { invalid: 'destroyed' };
    const value = await call(this.store, this.store.get as StoreMethod, [sid], timeoutMs);
    if (this.destroyed(sid)) return { invalid: 'destroyed' };
    if (value === null || value === undefined) return { invalid: 'not-found' };
    if (!isSessionRecord(value)) return { invalid: 'corrupt' };
    return { record: value };
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

  /** Write a session; 'destroyed' when it was destroyed before or while writing (the write is then undone). Throws SessionUnavailableError. */
  async write(sid: string, record: SessionRecord, timeoutMs: number): Promise<'destroyed' | undefined> {
    return this.guarded(sid, () => call(this.store, this.store.set as StoreMethod, [sid, record], timeoutMs));
  }

  /** Extend a session's life (stores without touch get a set, as express-session does). Throws SessionUnavailableError. */
  async touch(sid: string, record: SessionRecord, timeoutMs: number): Promise<'destroyed' | undefined> {
    const { store } = this;
    return this.guarded(sid, () => call(store, (store.touch ?? store.set) as StoreMethod, [sid, record], timeoutMs));
  }

  private async guarded(sid: string, op: () => Promise<unknown>): Promise<'destroyed' | undefined> {
    if (this.destroyed(sid)) return 'destroyed';
    await op();
    return this.destroyed(sid) ? 'destroyed' : undefined;
  }
}
