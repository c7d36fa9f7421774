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
 *
 * Values are checked before they are serialised (see storable.ts): a value that cannot be stored
 * never throws here; it is kept out of the saves and reported. While the session holds only plain
 * values (`plainData`) they are read, copied and loaded directly; once the app defines an accessor
 * (or anything that could refuse an assignment) every read goes through property descriptors, so
 * no getter of the app's ever runs in the library. The session's prototype cannot be
 * changed through the proxy, and names it inherits (`__proto__`, `constructor`, `save`, `touch`...)
 * are not session data: assigning them is ignored, as express-session ignores them when it loads.
 */
import { SessionValueError } from '../errors.js';
import { log } from './log.js';
import { jsonShaped, takeJsonForm, unstorable } from './storable.js';

/** A value that cannot be stored: why, and its property (so that undoing to it puts it back as it was). */
class Unstorable {
  constructor(
    readonly problem: string,
    readonly property: PropertyDescriptor,
  ) {}

  /** What was reported (a value, or an accessor's getter). */
  get held(): unknown {
    return 'value' in this.property ? this.property.value : this.property.get;
  }
}

/** A key's JSON; undefined when absent (JSON drops undefined values and functions alike); Unstorable when it has none. */
type Json = string | undefined | Unstorable;

const tracked = (key: string | symbol): key is string => typeof key === 'string' && key !== 'cookie';

/**
 * Names that are not session data: what the session inherits (its methods, Object.prototype's)
 * and the words of JavaScript's object machinery. express-session skips them when it loads a session.
 */
const reserved = (t: object, key: string | symbol): boolean =>
  // (The own check first: a key the session holds, the usual case, is then never looked up along the prototype chain.)
  key === '__proto__' || key === 'constructor' || key === 'prototype' || (typeof key === 'string' && !Object.hasOwn(t, key) && key in t);

/**
 * express-session's own fixed properties (`id`, `req`): own, not enumerable, not writable. A Proxy
 * cannot pretend to assign them (its invariants), so an assignment fails as on a plain Session.
 */
const machinery = (t: object, key: string): boolean =>
  (key === 'id' || key === 'req') && Object.getOwnPropertyDescriptor(t, key)?.writable === false && !Object.prototype.propertyIsEnumerable.call(t, key);

/** The JSON of changed keys, and what the store held for them before. */
export interface Changes {
  now: Map<string, string | undefined>;
  before: Map<string, Json>;
  /** Keys left out because their value cannot be stored (each reported once: only news is here). */
  refused: SessionValueError[];
  /** Keys changed outside a handler until then (changed outside again if the write fails). */
  outside?: ReadonlySet<string>;
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
    // Ignored, not thrown: `Object.assign(session, clientJson)` is common app code, and a throw in
    // a per-connection handler would let a client's `{"__proto__": ...}` crash the process.
    if (reserved(t, key)) return void log.save('ignored an assignment of session.%s (not session data)', String(key)), true;
    if (typeof key === 'symbol') t[TRACKER].plainData = false; // (a spread would copy it: keep to Object.keys)
    // express-session's own `id` and `req` are fixed (not data): refused as on a plain Session, not marked changed.
    if (!tracked(key) || machinery(t, key)) return Reflect.set(t, key, value);
    const tracker = t[TRACKER];
    tracker.mark(key);
    // An object assigned is held by the handler that assigned it (`const cart = (session.cart ??= [])`): watched as one read.
    if (value !== null && typeof value === 'object') tracker.expose(key);
    // An accessor with no setter (defined earlier, never stored) gives way to the assigned value:
    // in strict code a failed assignment throws, and in a per-connection handler that is a crash.
    const own = tracker.plainData ? undefined : Object.getOwnPropertyDescriptor(t, key);
    if (own?.get && !own.set) return Reflect.defineProperty(t, key, { value, writable: true, enumerable: true, configurable: true });
    return Reflect.set(t, key, value);
  },
  deleteProperty(t, key) {
    if (tracked(key) && !reserved(t, key) && !machinery(t, key)) t[TRACKER].mark(key);
    return Reflect.deleteProperty(t, key);
  },
  defineProperty(t, key, descriptor) {
    if (tracked(key)) {
      if (reserved(t, key)) return void log.save('ignored a definition of session.%s (not session data)', key), true;
      if (descriptor.configurable === false) return false; // a key that could never be undone or reloaded
      t[TRACKER].mark(key); // an accessor is allowed here and found not storable (it is code, not data)
      // Replaceable, as an assigned key is (defineProperty's defaults would make it fixed).
      const data = 'value' in descriptor || 'writable' in descriptor;
      if (!data) t[TRACKER].plainData = false; // an accessor, or a key that may not be writable
      return Reflect.defineProperty(t, key, { ...descriptor, configurable: true, ...(data && { writable: true }) });
    }
    t[TRACKER].plainData = false; // `cookie` or a symbol, defined as the app likes
    return Reflect.defineProperty(t, key, descriptor);
  },
  setPrototypeOf() {
    throw new SessionValueError('__proto__', "a session's prototype cannot be changed");
  },
  preventExtensions() {
    throw new SessionValueError('(all)', 'a session cannot be frozen or sealed: the library must be able to load new values into it');
  },
};

const isSession = (value: object): boolean => TRACKER in value;

/** Set a session key to a plain value, whatever it holds now (an accessor with no setter would refuse an assignment). */
export function putValue(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * Whether `target` has no accessor among its own string-keyed properties, every enumerable one is
 * writable and no symbol is enumerable: no getter runs when a value is read, no assignment of a key is
 * refused, and a spread copies what Object.keys lists. (express-session's
 * Session has `req` and `id`: fixed, but neither enumerable nor accessors.)
 */
function onlyPlainData(target: object): boolean {
  for (const key of Object.getOwnPropertyNames(target)) {
    const property = Object.getOwnPropertyDescriptor(target, key)!;
    if (!('value' in property) || (property.enumerable && !property.writable)) return false;
  }
  // (And no enumerable symbol: the copy is a spread, which would take it.)
  return !Object.getOwnPropertySymbols(target).some((key) => Object.prototype.propertyIsEnumerable.call(target, key));
}

/** Why a session property cannot be stored, if it cannot. */
const problemOf = (property: PropertyDescriptor): string | undefined =>
  'value' in property ? unstorable(property.value, isSession) : 'an accessor (get/set) is code, not data: assign a value instead';

const NO_CHANGES: ReadonlyMap<string, Json> = new Map();

export class ChangeTracker<T extends object = object> {
  /** The store's JSON (as of the last load or save) of every key marked since (allocated on first use). */
  private saved: Map<string, Json> | undefined;
  /** Object-valued keys whose reference was handed out since the value was loaded. */
  private exposed: Set<string> | undefined;
  /** JSON at the start of the running handler, when that differs from `saved` (later handlers of a batch). */
  private checkpoint: Map<string, Json> | undefined;
  /**
   * Keys assigned, deleted or handed out outside a handler since the last save (a per-connection
   * socket's handler, an `sconnection` listener, a timer): a handler that fails undoes to where it
   * began, which keeps them, not to the stored state.
   */
  private outside: Set<string> | undefined;
  /** JSON at the start of the current batch of keys changed outside a handler before it (see `discard`). */
  private batchStart: Map<string, Json> | undefined;
  /** While handlers given up on still run: JSON of keys changed outside a handler since (to undo when one settles). */
  private quarantine: Map<string, Json> | undefined;
  private abandoned = 0;
  private inHandler = false;
  /** Keys the running handler assigned, deleted or read (their values may have changed). */
  private handlerKeys: Set<string> | undefined;
  /** Keys the last save left out, with the value reported then (one bad value is reported once). */
  private leftOut: Map<string, unknown> | undefined;
  /**
   * No accessor among the target's own properties, every enumerable one writable (see onlyPlainData):
   * values are then read and loaded directly, with no descriptor. Cleared for good once the app
   * defines anything else (an accessor, a key that may not be writable, `cookie`).
   */
  plainData: boolean;
  readonly proxy: T;

  constructor(
    private readonly target: Record<string, unknown>,
    /** A key was first changed outside a handler since the last save (a per-connection handler, maybe after an await). */
    private readonly changedOutside?: () => void,
  ) {
    Object.defineProperty(target, TRACKER, { value: this, configurable: true });
    this.plainData = onlyPlainData(target);
    this.proxy = new Proxy(target as Target, handler) as unknown as T;
  }

  /** Checked first, so that JSON.stringify (ours, the store's) never meets what it cannot take. */
  private json(key: string): Json {
    if (this.plainData) {
      if (!Object.hasOwn(this.target, key)) return undefined;
      const value = this.target[key];
      if (!unstorable(value, isSession)) {
        try {
          return JSON.stringify(value);
        } catch {
          // (Described below, with its property.)
        }
      }
    }
    const property = Object.getOwnPropertyDescriptor(this.target, key);
    if (!property) return undefined;
    const problem = problemOf(property);
    if (problem) return new Unstorable(problem, property);
    try {
      return JSON.stringify(property.value);
    } catch (err) {
      return new Unstorable(`serialising it threw (${(err as Error)?.message})`, property); // a getter that throws only the second time
    }
  }

  /** An object value's reference is handed out: watch it for changes in place from now on. */
  expose(key: string): void {
    if (this.inHandler) (this.handlerKeys ??= new Set()).add(key);
    else (this.outside ??= new Set()).add(key);
    if (this.exposed?.has(key)) return;
    this.mark(key);
    (this.exposed ??= new Set()).add(key);
  }

  /** Remember a key's JSON before it may change (once per layer). */
  mark(key: string): void {
    if (this.inHandler) (this.handlerKeys ??= new Set()).add(key);
    else (this.outside ??= new Set()).add(key);
    const saved = (this.saved ??= new Map());
    const needSaved = !saved.has(key);
    const needCheckpoint = this.checkpoint !== undefined && !this.checkpoint.has(key);
    const needQuarantine = this.quarantine !== undefined && !this.inHandler && !this.quarantine.has(key);
    if (!needSaved && !needCheckpoint && !needQuarantine) return;
    const json = this.json(key);
    if (needSaved) saved.set(key, json);
    if (needSaved && !this.inHandler) this.changedOutside?.();
    if (needCheckpoint) this.checkpoint!.set(key, json);
    if (needQuarantine) this.quarantine!.set(key, json);
  }

  /** Whether anything was marked since the last load or save (nothing marked: nothing can have changed). */
  get touched(): boolean {
    return this.saved !== undefined && this.saved.size > 0;
  }

  /** Keys whose current value differs from the store's, with their JSON (Unstorable: always a change). */
  changes(): ReadonlyMap<string, Json> {
    if (!this.saved?.size) return NO_CHANGES; // (every load of a session nobody changed here asks)
    const changed = new Map<string, Json>();
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
    const now = new Map<string, string | undefined>();
    const before = new Map<string, Json>();
    const refused: SessionValueError[] = [];
    const saved = this.saved;
    const outside = this.outside;
    this.outside = undefined; // (what they changed is being written)
    if (!saved) return { now, before, refused, outside };
    let leftOut: Set<string> | undefined;
    // One pass over the marked keys (a Map may be changed while iterated: visited keys only).
    for (const [key, stored] of saved) {
      const json = this.json(key);
      if (json instanceof Unstorable) {
        // Left out, and stays marked: it is saved once it holds a storable value.
        (leftOut ??= new Set()).add(key);
        if (this.firstReport(key, json.held)) refused.push(new SessionValueError(key, json.problem));
        continue;
      }
      let exposed = this.exposed?.has(key) === true;
      if (json !== stored) {
        now.set(key, json);
        before.set(key, stored);
        this.quarantine?.delete(key); // written: a later change outside a handler is measured from this
        if (json !== undefined && this.toJsonForm(key, json)) exposed = false;
      }
      // Exposed keys stay watched from what is written; the others are marked again when next assigned.
      if (exposed) saved.set(key, json);
      // (The last entry: the map is dropped, not emptied. Emptying a Map shrinks it in a V8 runtime
      // call, dearer than the new Map the next mark makes.)
      else if (saved.size === 1 && this.saved === saved) this.saved = undefined;
      else saved.delete(key);
    }
    if (this.leftOut) for (const key of this.leftOut.keys()) if (!leftOut?.has(key)) this.leftOut.delete(key);
    return { now, before, refused, outside };
  }

  /**
   * A written value that is not what its JSON reads back as (a Date, a Buffer, a Map...) takes its
   * JSON form, as every later load from the store would give it: the next handler sees what it would
   * see on any store, and HTTP sees, also where no load comes (MemoryStore). Its plain objects and
   * arrays are kept (a handler holding one goes on changing the session's); a value that is none is
   * replaced. True if replaced (a fresh value: nobody holds it yet).
   */
  private toJsonForm(key: string, json: string): boolean {
    const value = this.plainData ? this.target[key] : Object.getOwnPropertyDescriptor(this.target, key)?.value;
    if (typeof value !== 'object' || value === null || jsonShaped(value)) return false;
    const parsed: unknown = JSON.parse(json);
    if (takeJsonForm(value, parsed)) return false;
    putValue(this.target, key, parsed);
    this.exposed?.delete(key);
    return true;
  }

  /** Whether `value`, which cannot be stored, is news for `key` (not the value reported last time). */
  private firstReport(key: string, value: unknown): boolean {
    const reported = (this.leftOut ??= new Map());
    if (reported.has(key) && reported.get(key) === value) return false;
    reported.set(key, value);
    return true;
  }

  /**
   * A copy of the session to hand to the store whole (a write from the copy, a touch): a marked key
   * whose value cannot be stored holds its stored value instead. Getters are not run.
   */
  storableCopy(): Record<string, unknown> {
    if (!this.plainData) return this.copyByDescriptors();
    // Only plain values: one copy (a spread, not a key at a time), then the marked keys that cannot be stored.
    const copy: Record<string, unknown> = { ...this.target };
    if (this.saved) {
      for (const [key, stored] of this.saved) {
        if (!Object.hasOwn(copy, key) || !unstorable(copy[key], isSession)) continue;
        if (typeof stored === 'string') copy[key] = JSON.parse(stored);
        else delete copy[key];
      }
    }
    return copy;
  }

  private copyByDescriptors(): Record<string, unknown> {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(this.target)) {
      const property = Object.getOwnPropertyDescriptor(this.target, key)!;
      const stored = this.saved?.get(key);
      if (!this.saved?.has(key) || !problemOf(property)) copy[key] = 'value' in property ? property.value : undefined;
      else if (typeof stored === 'string') copy[key] = JSON.parse(stored);
    }
    return copy;
  }

  /**
   * The first key the running handler touched (assigned, deleted or read as an object) whose value
   * cannot be stored, as a typed error. Only its keys: a bad value another socket of the session put
   * there (a per-connection one: left out of the saves, reported there) is not this handler's failure.
   */
  unstorableKey(): SessionValueError | undefined {
    return this.firstUnstorable(this.handlerKeys);
  }

  private firstUnstorable(keys: Set<string> | undefined): SessionValueError | undefined {
    if (keys) {
      for (const key of keys) {
        const problem = this.problemAt(key); // the walk only: the save serialises
        if (problem) return new SessionValueError(key, problem);
      }
    }
    return undefined;
  }

  /** Why the value of `key` cannot be stored, if it cannot (an absent key can). */
  private problemAt(key: string): string | undefined {
    if (this.plainData) return Object.hasOwn(this.target, key) ? unstorable(this.target[key], isSession) : undefined;
    const property = Object.getOwnPropertyDescriptor(this.target, key);
    return property && problemOf(property);
  }

  /**
   * Put a loaded value under `key`, as a plain enumerable value: assigned when the key already is one
   * (nothing can refuse it), and left alone when it already holds that very value.
   */
  load(key: string, value: unknown): void {
    const target = this.target;
    if (!this.plainData || !Object.prototype.propertyIsEnumerable.call(target, key)) putValue(target, key, value);
    else if (target[key] !== value) target[key] = value;
  }

  /**
   * Whether `key` holds an object (or array) whose JSON is `value`'s: a load then keeps the object
   * (a per-connection handler may hold it across an await), and the key stays watched as it was.
   */
  holdsSame(key: string, value: unknown): boolean {
    if (value === null || typeof value !== 'object') return false;
    const json = this.json(key);
    if (typeof json !== 'string' || (json[0] !== '{' && json[0] !== '[')) return false;
    try {
      return json === JSON.stringify(value);
    } catch {
      return false;
    }
  }

  /** The write of `take()`'s changes failed: the store still holds what it held before. */
  restore({ before, outside }: Changes): void {
    const saved = (this.saved ??= new Map());
    for (const [key, json] of before) saved.set(key, json);
    if (outside) for (const key of outside) (this.outside ??= new Set()).add(key);
  }

  /**
   * A handler starts. The first of a unit starts from the stored state, unless something was changed
   * outside a handler since (then, as later ones of a batch, from a checkpoint: what it was at start).
   */
  begin(first: boolean): void {
    const outside = first ? this.outside : undefined;
    this.checkpoint = first && !outside ? undefined : new Map([...(this.exposed ?? []), ...(outside ?? [])].map((key) => [key, this.json(key)] as const));
    if (first) this.batchStart = this.checkpoint;
    this.inHandler = true;
    this.handlerKeys = undefined; // (not clear(): a runtime call in V8, dearer than a new Set)
  }

  /** The handler ended: the keys it assigned, deleted or read (undefined: none). */
  end(): ReadonlySet<string> | undefined {
    const keys = this.handlerKeys;
    this.checkpoint = undefined;
    this.inHandler = false;
    this.handlerKeys = undefined;
    return keys;
  }

  /** A reload in a handler: undo what the running handler changed (nothing outside a handler). */
  dropRunning(): void {
    if (this.inHandler) this.rollback();
  }

  /** `key` back to its stored value (a save left it out: its value could not be serialised), or to its value in `layer`. */
  revert(key: string, layer = this.saved): void {
    if (layer?.has(key)) this.undo(new Map([[key, layer.get(key)]]));
  }

  /**
   * Undo every change since the last load or save (outside a handler too), back to the stored
   * state; or, given the `keys` a failed batch's handlers touched, those keys back to where the
   * batch began (what was changed outside a handler before it stays, to be saved).
   */
  discard(keys?: Iterable<string>): void {
    this.checkpoint = undefined;
    if (!keys) {
      this.outside = undefined;
      if (this.saved) this.undo(this.saved);
    } else for (const key of keys) this.revert(key, this.batchStart?.has(key) ? this.batchStart : this.saved);
    this.batchStart = undefined;
    this.inHandler = false;
    this.handlerKeys = undefined;
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
      else if (json instanceof Unstorable) {
        Object.defineProperty(this.target, key, json.property);
        if (!('value' in json.property) || !json.property.writable) this.plainData = false;
      }
      else putValue(this.target, key, JSON.parse(json));
      this.exposed?.delete(key); // a fresh object: nobody holds it yet
    }
  }

  /**
   * The running handler is given up on (after `rollback`) and may go on: objects it read from the
   * session are replaced by copies (what it changes in them later goes nowhere), and what is
   * assigned outside a handler from now on is undone when it settles (`settledAbandoned`).
   */
  abandon(detach = true): void {
    // (`detach` false: a per-connection socket shares the session, and its handlers may hold these objects.)
    for (const key of detach ? (this.exposed ?? []) : []) {
      const json = this.json(key);
      // (An exposed key deleted since holds nothing to detach; one that cannot be stored cannot be copied.)
      if (typeof json === 'string') putValue(this.target, key, JSON.parse(json));
    }
    if (detach) this.exposed?.clear();
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
      this.outside?.delete(key);
    }
    if (stored.size > 0) {
      const saved = (this.saved ??= new Map());
      for (const [key, json] of stored) saved.set(key, json);
    }
  }
}
