/**
 * One runtime per (store, session id) per process, created on demand and forgotten when idle: the
 * session's queue, with deadlines and the cross-node lock (the `lock` option), for every namespace
 * and every `sessions()` instance of a store. Per-message events wait here with a deadline counted
 * from their arrival; events waiting together run as one batch (work.ts: one load, the handlers one
 * after another, one save, then the acks), so a session with many sockets pays one store round trip
 * for many events. Other work (saves, revalidation, cookie renewal, httpLock's turn) runs as tasks.
 *
 * Options travel with each work item: a batch takes only waiting events of one instance, and runs
 * under that instance's lock and store deadline.
 */
import { SessionUnavailableError } from '../../errors.js';
import type { SessionLock } from '../lock.js';
import { acquireWithin, releaseWithin, unavailable } from './lock-wait.js';
import type { PerMessageUnit } from '../per-message.js';
import { runBatch } from './work.js';
import type { StoreHub } from '../store.js';

/** Most events run in one batch. */
const MAX_BATCH = 64;

/** A unit of work on a session that is not an event: a save, a revalidation, a cookie renewal. */
export interface Task {
  /** Runs holding the session's turn (and the lock, when `lock` is given: then `locked` is true). */
  run(locked: boolean): Promise<void>;
  lock?: SessionLock;
  /** ms the lock may be waited for. */
  timeoutMs: number;
  /** The lock could not be had (SessionUnavailableError). */
  failed(error: unknown): void;
}

/** A queued item: a per-message event (the unit itself: nothing made per event to queue it), or a task. */
type Item = PerMessageUnit | { task: Task };
const isTask = (item: Item): item is { task: Task } => 'task' in item;

const runtimes = new WeakMap<StoreHub, Map<string, SessionRuntime>>();

export class SessionRuntime {
  private readonly items: Item[] = [];
  private running = false;
  private sweep: ReturnType<typeof setTimeout> | undefined;

  /** The runtime of `sid` (one per store and session in the process), created on demand, forgotten when idle. */
  static of(hub: StoreHub, sid: string): SessionRuntime {
    let map = runtimes.get(hub);
    if (!map) runtimes.set(hub, (map = new Map()));
    let runtime = map.get(sid);
    if (!runtime) {
      const created = new SessionRuntime(sid, () => map.get(sid) === created && map.delete(sid));
      map.set(sid, (runtime = created));
    }
    return runtime;
  }

  private constructor(
    private readonly sid: string,
    private readonly forget: () => void,
  ) {}

  /** Queue a per-message event. */
  event(unit: PerMessageUnit): void {
    this.items.push(unit);
    if (this.running) this.watchWaiting();
    else this.kick();
  }

  /** Queue a task; resolves once it ran (or failed). */
  task(task: Task): Promise<void> {
    return new Promise((resolve) => {
      this.items.push({
        task: {
          ...task,
          run: (locked) => task.run(locked).finally(resolve),
          failed: (error) => {
            task.failed(error);
            resolve();
          },
        },
      });
      this.kick();
    });
  }

  /** Units waiting (tests, and the bound check of the socket layer counts its own). */
  get size(): number {
    return this.items.length;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Later in this tick, not now: a unit queued from a listener (a disconnect save) runs after the
    // app's listeners of the same event, so their changes are in it.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.items.length > 0) {
        const head = this.items[0];
        const running = isTask(head) ? this.runTask((this.items.shift() as { task: Task }).task) : this.runEvents(this.takeEvents());
        this.watchWaiting();
        if (running) await running;
        clearTimeout(this.sweep);
        this.sweep = undefined;
      }
    } finally {
      this.running = false;
      if (this.items.length > 0) this.kick();
      else this.forget();
    }
  }

  /** While a unit runs (however long), events waiting behind it are failed when their deadline passes. */
  private watchWaiting(): void {
    if (this.sweep !== undefined) return;
    let first: PerMessageUnit | undefined;
    for (const item of this.items) if (!isTask(item) && (first === undefined || item.deadline < first.deadline)) first = item;
    if (first === undefined) return;
    this.sweep = setTimeout(() => {
      this.sweep = undefined;
      const now = Date.now();
      for (let i = this.items.length - 1; i >= 0; i--) {
        const item = this.items[i];
        if (!isTask(item) && item.deadline <= now) {
          this.items.splice(i, 1);
          item.fail(unavailable('queue-timeout'));
        }
      }
      this.watchWaiting();
    }, Math.max(1, first.deadline - Date.now()));
  }

  /** The waiting events at the head of the queue that share the first one's settings (one batch). */
  private takeEvents(): PerMessageUnit[] {
    const first = this.items.shift() as PerMessageUnit;
    const events = [first];
    while (events.length < MAX_BATCH && this.items.length > 0) {
      const next = this.items[0];
      if (isTask(next) || next.settings !== first.settings) break;
      events.push(next);
      this.items.shift();
    }
    return events;
  }

  private async runTask(task: Task): Promise<void> {
    let release: (() => Promise<void>) | undefined;
    try {
      if (task.lock) release = await acquireWithin(task.lock, this.sid, Date.now() + task.timeoutMs);
    } catch (err) {
      return task.failed(err);
    }
    try {
      await task.run(release !== undefined);
    } finally {
      if (release) await releaseWithin(release, task.timeoutMs);
    }
  }

  /** A batch: its units still due, under the lock of their instance (deadline: the latest of theirs). Undefined: none was due. */
  private runEvents(events: PerMessageUnit[]): Promise<void> | undefined {
    const now = Date.now();
    let due = events;
    for (const unit of events) {
      if (!unit.gone && unit.deadline > now) continue;
      // (Rare: a unit of a socket that left, or past its deadline. Only then a second array.)
      due = events.filter((u) => !u.gone && u.deadline > now);
      for (const late of events) if (!late.gone && late.deadline <= now) late.fail(unavailable('queue-timeout'));
      break;
    }
    if (due.length === 0) return undefined;
    const { lock } = due[0];
    return lock ? this.runLocked(due, lock) : runBatch(due);
  }

  private async runLocked(due: PerMessageUnit[], lock: SessionLock): Promise<void> {
    const latest = Math.max(...due.map((unit) => unit.deadline));
    let release: () => Promise<void>;
    try {
      release = await acquireWithin(lock, this.sid, latest);
    } catch (err) {
      const error = err instanceof SessionUnavailableError ? err : unavailable('store-error', err);
      for (const unit of due) unit.fail(error);
      return;
    }
    try {
      await runBatch(due);
    } finally {
      await releaseWithin(release, Math.max(1, latest - Date.now()));
    }
  }
}

/** Runtimes of `hub` in existence (tests of the bounds: an idle one is forgotten). */
export function runtimeCount(hub: StoreHub): number {
  return runtimes.get(hub)?.size ?? 0;
}

/** Resolves once every runtime of `hub` has run what was queued in it so far. */
export function settleRuntimes(hub: StoreHub): Promise<void> {
  const map = runtimes.get(hub);
  if (!map) return Promise.resolve();
  const noop = { timeoutMs: 0, failed: () => undefined, run: async () => undefined };
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
      timeoutMs: 0,
      failed: () => undefined, // no lock to wait for: a task without one cannot fail
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
