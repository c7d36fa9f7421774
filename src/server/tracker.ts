/**
 * What a handler changed in a loaded session, found in work proportional to what it touched,
 * not to the session's size. Handlers get a Proxy of the session: assigning, defining or deleting
 * a top-level key marks it; reading an object-valued key marks it "exposed" (it may be changed in
 * place through that reference from then on). A marked key is serialised when first marked (its
 * stored JSON) and at each save (its current JSON). Keys nobody touched are never serialised or
 * parsed. `cookie` belongs to HTTP and is never tracked.
 *
 * Limit: a reference to an object value obtained without the proxy (e.g. kept from before the
 * session was loaded) is not seen. Every path the library hands out (`socket.session`, the
 * `sconnection` and `smessage` arguments) is the proxy.
 */

/** A key's JSON; undefined when absent (JSON drops undefined values and functions alike). */
type Json = string | undefined;

const tracked = (key: string | symbol): key is string => typeof key === 'string' && key !== 'cookie';

/** The JSON of changed keys, and what the store held for them before. */
export interface Changes {
  now: Map<string, Json>;
  before: Map<string, Json>;
}

/** Where a proxied session finds its tracker (a symbol: never serialised, never a session key). */
const TRACKER = Symbol('socket.io-sessions tracker');
type Target = Record<string | symbol, unknown> & { [TRACKER]: ChangeTracker };

/** One handler for every tracked session: nothing per session but the Proxy itself. */
const handler: ProxyHandler<Target> = {
  get(t, key) {
    const value = t[key];
    // Session data only: `req` and `id` are the Session's own too, but not enumerable.
    if (value !== null && typeof value === 'object' && tracked(key) && Object.prototype.propertyIsEnumerable.call(t, key)) t[TRACKER].expose(key);
    return value;
  },
  set(t, key, value) {
    if (tracked(key)) t[TRACKER].mark(key);
    return Reflect.set(t, key, value);
  },
  deleteProperty(t, key) {
    if (tracked(key)) t[TRACKER].mark(key);
    return Reflect.deleteProperty(t, key);
  },
  defineProperty(t, key, descriptor) {
    if (tracked(key)) t[TRACKER].mark(key);
    return Reflect.defineProperty(t, key, descriptor);
  },
};

export class ChangeTracker<T extends object = object> {
  /** The store's JSON (as of the last load or save) of every key marked since (allocated on first use). */
  private saved: Map<string, Json> | undefined;
  /** Object-valued keys whose reference was handed out since the value was loaded. */
  private exposed: Set<string> | undefined;
  /** JSON at the start of the running handler, when that differs from `saved` (later handlers of a batch). */
  private checkpoint: Map<string, Json> | undefined;
  /** While handlers given up on still run: JSON of keys changed outside a handler since (to undo when one settles). */
  private quarantine: Map<string, Json> | undefined;
  private abandoned = 0;
  private inHandler = false;
  readonly proxy: T;

  constructor(private readonly target: Record<string, unknown>) {
    Object.defineProperty(target, TRACKER, { value: this, configurable: true });
    this.proxy = new Proxy(target as Target, handler) as unknown as T;
  }

  private json(key: string): Json {
    return Object.hasOwn(this.target, key) ? JSON.stringify(this.target[key]) : undefined;
  }

  /** An object value's reference is handed out: watch it for changes in place from now on. */
  expose(key: string): void {
    if (this.exposed?.has(key)) return;
    this.mark(key);
    (this.exposed ??= new Set()).add(key);
  }

  /** Remember a key's JSON before it may change (once per layer). */
  mark(key: string): void {
    const saved = (this.saved ??= new Map());
    const needSaved = !saved.has(key);
    const needCheckpoint = this.checkpoint !== undefined && !this.checkpoint.has(key);
    const needQuarantine = this.quarantine !== undefined && !this.inHandler && !this.quarantine.has(key);
    if (!needSaved && !needCheckpoint && !needQuarantine) return;
    const json = this.json(key);
    if (needSaved) saved.set(key, json);
    if (needCheckpoint) this.checkpoint!.set(key, json);
    if (needQuarantine) this.quarantine!.set(key, json);
  }

  /** Whether anything was marked since the last load or save (nothing marked: nothing can have changed). */
  get touched(): boolean {
    return this.saved !== undefined && this.saved.size > 0;
  }

  /** Keys whose current value differs from the store's, with their JSON. Throws if a value cannot be serialised. */
  changes(): Map<string, Json> {
    const changed = new Map<string, Json>();
    if (!this.saved) return changed;
    for (const [key, before] of this.saved) {
      const now = this.json(key);
      if (now !== before) changed.set(key, now);
    }
    return changed;
  }

  /**
   * The changes about to be written, taken as the new stored state at once, so that changes made
   * while the write is under way are measured against what is being written. Undo with `restore`
   * if the write fails.
   */
  take(): Changes {
    const now = this.changes();
    const before = new Map<string, Json>();
    const saved = this.saved;
    if (!saved) return { now, before };
    for (const key of now.keys()) {
      before.set(key, saved.get(key));
      this.quarantine?.delete(key); // written: a later change outside a handler is measured from this
    }
    // Exposed keys stay watched from what is written; the others are marked again when next assigned.
    for (const key of saved.keys()) {
      if (!this.exposed?.has(key)) saved.delete(key);
      else if (now.has(key)) saved.set(key, now.get(key));
    }
    return { now, before };
  }

  /** The write of `take()`'s changes failed: the store still holds what it held before. */
  restore({ before }: Changes): void {
    const saved = (this.saved ??= new Map());
    for (const [key, json] of before) saved.set(key, json);
  }

  /** A handler starts. The first of a unit starts from the stored state; later ones (a batch) get a checkpoint. */
  begin(first: boolean): void {
    this.checkpoint = first ? undefined : new Map([...(this.exposed ?? [])].map((key) => [key, this.json(key)] as const));
    this.inHandler = true;
  }

  end(): void {
    this.checkpoint = undefined;
    this.inHandler = false;
  }

  /** Undo what the running handler changed (to its checkpoint, or to the stored state). */
  rollback(): void {
    const layer = this.checkpoint ?? this.saved;
    if (layer) this.undo(layer);
  }

  private undo(layer: Map<string, Json>): void {
    for (const [key, json] of layer) {
      if (this.json(key) === json) continue;
      if (json === undefined) delete this.target[key];
      else this.target[key] = JSON.parse(json);
      this.exposed?.delete(key); // a fresh object: nobody holds it yet
    }
  }

  /**
   * The running handler is given up on (after `rollback`) and may go on: objects it read from the
   * session are replaced by copies (what it changes in them later goes nowhere), and what is
   * assigned outside a handler from now on is undone when it settles (`settledAbandoned`).
   */
  abandon(): void {
    for (const key of this.exposed ?? []) {
      const json = this.json(key);
      if (json !== undefined) this.target[key] = JSON.parse(json); // (an exposed key deleted since holds nothing to detach)
    }
    this.exposed?.clear();
    this.quarantine ??= new Map();
    this.abandoned++;
  }

  /**
   * A handler given up on settled: undo what was changed outside a handler since it was given up
   * (`undo` false: keep it, it may be someone else's). While another handler runs, its changes
   * cannot be told apart from that handler's: they stay.
   */
  settledAbandoned(undo = true): void {
    if (!this.quarantine) return;
    if (!this.inHandler) {
      if (undo) this.undo(this.quarantine);
      this.quarantine.clear();
    }
    if (--this.abandoned === 0) this.quarantine = undefined;
  }

  /**
   * Values were taken from the store: `taken` keys hold fresh objects nobody was handed yet; `stored`
   * is the store's JSON of keys changed here and not saved (they stay changes).
   */
  rebase(taken: Iterable<string>, stored: Map<string, Json>): void {
    for (const key of taken) {
      this.saved?.delete(key);
      this.exposed?.delete(key);
    }
    if (stored.size > 0) {
      const saved = (this.saved ??= new Map());
      for (const [key, json] of stored) saved.set(key, json);
    }
  }
}
