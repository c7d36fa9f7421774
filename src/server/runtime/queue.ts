/**
 * A session's queue in this process: its per-message events, which wait with a deadline counted
 * from their arrival, and its tasks (saves, revalidation, cookie renewal, httpLock's turn), one at a
 * time, under the cross-node lock (the `lock` option) when there is one. Events waiting together run
 * as one batch (batch.ts: one load, the handlers one after another, one save, then the acks), so a
 * session with many sockets pays one store round trip for many events. A batch takes only waiting
 * events of one `sessions()` instance: their options (lock, store deadline) are the batch's.
 */
import { SessionUnavailableError } from '../../errors.js';
import type { SessionLock } from '../lock.js';
import { acquireWithin, releaseWithin, unavailable } from './lock-wait.js';
import type { EventUnit } from './event.js';

/** Most events run in one batch. */
const MAX_BATCH = 64;

/** A unit of work on a session that is not an event: a save, a revalidation, a cookie renewal. */
export interface Task {
  /** Runs holding the session's turn (and its `lock`, when it has one). */
  run(): Promise<void>;
  /** The cross-node lock to hold while it runs (the `lock` option of its instance). */
  lock?: SessionLock;
  /** ms the lock may be waited for. */
  timeoutMs?: number;
  /** The lock could not be had (SessionUnavailableError); a task without a lock cannot fail. */
  failed?(error: unknown): void;
}

/** A queued item: a per-message event (the unit itself: nothing made per event to queue it), or a task. */
type Item = EventUnit | { task: Task };
const isTask = (item: Item): item is { task: Task } => 'task' in item;

/**
 * The session's queue: per-message events and tasks in arrival order, one at a time; the runtime
 * (index.ts) runs its batches and is told when the queue went idle.
 */
export abstract class SessionQueue {
  private readonly items: Item[] = [];
  private running = false;
  private sweep: ReturnType<typeof setTimeout> | undefined;
  /** (One closure for the queue's life, not one per busy period; made at its first work.) */
  private drainNow: (() => void) | undefined;

  constructor(readonly sid: string) {}

  /** Run a batch of events of one instance (batch.ts). */
  protected abstract runBatch(units: EventUnit[]): Promise<void>;

  /** Nothing is queued or running any more. */
  protected abstract idle(): void;

  /** Something is queued or running. */
  get busy(): boolean {
    return this.running || this.items.length > 0;
  }

  /** Queue a per-message event. */
  event(unit: EventUnit): void {
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
          run: () => task.run().finally(resolve),
          failed: (error) => {
            task.failed?.(error);
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
    queueMicrotask((this.drainNow ??= () => void this.drain()));
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
      else this.idle();
    }
  }

  /** While a unit runs (however long), events waiting behind it are failed when their deadline passes. */
  private watchWaiting(): void {
    if (this.sweep !== undefined) return;
    let first: EventUnit | undefined;
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

  /** The waiting events at the head of the queue that share the first one's options (one batch). */
  private takeEvents(): EventUnit[] {
    const first = this.items.shift() as EventUnit;
    const events = [first];
    while (events.length < MAX_BATCH && this.items.length > 0) {
      const next = this.items[0];
      if (isTask(next) || next.options !== first.options) break;
      events.push(next);
      this.items.shift();
    }
    return events;
  }

  private async runTask(task: Task): Promise<void> {
    if (!task.lock) return task.run();
    const timeoutMs = task.timeoutMs ?? 0;
    let release: () => Promise<void>;
    try {
      release = await acquireWithin(task.lock, this.sid, Date.now() + timeoutMs);
    } catch (err) {
      return task.failed?.(err);
    }
    try {
      await task.run();
    } finally {
      await releaseWithin(release, timeoutMs);
    }
  }

  /** A batch: its units still due, under the lock of their instance (deadline: the latest of theirs). Undefined: none was due. */
  private runEvents(events: EventUnit[]): Promise<void> | undefined {
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
    const { lock } = due[0].options;
    return lock ? this.runLocked(due, lock) : this.runBatch(due);
  }

  private async runLocked(due: EventUnit[], lock: SessionLock): Promise<void> {
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
      await this.runBatch(due);
    } finally {
      await releaseWithin(release, Math.max(1, latest - Date.now()));
    }
  }
}
