/**
 * A real express-session MemoryStore with knobs for faults the tests cannot produce otherwise:
 * latency per call, calls that hang, errors, and garbage records. It counts every call, so a test
 * can assert how many store operations a user action cost. (A mock only in the sense that the
 * faults are injected: the data lives in express-session's own MemoryStore.)
 *
 * @example
 *   const store = new FaultyStore({ latency: 5 });
 *   store.fault = { op: 'set', kind: 'hang' };     // every set from now on never answers
 *   store.calls.destroy                            // destroys so far
 */
import session from 'express-session';

export type StoreOp = 'get' | 'set' | 'destroy' | 'touch';

export interface Fault {
  /** Which operation misbehaves (all when omitted). */
  op?: StoreOp;
  /**
   * `hang`: never calls back; `error`: calls back with an Error; `throw`: throws synchronously;
   * `applied-error`: carries the operation out, then calls back with an Error (a driver's timeout after the server wrote).
   */
  kind: 'hang' | 'error' | 'throw' | 'applied-error';
}

export interface FaultyStoreOptions {
  /** Delay before each operation runs, ms (or a function of the operation). @default 0 */
  latency?: number | ((op: StoreOp) => number);
}

export class FaultyStore extends session.MemoryStore {
  /** Calls per operation since construction (or the last `resetCalls()`). */
  calls: Record<StoreOp, number> = { get: 0, set: 0, destroy: 0, touch: 0 };
  /** Set to make operations fail; undefined for normal behaviour. */
  fault: Fault | undefined;
  latency: number | ((op: StoreOp) => number);

  constructor({ latency = 0 }: FaultyStoreOptions = {}) {
    super();
    this.latency = latency;
  }

  resetCalls(): void {
    this.calls = { get: 0, set: 0, destroy: 0, touch: 0 };
  }

  /** Write a raw value under `sid`, bypassing every wrapper (a corrupt record, another program's write). */
  putRaw(sid: string, value: unknown): void {
    (this as unknown as { sessions: Record<string, string> }).sessions[sid] = JSON.stringify(value);
  }

  /** The raw stored value (parsed), or undefined. */
  peek(sid: string): unknown {
    const raw = (this as unknown as { sessions: Record<string, string | undefined> }).sessions[sid];
    return raw === undefined ? undefined : JSON.parse(raw);
  }

  private run(op: StoreOp, cb: ((err?: unknown, value?: any) => void) | undefined, call: (cb: (err?: unknown, value?: any) => void) => void): void {
    this.calls[op] += 1;
    const fault = this.fault && (this.fault.op === undefined || this.fault.op === op) ? this.fault : undefined;
    if (fault?.kind === 'throw') throw new Error(`store ${op} threw (injected)`);
    const go = () => {
      if (fault?.kind === 'hang') return;
      if (fault?.kind === 'error') return cb?.(new Error(`store ${op} failed (injected)`));
      call((err, value) => cb?.(fault?.kind === 'applied-error' ? new Error(`store ${op} failed after it was carried out (injected)`) : err, value));
    };
    const ms = typeof this.latency === 'function' ? this.latency(op) : this.latency;
    if (ms > 0) setTimeout(go, ms);
    else go();
  }

  override get(sid: string, cb: (err: any, session?: session.SessionData | null) => void): void {
    this.run('get', cb, (done) => super.get(sid, done));
  }

  override set(sid: string, sess: session.SessionData, cb?: (err?: any) => void): void {
    this.run('set', cb, (done) => super.set(sid, sess, done));
  }

  override destroy(sid: string, cb?: (err?: any) => void): void {
    this.run('destroy', cb, (done) => super.destroy(sid, done));
  }

  override touch(sid: string, sess: session.SessionData, cb?: () => void): void {
    this.run('touch', cb, (done) => super.touch(sid, sess, done as () => void));
  }
}
