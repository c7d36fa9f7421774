/**
 * The SDK's own event emitter (`socket.sessions` events, the tabs' socket surface): on, once, off,
 * emit and removeAllListeners, nothing more. It replaced eventemitter3, whose ~600 B min+gzip were a
 * fifth of the core's 3 KB budget, to make room for the emit guard (invariants 7 and 10).
 */
type Listener = ((...args: any[]) => unknown) & { listener?: unknown };

/**
 * Calls the app's `fn` (a listener, an ack callback the SDK answers itself) so that what it throws
 * cannot stop the SDK's caller: thrown again on a later task, where the page's console and `onerror`
 * (Node: `uncaughtException`) see it, once per throw.
 */
export function callApart(fn: (...args: any[]) => unknown, ...args: unknown[]): void {
  try {
    fn(...args);
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
}

export class Emitter {
  // `_events` is the one property name the minifier shortens (rollup.config.mjs).
  private _events = new Map<PropertyKey, Listener[]>();

  on(event: PropertyKey, listener: Listener): this {
    this._events.set(event, [...(this._events.get(event) ?? []), listener]);
    return this;
  }

  once(event: PropertyKey, listener: Listener): this {
    const once: Listener = (...args) => (this.off(event, listener), listener(...args));
    once.listener = listener; // so that off(event, listener) finds it
    return this.on(event, once);
  }

  /** Without a listener: every listener of the event. */
  off(event: PropertyKey, listener?: Listener): this {
    const kept = this._events.get(event)?.filter((l) => listener && l !== listener && l.listener !== listener);
    if (kept?.length) this._events.set(event, kept);
    else this._events.delete(event);
    return this;
  }

  /**
   * Calls the listeners registered when the event was emitted (a listener added or removed meanwhile
   * changes a copy). What a listener throws is thrown again on a later task ({@link callApart}): the
   * other listeners still run, and so does the SDK's work after the emit.
   */
  emit(event: PropertyKey, ...args: any[]): boolean {
    const listeners = this._events.get(event);
    listeners?.forEach((listener) => callApart(listener, ...args));
    return !!listeners;
  }

  removeAllListeners(event?: PropertyKey): this {
    if (event === undefined) this._events.clear();
    else this._events.delete(event);
    return this;
  }
}
