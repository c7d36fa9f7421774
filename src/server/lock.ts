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
 * Every Redis call has a deadline (`wait` to acquire, `lease` to release): a frozen Redis makes
 * callers get SESSION_UNAVAILABLE in time, and a lock granted too late is released at once.
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

/**
 * A release that failed, tried again every 100 ms until the lease runs out (Redis ends the lock then
 * anyway). Its timer is unref'd: it never holds a process that has nothing else left to do.
 */
async function retryRelease(client: RedisLockClient, key: string, token: string, until: number): Promise<void> {
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 100).unref());
    try {
      await within(client.eval(RELEASE, { keys: [key], arguments: [token] }), Math.max(1, until - Date.now()));
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
  const unavailable = (cause?: unknown) => new SessionUnavailableError(cause ? 'store-error' : 'lock-timeout', 200, cause === undefined ? undefined : { cause });
  const release = (key: string, token: string) => client.eval(RELEASE, { keys: [key], arguments: [token] });
  return {
    async acquire(sid) {
      const key = prefix + createHash('sha256').update(sid).digest('base64url');
      const token = randomBytes(16).toString('base64url');
      const deadline = Date.now() + wait;
      for (let attempt = 0; ; attempt++) {
        // Every call has the deadline: a frozen Redis answers nothing, and node-redis would wait forever.
        const setting = client.set(key, token, { NX: true, PX: lease });
        let taken;
        try {
          taken = await within(setting, deadline - Date.now());
        } catch (err) {
          // Given up: if the SET lands later after all, undo it, or it would block the session for a lease.
          setting.then((late) => late === 'OK' && release(key, token), () => undefined).catch(() => undefined);
          throw err === TIMED_OUT ? unavailable() : unavailable(err);
        }
        if (taken === 'OK') break;
        if (Date.now() >= deadline) throw unavailable();
        await sleep(Math.min(50, 2 + attempt * 2) * (0.5 + Math.random())); // short: a unit takes milliseconds
      }
      // Keep the lease while the unit runs, however long its handler takes (one extension in flight at most).
      let extending = false;
      const keepAlive = setInterval(() => {
        if (extending) return;
        extending = true;
        client.eval(EXTEND, { keys: [key], arguments: [token, String(lease)] }).then(
          () => (extending = false),
          () => (extending = false),
        );
      }, lease / 3);
      keepAlive.unref?.();
      const until = Date.now() + lease;
      return async () => {
        clearInterval(keepAlive);
        try {
          await within(release(key, token), lease);
        } catch (err) {
          // Redis is away: keep trying in the background, or a persisted lock would block the
          // session for the rest of its lease after Redis comes back.
          void retryRelease(client, key, token, until);
          throw err === TIMED_OUT ? unavailable() : err;
        }
      };
    },
  };
}

const TIMED_OUT = new Error('timed out');

/** `promise`, or a rejection with TIMED_OUT after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  if (ms <= 0) return Promise.reject(TIMED_OUT);
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(TIMED_OUT), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
