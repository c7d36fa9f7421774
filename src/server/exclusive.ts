/**
 * The one place for "one at a time per session": a lane per session id, process-wide (every
 * namespace, every `sessions()` instance of a store), whose units hold the session's cross-node
 * lock (the `lock` option) while they run. Per-message events wait here with a deadline counted
 * from their arrival; events waiting together run as one batch (one load, the handlers one after
 * another, one save), so a session with many sockets pays one store round trip for many events.
 *
 * Every wait has a deadline: a unit past it is failed as unavailable without running, a lock that
 * cannot be had in time is given up (and released if it comes later), a release that hangs is left
 * behind. So a frozen store or lock service never holds a lane for longer than the deadlines.
 */
import { SessionUnavailableError } from '../errors.js';
import type { UnavailableReason } from '../protocol.js';
import type { SessionLock } from './lock.js';
import type { StoreHub } from './store.js';
import { RETRY_AFTER_MS } from './store.js';
import { log } from './log.js';

/** Most events run in one batch. */
const MAX_BATCH = 64;

/** A unit of work on a session: a save, a revalidation, a cookie renewal. */
export interface Task {
  /** Runs holding the lane (and the lock, when `lock` is given: then `locked` is true). */
  run(locked: boolean): Promise<void>;
  lock?: SessionLock;
  /** ms the lock may be waited for. */
  timeoutMs: number;
  /** The lock could not be had (SessionUnavailableError). */
  failed(error: unknown): void;
}

/** A per-message event waiting for its turn. */
export interface EventUnit {
  /** Epoch ms after which it is failed without running. */
  deadline: number;
  lock?: SessionLock;
  /** Not run, for `reason` (or the error): the socket is told it is unavailable. */
  fail(error: SessionUnavailableError): void;
  /** Whether its socket is gone (then it is dropped: it changed nothing). */
  readonly gone: boolean;
  /**
   * The options of the `sessions()` instance it came from. Only units with the same settings run in
   * one batch: the batch's lock and store deadlines are theirs (instances of one store share a lane).
   */
  readonly settings: object;
  /** Runs a batch of units like it (the first unit's is used). `locked`: the batch holds the lock. */
  runBatch(units: EventUnit[], locked: boolean): Promise<void>;
}

type Item<E> = { task: Task } | { event: E };

const lanes = new WeakMap<StoreHub, Map<string, Lane>>();

export class Lane {
  private readonly items: Array<Item<EventUnit>> = [];
  private running = false;
  private sweep: ReturnType<typeof setTimeout> | undefined;

  /** The lane of `sid` (one per store and session in the process), created on demand, forgotten when idle. */
  static of(hub: StoreHub, sid: string): Lane {
    let map = lanes.get(hub);
    if (!map) lanes.set(hub, (map = new Map()));
    let lane = map.get(sid);
    if (!lane) {
      const created = new Lane(sid, () => map.get(sid) === created && map.delete(sid));
      map.set(sid, (lane = created));
    }
    return lane;
  }

  private constructor(
    private readonly sid: string,
    private readonly forget: () => void,
  ) {}

  /** Queue a per-message event. */
  event(unit: EventUnit): void {
    this.items.push({ event: unit });
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
        const running = 'task' in head ? this.runTask((this.items.shift() as { task: Task }).task) : this.runEvents(this.takeEvents());
        this.watchWaiting();
        await running;
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
    let first: EventUnit | undefined;
    for (const item of this.items) if ('event' in item && (first === undefined || item.event.deadline < first.deadline)) first = item.event;
    if (first === undefined) return;
    this.sweep = setTimeout(() => {
      this.sweep = undefined;
      const now = Date.now();
      for (let i = this.items.length - 1; i >= 0; i--) {
        const item = this.items[i];
        if ('event' in item && item.event.deadline <= now) {
          this.items.splice(i, 1);
          item.event.fail(unavailable('queue-timeout'));
        }
      }
      this.watchWaiting();
    }, Math.max(1, first.deadline - Date.now()));
  }

  /** The waiting events at the head of the queue that share the first one's settings (one batch). */
  private takeEvents(): EventUnit[] {
    const events: EventUnit[] = [];
    const sameSettings = (item: Item<EventUnit>): item is { event: EventUnit } => 'event' in item && (events.length === 0 || item.event.settings === events[0].settings);
    while (events.length < MAX_BATCH && this.items.length > 0 && sameSettings(this.items[0])) events.push((this.items.shift() as { event: EventUnit }).event);
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

  private async runEvents(events: EventUnit[]): Promise<void> {
    const now = Date.now();
    const due = events.filter((unit) => {
      if (unit.gone) return false;
      if (unit.deadline > now) return true;
      unit.fail(unavailable('queue-timeout'));
      return false;
    });
    if (due.length === 0) return;
    const { lock } = due[0];
    let release: (() => Promise<void>) | undefined;
    if (lock) {
      try {
        release = await acquireWithin(lock, this.sid, Math.max(...due.map((unit) => unit.deadline)));
      } catch (err) {
        const error = err instanceof SessionUnavailableError ? err : unavailable('store-error', err);
        for (const unit of due) unit.fail(error);
        return;
      }
    }
    try {
      await due[0].runBatch(due, release !== undefined);
    } finally {
      if (release) await releaseWithin(release, Math.max(1, Math.max(...due.map((unit) => unit.deadline)) - Date.now()));
    }
  }

  /** Units waiting (tests, and the bound check of the socket layer counts its own). */
  get size(): number {
    return this.items.length;
  }
}

/** Lanes of `hub` in existence (tests of the bounds: an idle lane is forgotten). */
export function laneCount(hub: StoreHub): number {
  return lanes.get(hub)?.size ?? 0;
}

/** Resolves once every lane of `hub` has run what was queued in it so far. */
export function settleLanes(hub: StoreHub): Promise<void> {
  const map = lanes.get(hub);
  if (!map) return Promise.resolve();
  const noop = { timeoutMs: 0, failed: () => undefined, run: async () => undefined };
  return Promise.all([...map.values()].map((lane) => lane.task(noop))).then(() => undefined);
}

export function unavailable(reason: UnavailableReason, cause?: unknown): SessionUnavailableError {
  return new SessionUnavailableError(reason, reason === 'lock-timeout' ? 200 : RETRY_AFTER_MS, cause === undefined ? undefined : { cause });
}

/** Wait for `lock` until `deadline` at most; a lock granted after that is released at once. */
export async function acquireWithin(lock: SessionLock, sid: string, deadline: number): Promise<() => Promise<void>> {
  const wait = deadline - Date.now();
  if (wait <= 0) throw unavailable('lock-timeout');
  const pending = Promise.resolve().then(() => lock.acquire(sid));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable('lock-timeout')), wait);
  });
  try {
    return await Promise.race([pending, late]);
  } catch (err) {
    pending.then((release) => release().catch(() => undefined), () => undefined);
    log.lock('lock not had in %d ms: %O', wait, err);
    throw err instanceof SessionUnavailableError ? err : unavailable('store-error', err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Hold `sid`'s lane in this process (no cross-node lock) from its turn until the returned release is
 * called, at most `maxHoldMs`: what `httpLock()` does on one node, so an HTTP request and the
 * session's socket units never overlap. No turn by `deadline`: SESSION_UNAVAILABLE 'queue-timeout'
 * (the turn, when it comes, is given back at once).
 */
export function holdLane(hub: StoreHub, sid: string, deadline: number, maxHoldMs: number): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    let decided = false;
    const timer = setTimeout(() => {
      decided = true;
      reject(unavailable('queue-timeout'));
    }, Math.max(1, deadline - Date.now()));
    void Lane.of(hub, sid).task({
      timeoutMs: 0,
      failed: () => undefined, // no lock to wait for: a lane task without one cannot fail
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

/** Release, waiting `timeoutMs` at most (a lock service that hangs does not hold the lane; the lease ends the lock). */
async function releaseWithin(release: () => Promise<void>, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([release().catch((err: unknown) => log.lock('release failed: %O', err)), late]);
  } finally {
    clearTimeout(timer);
  }
}
