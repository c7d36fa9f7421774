/**
 * A lock per session across nodes, for per-message mode's "no lost update" when one session's
 * sockets sit on several nodes (and HTTP requests write the same session). Opt-in: on one node
 * the in-process queue already serializes a session's units of work.
 *
 * `redisLock` takes the lock with `SET key token NX PX lease`; the random token makes the release
 * (compare-and-delete in Lua) and the lease extension (compare-and-PEXPIRE, every lease / 3 while
 * the unit runs) touch only our own lock. Guarantee: two units of one session never overlap unless
 * a node stalls for longer than the lease (5 s; a long GC pause, a frozen VM) or Redis loses the key
 * (failover without persistence); then it degrades to the no-lock behaviour (merge per key).
 */
import { createHash, randomBytes } from 'node:crypto';
import { SessionUnavailableError } from '../errors.js';

/** Mutual exclusion for the units of work on one session. */
export interface SessionLock {
  /**
   * Wait for the lock of `sid`; resolves to its release. Rejects with SessionUnavailableError
   * when it cannot be had in time or the lock service fails.
   */
  acquire(sid: string): Promise<() => Promise<void>>;
}

/** The part of a node-redis (v4, v5) client the lock uses. */
export interface RedisLockClient {
  set(key: string, value: string, options: { NX: true; PX: number }): Promise<string | null | undefined>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

export interface RedisLockOptions {
  /** How long a lock lives without being extended (it is extended every lease / 3 while held), ms. @default 5000 */
  lease?: number;
  /** How long to wait for the lock before giving up (SESSION_UNAVAILABLE), ms. @default 5000 */
  wait?: number;
  /** Key prefix; the session id is hashed, never stored in the key. @default 'sio-sessions:lock:' */
  prefix?: string;
}

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function retryRelease(client: RedisLockClient, key: string, token: string, until: number): Promise<void> {
  while (Date.now() < until) {
    await sleep(100);
    try {
      await client.eval(RELEASE, { keys: [key], arguments: [token] });
      return;
    } catch {
      // still away
    }
  }
}

/**
 * A {@link SessionLock} on Redis.
 *
 * @example
 * ```ts
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const sio = sessions(io, { store: new RedisStore({ client }), secret, perMessage: true, lock: redisLock(client) });
 * app.use(sio.httpLock());          // before express-session: HTTP writes take the same lock
 * ```
 */
export function redisLock(client: RedisLockClient, { lease = 5_000, wait = 5_000, prefix = 'sio-sessions:lock:' }: RedisLockOptions = {}): SessionLock {
  const unavailable = (cause?: unknown) => new SessionUnavailableError(cause ? 'store-error' : 'lock-timeout', 200, { cause });
  return {
    async acquire(sid) {
      const key = prefix + createHash('sha256').update(sid).digest('base64url');
      const token = randomBytes(16).toString('base64url');
      const deadline = Date.now() + wait;
      for (let attempt = 0; ; attempt++) {
        let taken;
        try {
          taken = await client.set(key, token, { NX: true, PX: lease });
        } catch (err) {
          throw unavailable(err);
        }
        if (taken === 'OK') break;
        if (Date.now() >= deadline) throw unavailable();
        await sleep(Math.min(50, 2 + attempt * 2) * (0.5 + Math.random())); // short: a unit takes milliseconds
      }
      // Keep the lease while the unit runs, however long its handler takes.
      const keepAlive = setInterval(() => void client.eval(EXTEND, { keys: [key], arguments: [token, String(lease)] }).catch(() => undefined), lease / 3);
      keepAlive.unref?.();
      const until = Date.now() + lease;
      return async () => {
        clearInterval(keepAlive);
        try {
          await client.eval(RELEASE, { keys: [key], arguments: [token] });
        } catch (err) {
          // Redis is away: keep trying in the background, or a persisted lock would block the
          // session for the rest of its lease after Redis comes back.
          void retryRelease(client, key, token, until);
          throw err;
        }
      };
    },
  };
}
