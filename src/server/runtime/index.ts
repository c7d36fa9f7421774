/**
 * One runtime per (store, session id) per process: the session as this process serves it. It owns
 * the session's queue (queue.ts: events and tasks with their deadlines and the lock), the loaded
 * copy its sockets share (a SessionEntry: the express-session stand-in and the change tracker), the
 * set of its sockets on every namespace, the save debounce of per-connection mode and its slot in a
 * revalidation wheel. Created on demand (a socket joining, an HTTP turn, a task); forgotten once
 * nothing is queued and no socket is left.
 *
 * An event walks binding (connection.ts) → runtime (here, batch.ts, persistence.ts) → store hub →
 * runtime → the client's ack; docs/architecture.md counts the steps.
 */
import type { InvalidReason } from '../../protocol.js';
import type { SessionUnavailableError } from '../../errors.js';
import type { SessionEntry } from '../session-entry.js';
import type { StoreHub } from '../store.js';
import type { Wheel } from '../wheel.js';
import { log } from '../log.js';
import type { EventUnit } from './event.js';
import { SessionQueue, type Task } from './queue.js';
import { runBatch } from './batch.js';
import { unavailable } from './lock-wait.js';

export type { Task } from './queue.js';

/** What the runtime needs from each socket of the session (its binding, connection.ts). */
export interface RuntimeSocket {
  /** Tell the socket its session is invalid and disconnect it (once). */
  invalidate(reason: InvalidReason): void;
  /** Tell the socket the store failed (what it asked for did not happen). */
  unavailable(error: SessionUnavailableError): void;
  /** Push an event to the client. */
  emit(event: string, payload: unknown): void;
  /** Its changes are saved by its events' units (per-message mode), not whenever they are made. */
  readonly perMessage: boolean;
  /** The session changed: schedule a save (per-connection: within `saveDelay`). */
  changed(): void;
}

const runtimes = new WeakMap<StoreHub, Map<string, SessionRuntime>>();

export class SessionRuntime extends SessionQueue {
  /** The loaded copy its sockets share (set by the first socket joining; gone when the last one left). */
  entry: SessionEntry | undefined;
  /** Its sockets in this process (usually one or a few; replaced, not grown: an array sized to fit). */
  sockets: readonly RuntimeSocket[] = [];
  /** A pending per-connection save. */
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  /** The revalidation wheel that checks it, while it is in one. */
  private wheel: Wheel<SessionRuntime> | undefined;

  /** The runtime of `sid` (one per store and session in the process), created on demand. */
  static of(hub: StoreHub, sid: string): SessionRuntime {
    let map = runtimes.get(hub);
    if (!map) runtimes.set(hub, (map = new Map()));
    let runtime = map.get(sid);
    if (!runtime) map.set(sid, (runtime = new SessionRuntime(hub, sid, map)));
    return runtime;
  }

  /** The runtime of `sid` if there is one. */
  static find(hub: StoreHub, sid: string): SessionRuntime | undefined {
    return runtimes.get(hub)?.get(sid);
  }

  private constructor(
    readonly hub: StoreHub,
    sid: string,
    private readonly registry: Map<string, SessionRuntime>,
  ) {
    super(sid);
  }

  /** Queue a task in the session's runtime: this one while it is registered (a timer may outlive it). */
  override task(task: Task): Promise<void> {
    const live = SessionRuntime.of(this.hub, this.sid);
    return live === this ? super.task(task) : live.task(task);
  }

  protected runBatch(units: EventUnit[]): Promise<void> {
    return runBatch(this, units);
  }

  /**
   * Forgotten once nothing is queued and it serves no copy (its last socket left and `retire` ran):
   * a socket that connects before then joins this runtime and its copy, never a second one.
   */
  protected idle(): void {
    if (this.sockets.length === 0 && !this.entry && this.registry.get(this.sid) === this) this.registry.delete(this.sid);
  }

  /**
   * A socket joins with the copy its handshake loaded: the session's live copy when there is one,
   * else this one, which becomes the live one (its copy is not trusted until next loaded: writes
   * made between its load and now were not counted). Returns the copy the socket uses.
   */
  join(socket: RuntimeSocket, loaded: SessionEntry): SessionEntry {
    let entry = this.entry;
    if (!entry || entry.invalid) {
      entry = this.entry = loaded;
      entry.share(this);
    }
    this.sockets = [...this.sockets, socket];
    return entry;
  }

  leave(socket: RuntimeSocket): void {
    this.sockets = this.sockets.filter((s) => s !== socket);
  }

  /** No socket left once its last save ran: the copy leaves the registry, its timers stop. */
  retire(): void {
    if (this.sockets.length > 0) return;
    this.stopTimers();
    this.entry?.retire();
    this.entry = undefined;
    if (!this.busy) this.idle();
  }

  /** A per-connection socket changed the session outside a unit of work: save within `saveDelay`. */
  changedOutside(): void {
    this.sockets.find((socket) => !socket.perMessage)?.changed();
  }

  /** Every socket of the session runs its handlers as units (per-message mode). */
  get perMessageOnly(): boolean {
    return this.sockets.every((socket) => socket.perMessage);
  }

  /**
   * The session is gone: tell every socket that it is invalid (once); nothing is saved after that.
   * `entry`: the copy that found out, when not the live one (a retired copy: its sockets are gone).
   */
  invalidate(reason: InvalidReason, entry = this.entry): void {
    if (!entry || entry.invalid) return;
    if (entry !== this.entry) {
      entry.invalid = reason;
      return;
    }
    entry.invalid = reason;
    this.stopTimers();
    log.invalidate('%s invalid (%s): %d socket(s) told', entry.tag, reason, this.sockets.length);
    for (const socket of this.sockets) socket.invalidate(reason);
  }

  /** Run `save` within `delayMs` (not pushed back by later events: under steady traffic a change still lands in time). */
  saveSoon(delayMs: number, save: () => void): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      save();
    }, delayMs);
  }

  /** A pending debounced save, taken to run now (flush). */
  takeSaveSoon(): boolean {
    if (this.saveTimer === undefined) return false;
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    return true;
  }

  /** Checked every `revalidateInterval` while it has sockets (on the instance's wheel: one timer for all sessions). */
  keepChecking(wheel: Wheel<SessionRuntime> | undefined): void {
    if (!wheel || this.wheel) return;
    this.wheel = wheel;
    wheel.add(this);
  }

  private stopTimers(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    this.wheel?.remove(this);
    this.wheel = undefined;
  }
}

/** Every runtime of `hub` in this process. */
export function runtimesOf(hub: StoreHub): Iterable<SessionRuntime> {
  return runtimes.get(hub)?.values() ?? [];
}

/** Runtimes of `hub` in existence (tests of the bounds: an idle one is forgotten). */
export function runtimeCount(hub: StoreHub): number {
  return runtimes.get(hub)?.size ?? 0;
}

/** Resolves once every runtime of `hub` has run what was queued in it so far. */
export function settleRuntimes(hub: StoreHub): Promise<void> {
  const map = runtimes.get(hub);
  if (!map) return Promise.resolve();
  const noop = { run: async () => undefined };
  return Promise.all([...map.values()].map((runtime) => runtime.task(noop))).then(() => undefined);
}

/**
 * Hold `sid`'s turn in this process (no cross-node lock) from when it comes until the returned
 * release is called, at most `maxHoldMs`: what `httpLock()` does on one node, so an HTTP request and
 * the session's socket units never overlap. No turn by `deadline`: SESSION_UNAVAILABLE 'queue-timeout'
 * (the turn, when it comes, is given back at once).
 */
export function holdTurn(hub: StoreHub, sid: string, deadline: number, maxHoldMs: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    let decided = false;
    const timer = setTimeout(() => {
      decided = true;
      reject(unavailable('queue-timeout'));
    }, Math.max(1, deadline - Date.now()));
    void SessionRuntime.of(hub, sid).task({
      run: () =>
        new Promise<void>((done) => {
          if (decided) return done();
          decided = true;
          clearTimeout(timer);
          const cap = setTimeout(done, maxHoldMs); // a request that never ends does not hold the session's events for good
          cap.unref?.();
          resolve(async () => {
            clearTimeout(cap);
            done();
          });
        }),
    });
  });
}
