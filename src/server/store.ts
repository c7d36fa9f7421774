/**
 * The store seen through promises with a deadline. Every failure becomes a
 * SessionUnavailableError (retryable); "no such session" is a value, never an error.
 */
import type { Store, SessionData } from 'express-session';
import { SessionUnavailableError } from '../errors.js';

/** How long a client should wait before retrying after a store failure. */
const RETRY_AFTER_MS = 1000;

type Callback<T> = (err?: unknown, value?: T | null) => void;

export class StoreGateway {
  constructor(
    readonly store: Store,
    private readonly timeoutMs: number,
  ) {}

  private call<T>(op: (cb: Callback<T>) => void): Promise<T | null> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SessionUnavailableError('store-timeout', RETRY_AFTER_MS)), this.timeoutMs);
      const done: Callback<T> = (err, value) => {
        clearTimeout(timer);
        if (err) reject(new SessionUnavailableError('store-error', RETRY_AFTER_MS, { cause: err }));
        else resolve(value ?? null);
      };
      try {
        // Some stores also return a promise; a rejection there must not go unhandled.
        const result = op(done) as unknown;
        if (result && typeof (result as Promise<unknown>).catch === 'function') (result as Promise<unknown>).catch((err) => done(err ?? new Error('store rejected')));
      } catch (err) {
        done(err ?? new Error('store threw'));
      }
    });
  }

  /** The stored data, or null when the store has no such session (missing or expired). */
  get(sid: string): Promise<SessionData | null> {
    return this.call<SessionData>((cb) => this.store.get(sid, cb));
  }

  async set(sid: string, data: SessionData): Promise<void> {
    await this.call<void>((cb) => this.store.set(sid, data, cb));
  }

  async destroy(sid: string): Promise<void> {
    await this.call<void>((cb) => this.store.destroy(sid, cb));
  }

  /** Extend the session's life in the store; stores without touch get a set, as express-session does. */
  async touch(sid: string, data: SessionData): Promise<void> {
    const { store } = this;
    if (typeof store.touch === 'function') await this.call<void>((cb) => store.touch!(sid, data, cb));
    else await this.set(sid, data);
  }
}

/**
 * True when a session's cookie expiry has passed. Only names why a session is gone ('expired' or
 * 'not-found'): whether it is gone is the store's call, as in express-session (connect-redis
 * extends the TTL on touch without rewriting the stored expiry).
 */
export function isExpired(data: SessionData, now = Date.now()): boolean {
  const expires = data.cookie?.expires;
  return expires != null && new Date(expires).getTime() <= now;
}
