/**
 * One runtime per (store, session id) per process: the session as this process serves it. It owns
 * the session's queue, its per-message events, which wait with a deadline counted from their arrival,
 * and its tasks (saves, revalidation, cookie renewal, httpLock's turn), one at a time, under the
 * cross-node lock (the `lock` option) when there is one; the loaded copy its sockets share (a
 * SessionEntry: the express-session stand-in and the change tracker); the set of its sockets on every
 * namespace; the save debounce of per-connection mode and its slot in a revalidation wheel. Created
 * on demand (a socket joining, an HTTP turn, a task); forgotten once nothing is queued and no socket
 * is left.
 *
 * Events waiting together run as one batch (events.ts: one load, the handlers one after another, one
 * save, then the acks), so a session with many sockets pays one store round trip for many events. A
 * batch takes only waiting events of one `sessions()` instance: their options (lock, store deadline)
 * are the batch's. An event walks binding (connection.ts) → runtime (here, events.ts,
 * persistence.ts) → store hub → runtime → the client's ack; docs/architecture.md counts the steps.
 */
import type { InvalidReason } from '../../protocol.js';
import { SessionUnavailableError } from '../../errors.js';
import type { SessionLock } from '../lock.js';
import type { SessionEntry } from '../session-entry.js';
import { NO_MARK, type StoreHub } from '../store.js';
import type { Wheel } from '../wheel.js';
import { log } from '../log.js';
import { failAll, runBatch, type EventUnit } from './events.js';
import { acquireWithin, releaseWithin, unavailable } from './lock-wait.js';

/** Most events run in one batch. */
const MAX_BATCH = 64;
/**
 * A settled promise: `then` on it is a microtask (after this tick's other callbacks), without the async
 * resource, bound function and scope that each `queueMicrotask` call makes (one per event here).
 */
const SETTLED = Promise.resolve();

/** A unit of work on a session that is not an event: a save, a revalidation, a cookie renewal. */
export interface Task {
  /** Runs holding the session's turn (and its `lock`, when it has one). */
  run(): Promise<void>;
  /** The cross-node lock to hold while it runs (the `lock` option of its instance). */
  lock?: SessionLock;
  /** ms the lock may be waited for. */
  timeoutMs?: number;
  /** Not started by then (epoch ms; as an event's deadline): it is not run, and fails with 'queue-timeout'. */
  deadline?: number;
  /** The lock could not be had, or the deadline passed (SessionUnavailableError); a task without either cannot fail. */
  failed?(error: unknown): void;
}

/** A queued item: a per-message event (the unit itself: nothing made per event to queue it), or a task. */
type Item = EventUnit | { task: Task };
const isTask = (item: Item): item is { task: Task } => 'task' in item;
/** When a waiting item fails unless it started (none: Infinity). */
const deadlineOf = (item: Item): number => (isTask(item) ? (item.task.deadline ?? Infinity) : item.deadline);
/** A waiting item whose deadline passed: failed, not run. */
function expire(item: Item): void {
  if (isTask(item)) item.task.failed?.(unavailable('queue-timeout'));
  else item.fail(unavailable('queue-timeout'));
}

/** What the runtime needs from each socket of the session (its binding, connection.ts). */
export interface RuntimeSocket {
  /** Tell the socket its session is invalid and disconnect it (once). */
  invalidate(reason: InvalidReason): void;
  /** Tell the socket the store failed (what it asked for did not happen); `reported`: `serror` was told already. */
  unavailable(error: SessionUnavailableError, reported?: boolean): void;
  /** Push an event to the client. */
  emit(event: string, payload: unknown): void;
  /** Its changes are saved by its events' units (per-message mode), not whenever they are made. */
  readonly perMessage: boolean;
  /** The session changed: schedule a save (per-connection: within `saveDelay`). */
  changed(): void;
  /** Its socket.io socket is disconnected (it was stopped, or should have been: see {@link SessionRuntime.dropDisconnected}). */
  readonly disconnected: boolean;
  /** The socket left: leave the runtime, save what it changed. */
  stop(): void;
  /**
   * What saves a copy's changes within `saveDelay`, in the session's queue (a change made after the
   * socket left: see {@link SessionRuntime.changedOutside}): holds the socket's instance, not the socket.
   */
  readonly copySaver: (entry: SessionEntry) => void;
}

/** A runtime's queue, made at its first work (an idle session's runtime carries none) and kept. */
class Queue {
  /** Per-message events and tasks in arrival order. */
  readonly items: Item[] = [];
  running = false;
  /** The timer that fails waiting events past their deadline... */
  sweep: ReturnType<typeof setTimeout> | undefined = undefined;
  /** ...and the deadline it is armed for. */
  sweepAt = 0;
  /** `drain` is starting items: one that ends at once is taken up by its loop, not by a new drain. */
  starting = false;
  /** The item just started ended before its start returned. */
  endedAtOnce = false;
  /**
   * The running batch's events: one array for the queue's life, emptied when the batch ends. (A
   * new array per batch lives as long as its store call; V8 then found that site's arrays alive at
   * its young collections and began allocating them as old objects, which kept every event's
   * objects until a full collection: GC 1.7 -> 4.6 µs per event, bench/profile.ts.)
   */
  readonly batch: EventUnit[] = [];
  constructor(
    /** (One closure each for the queue's life, not one per item.) */
    readonly drainNow: () => void,
    /** The running item ended. */
    readonly itemEnded: () => void,
  ) {}
}

export class SessionRuntime {
  private queue: Queue | undefined;
  /** The loaded copy its sockets share (set by the first socket joining; gone when the last one left). */
  entry: SessionEntry | undefined;
  /** Its sockets in this process (usually one or a few; replaced, not grown: an array sized to fit). */
  sockets: readonly RuntimeSocket[] = [];
  /** How the last per-connection socket that left saves a copy (see {@link changedOutside}); forgotten when another joins. */
  private departed: RuntimeSocket['copySaver'] | undefined;
  /** A pending per-connection save, and when it is due (the earliest `saveDelay` asked for wins). */
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private saveDue = 0;
  /**
   * A save task queued and not started yet (tasks.ts): it saves every change made until it starts,
   * so another is not queued behind it (while the store hangs, one per `saveDelay` piled up).
   */
  saveWaiting: { promise?: Promise<void> } | undefined;
  /** The revalidation wheel that checks it, while it is in one. */
  private wheel: Wheel<SessionRuntime> | undefined;

  /** Where the session's writes through this process stand (the hub's registry keeps it: live-sessions.ts). */
  mark = NO_MARK;
  /** (The hub's registry's: see LiveSessions.byTag.) */
  indexedTag: string | undefined = undefined;

  /**
   * The runtime of `sid` (one per store and session in the process), created on demand. The store
   * hub's registry of live sessions holds the runtimes: one entry per session, its write marks on it.
   */
  static of(hub: StoreHub, sid: string): SessionRuntime {
    let runtime = SessionRuntime.find(hub, sid);
    if (!runtime) hub.live.add((runtime = new SessionRuntime(hub, sid)));
    return runtime;
  }

  /** The runtime of `sid` if there is one. */
  static find(hub: StoreHub, sid: string): SessionRuntime | undefined {
    return hub.live.get(sid) as SessionRuntime | undefined;
  }

  private constructor(
    readonly hub: StoreHub,
    readonly sid: string,
  ) {}

  /** Something is queued or running. */
  get busy(): boolean {
    const queue = this.queue;
    return !!queue && (queue.running || queue.items.length > 0);
  }

  private get work(): Queue {
    return (this.queue ??= new Queue(
      () => this.drain(),
      () => this.itemEnded(),
    ));
  }

  /** Queue a per-message event. */
  event(unit: EventUnit): void {
    const queue = this.work;
    queue.items.push(unit);
    if (!queue.running) this.kick(queue);
    // Armed for a later deadline than this event's (another instance's, with a shorter storeTimeout): armed again for it.
    else if (queue.sweep === undefined || unit.deadline < queue.sweepAt) this.watchWaiting(queue);
  }

  /** Queue a task; resolves once it ran (or failed). In the registered runtime of the session: a timer may outlive this one. */
  task(task: Task): Promise<void> {
    const live = SessionRuntime.of(this.hub, this.sid);
    if (live !== this) return live.task(task);
    const queue = this.work;
    return new Promise((resolve) => {
      queue.items.push({
        task: {
          ...task,
          run: () => task.run().finally(resolve),
          failed: (error) => {
            task.failed?.(error);
            resolve();
          },
        },
      });
      // Behind running work: failed at its deadline if it has one (see watchWaiting). (An idle queue runs it at once.)
      const behind = queue.running;
      this.kick(queue);
      if (task.deadline !== undefined && behind && (queue.sweep === undefined || task.deadline < queue.sweepAt)) this.watchWaiting(queue);
    });
  }

  /** Units waiting (tests, and the bound check of the socket layer counts its own). */
  get size(): number {
    return this.queue?.items.length ?? 0;
  }

  private kick(queue: Queue): void {
    if (queue.running) return;
    queue.running = true;
    // Later in this tick, not now: a unit queued from a listener (a disconnect save) runs after the
    // app's listeners of the same event, so their changes are in it.
    void SETTLED.then(queue.drainNow);
  }

  /**
   * Run the queue's items one at a time until it is empty or one is pending (its end calls
   * `itemEnded`, which drains on). No promise of ours: an event batch ends through a callback.
   */
  private drain(): void {
    const queue = this.work;
    const { items } = queue;
    queue.starting = true;
    try {
      while (items.length > 0) {
        queue.endedAtOnce = false;
        const head = items[0]!;
        if (isTask(head)) void this.runTask((items.shift() as { task: Task }).task).finally(queue.itemEnded);
        else this.startEvents(queue);
        if (!queue.endedAtOnce) return this.watchWaiting(queue);
      }
    } finally {
      queue.starting = false;
    }
    queue.running = false;
    this.idle();
  }

  /**
   * Start the batch at the head of the queue. What our own code throws before its batch runs is
   * contained here (a running batch contains its own: events.ts): its events are answered
   * "unavailable" and it ends, so the fault never reaches the call that drained (a store's callback,
   * or an earlier batch's last step) and the queue goes on.
   */
  private startEvents(queue: Queue): void {
    try {
      this.runEvents(this.takeEvents(queue.items, queue.batch), queue.itemEnded);
    } catch (err) {
      if (queue.endedAtOnce) throw err;
      failAll(queue.batch, err);
      queue.itemEnded();
    }
  }

  private itemEnded(): void {
    const queue = this.work;
    // (Emptied by pops: setting its length to 0 gives its store back in a V8 runtime call, and the
    // next batch's push allocates one again, about 0.1 µs per event.)
    const { batch } = queue;
    while (batch.length > 0) batch.pop();
    clearTimeout(queue.sweep);
    queue.sweep = undefined;
    if (queue.starting) queue.endedAtOnce = true;
    else this.drain();
  }

  /** While a unit runs (however long), events (and tasks with a deadline) waiting behind it are failed when their deadline passes. */
  private watchWaiting(queue: Queue): void {
    clearTimeout(queue.sweep);
    let first = Infinity;
    const { items } = queue;
    for (const item of items) first = Math.min(first, deadlineOf(item));
    if (first === Infinity) return void (queue.sweep = undefined);
    queue.sweepAt = first;
    // Unref'd: events of sockets that left wait here too, and an app that closed its server is not held for them.
    queue.sweep = setTimeout(() => {
      queue.sweep = undefined;
      const now = Date.now();
      for (let i = items.length - 1; i >= 0; i--) {
        const item = items[i]!;
        if (deadlineOf(item) <= now) {
          items.splice(i, 1);
          expire(item);
        }
      }
      this.watchWaiting(queue);
    }, Math.max(1, first - Date.now())).unref();
  }

  /** Into `events`: the waiting events at the head of the queue that share the first one's options (one batch). */
  private takeEvents(items: Item[], events: EventUnit[]): EventUnit[] {
    const first = items.shift() as EventUnit;
    events.push(first);
    while (events.length < MAX_BATCH && items.length > 0) {
      const next = items[0]!;
      if (isTask(next) || next.options !== first.options) break;
      events.push(next);
      items.shift();
    }
    return events;
  }

  private async runTask(task: Task): Promise<void> {
    if (task.deadline !== undefined && task.deadline <= Date.now()) return expire({ task });
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

  /** A batch: its units still due, under the lock of their instance (deadline: the latest of theirs); `ended` once it ran (at once when none was due). */
  private runEvents(events: EventUnit[], ended: () => void): void {
    const now = Date.now();
    let due = events;
    for (const unit of events) {
      if (!unit.gone && unit.deadline > now) continue;
      // (Rare: a unit of a socket that left, or past its deadline. Only then a second array.)
      due = events.filter((u) => !u.gone && u.deadline > now);
      for (const late of events) if (!late.gone && late.deadline <= now) late.fail(unavailable('queue-timeout'));
      break;
    }
    if (due.length === 0) return ended();
    const { lock } = due[0].options;
    if (lock) void this.runLocked(due, lock).finally(ended);
    else runBatch(this, due, ended);
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
      await new Promise<void>((resolve) => runBatch(this, due, resolve));
    } catch (err) {
      failAll(due, err); // our own fault before the batch ran (it contains its own once it runs)
    } finally {
      await releaseWithin(release, Math.max(1, latest - Date.now()));
    }
  }

  /**
   * Forgotten once nothing is queued and it serves no copy (its last socket left and `retire` ran):
   * a socket that connects before then joins this runtime and its copy, never a second one.
   */
  private idle(): void {
    if (this.sockets.length === 0 && !this.entry) this.hub.live.remove(this);
  }

  /**
   * A socket joins with the copy its handshake loaded: the session's live copy when there is one,
   * else this one, which becomes the live one (its copy is not trusted until next loaded: writes
   * made between its load and now were not counted). Returns the copy the socket uses.
   */
  join(socket: RuntimeSocket, loaded: SessionEntry): SessionEntry {
    if (!socket.perMessage) this.departed = undefined;
    let entry = this.entry;
    if (!entry || entry.invalid) {
      entry = this.entry = loaded;
      entry.share(this);
    }
    this.sockets = [...this.sockets, socket];
    return entry;
  }

  /**
   * Stop the sockets that disconnected without their binding hearing it: the app took the
   * binding's `disconnect` listener off (`socket.removeAllListeners()`), so their runtime, copy and
   * revalidation would otherwise stay for good. Run at each revalidation (the wheel's turn).
   */
  dropDisconnected(): void {
    for (const socket of this.sockets) if (socket.disconnected) socket.stop();
  }

  leave(socket: RuntimeSocket): void {
    this.sockets = this.sockets.filter((s) => s !== socket);
    if (!socket.perMessage) this.departed = socket.copySaver;
  }

  /**
   * No socket left once its last save ran: the copy leaves the registry, its timers stop. Not while
   * another save of it waits in the queue (a socket that joined this copy and left while the save of
   * the one before was under way): retired then, a socket connecting meanwhile would take a copy
   * read before that save, and lose what it saves: retired once that save ran.
   */
  retire(): void {
    if (this.sockets.length > 0) return;
    const waiting = this.saveWaiting?.promise;
    if (waiting) return void waiting.finally(() => this.retire());
    this.stopTimers();
    if (this.entry) this.hub.copyRetired(this.sid);
    this.entry?.retire();
    this.entry = undefined;
    if (!this.busy) this.idle();
  }

  /**
   * A per-connection socket changed the session outside a unit of work: save within `saveDelay`.
   * A copy that is not the live one any more (its handler made the change after an await, after
   * its socket dropped and the copy retired), or with no per-connection socket left, is saved within
   * `saveDelay` too, through a socket of the session or the last per-connection one that left: no
   * change is lost silently.
   */
  changedOutside(entry: SessionEntry): void {
    const socket = this.sockets.find((s) => !s.perMessage);
    if (socket && entry === this.entry) socket.changed();
    else (socket?.copySaver ?? this.sockets[0]?.copySaver ?? this.departed)?.(entry); // (a copy retired, another live now: saved as it is, in the queue)
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
    const due = Date.now() + delayMs;
    if (this.saveTimer !== undefined) {
      if (due >= this.saveDue) return;
      clearTimeout(this.saveTimer); // another instance's socket of the session asks for a shorter saveDelay
    }
    this.saveDue = due;
    this.saveTimer = setTimeout(() => {
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
  return hub.live.values() as Iterable<SessionRuntime>;
}

/** Runtimes of `hub` in existence (tests of the bounds: an idle one is forgotten). */
export function runtimeCount(hub: StoreHub): number {
  return hub.live.count;
}

/** Resolves once every runtime of `hub` has run what was queued in it so far. */
export function settleRuntimes(hub: StoreHub): Promise<void> {
  const noop = { run: async () => undefined };
  return Promise.all([...runtimesOf(hub)].map((runtime) => runtime.task(noop))).then(() => undefined);
}

/**
 * Hold `sid`'s turn in this process (no cross-node lock) from when it comes until the returned
 * release is called, at most `maxHoldMs`: what `httpLock()` does on one node, so an HTTP request and
 * the session's socket units never overlap. No turn by `deadline`: SESSION_UNAVAILABLE 'queue-timeout'
 * (the turn, when it comes, is given back at once).
 */
export function holdTurn(hub: StoreHub, sid: string, deadline: number, maxHoldMs: number, prepare?: (runtime: SessionRuntime) => Promise<void>): Promise<() => Promise<void>> {
  return new Promise((resolve, reject) => {
    let decided = false;
    const timer = setTimeout(() => {
      decided = true;
      reject(unavailable('queue-timeout'));
    }, Math.max(1, deadline - Date.now()));
    const runtime = SessionRuntime.of(hub, sid);
    void runtime.task({
      run: () =>
        new Promise<void>((done) => {
          if (decided) return done();
          decided = true;
          clearTimeout(timer);
          const grant = () => {
            const cap = setTimeout(done, maxHoldMs); // a request that never ends does not hold the session's events for good
            cap.unref?.();
            resolve(async () => {
              clearTimeout(cap);
              done();
            });
          };
          // (What `prepare` does holding the turn is bounded by its store deadlines; it reports its own failures.)
          if (prepare) void prepare(runtime).then(grant, grant);
          else grant();
        }),
    });
  });
}
