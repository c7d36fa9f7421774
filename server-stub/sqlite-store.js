/**
 * An express-session store on an embedded SQLite file (better-sqlite3, WAL mode), so the
 * reference server keeps its sessions across restarts without any external service.
 *
 * better-sqlite3 is synchronous: with SQLite's busy timeout, a call that meets another
 * process's write lock (a backup, an admin's sqlite3 shell) would stall the whole event loop for
 * up to that timeout. So calls never wait inside SQLite (busy_timeout 0): a busy write is retried
 * on timers with a short backoff, in order behind earlier writes, for at most `busyWait` ms, then
 * fails (the library answers SESSION_UNAVAILABLE). Reads need no write lock in WAL mode.
 *
 * With `keep`, a session is written to the file only once it is worth keeping (a login, data the
 * app stores); until then (a first visit's session) it is held in memory, at most `maxFresh` of
 * them, the oldest dropped first, and lost on a restart. So anonymous page loads (a crawler, a
 * `curl` loop) never grow the file. A session written to the file stays there.
 *
 * @example
 *   const store = new SqliteStore({ path: '.data/sessions.db' });
 *   app.use(session({ store, secret, resave: false, saveUninitialized: false }));
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import session from 'express-session';

const ONE_DAY_MS = 24 * 60 * 60 * 1000;
/** Longest pause between two tries of a busy call, ms. */
const MAX_BACKOFF_MS = 50;
/** Sessions not worth keeping (yet) held in memory, at most. */
const MAX_FRESH = 10_000;

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, ...): another connection holds a lock. */
const isBusy = (err) => typeof err?.code === 'string' && err.code.startsWith('SQLITE_BUSY');

export class SqliteStore extends session.Store {
  /**
   * @param {object} options
   * @param {string} options.path  database file; parent directories are created
   * @param {number} [options.pruneInterval=600000]  ms between deletions of expired rows (0 disables)
   * @param {number} [options.busyWait=1000]  how long a call retries while another connection holds
   *   the write lock before it fails; keep it well under the library's `storeTimeout` (5000)
   * @param {(sess: object) => boolean} [options.keep]  whether a session is worth writing to the file;
   *   default: every session is
   * @param {number} [options.maxFresh=10000]  sessions not worth keeping held in memory, at most
   */
  constructor({ path, pruneInterval = 10 * 60 * 1000, busyWait = 1000, keep = () => true, maxFresh = MAX_FRESH } = {}) {
    super();
    if (!path) throw new TypeError('SqliteStore: `path` is required');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.busyWait = busyWait;
    this.keep = keep;
    this.maxFresh = maxFresh;
    /**
     * Sessions held in memory: sid → { json, expires, kept }, oldest first. `kept`: its first write
     * to the file is under way (memory answers reads until it lands; later writes go to the file).
     */
    this.fresh = new Map();
    /** Writes waiting behind a busy one, in call order (a retried write must not land after a later one). */
    this.writes = [];

    // Set-up may wait for a lock (SQLite's default busy timeout): nothing else runs yet.
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL is durable across process crashes (only an OS crash can lose the last commits).
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS sessions (
      sid     TEXT PRIMARY KEY,
      sess    TEXT NOT NULL,
      expires INTEGER NOT NULL
    )`);
    this.db.exec('CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)');
    // From here on a locked database fails at once (SQLITE_BUSY) and #run retries on timers.
    this.db.pragma('busy_timeout = 0');

    this.stmt = {
      get: this.db.prepare('SELECT sess FROM sessions WHERE sid = ? AND expires > ?'),
      exists: this.db.prepare('SELECT 1 FROM sessions WHERE sid = ?'),
      set: this.db.prepare(
        'INSERT INTO sessions (sid, sess, expires) VALUES (?, ?, ?) ' +
          'ON CONFLICT(sid) DO UPDATE SET sess = excluded.sess, expires = excluded.expires',
      ),
      destroy: this.db.prepare('DELETE FROM sessions WHERE sid = ?'),
      touch: this.db.prepare('UPDATE sessions SET expires = ? WHERE sid = ? AND expires > ?'),
      clear: this.db.prepare('DELETE FROM sessions'),
      length: this.db.prepare('SELECT COUNT(*) AS n FROM sessions WHERE expires > ?'),
      all: this.db.prepare('SELECT sid, sess FROM sessions WHERE expires > ?'),
      prune: this.db.prepare('DELETE FROM sessions WHERE expires <= ?'),
    };

    if (pruneInterval > 0) {
      this.pruneTimer = setInterval(() => this.prune(), pruneInterval);
      // A store must never keep the process alive on its own.
      this.pruneTimer.unref();
    }
  }

  /** Returns the session, or null when it is missing or expired (expired counts as missing). */
  get(sid, cb) {
    this.#run(cb, () => {
      const held = this.#held(sid);
      if (held) return JSON.parse(held.json);
      const row = this.stmt.get.get(sid, Date.now());
      return row ? JSON.parse(row.sess) : null;
    });
  }

  set(sid, sess, cb) {
    const json = JSON.stringify(sess); // now: the caller may change `sess` while the write waits
    const expires = expiresOf(sess);
    const held = this.fresh.get(sid);
    if (!held?.kept && !this.keep(sess) && (held || !this.#inFile(sid))) {
      return this.#run(cb, () => this.#hold(sid, { json, expires, kept: false }));
    }
    if (held) held.kept = true;
    this.#write(cb, () => {
      this.stmt.set.run(sid, json, expires);
      this.fresh.delete(sid);
    });
  }

  destroy(sid, cb) {
    const held = this.fresh.get(sid);
    this.fresh.delete(sid);
    if (held && !held.kept) return this.#run(cb, () => {});
    this.#write(cb, () => {
      this.stmt.destroy.run(sid);
    });
  }

  /** Extends the expiry of a live session; an expired or unknown one is left alone. */
  touch(sid, sess, cb) {
    const expires = expiresOf(sess);
    const held = this.#held(sid);
    if (held) held.expires = expires;
    if (held && !held.kept) return this.#run(cb, () => {});
    this.#write(cb, () => {
      this.stmt.touch.run(expires, sid, Date.now());
    });
  }

  clear(cb) {
    this.fresh.clear();
    this.#write(cb, () => {
      this.stmt.clear.run();
    });
  }

  length(cb) {
    this.#run(cb, () => this.stmt.length.get(Date.now()).n + this.#heldOnly().length);
  }

  /** All live sessions as `{ [sid]: session }` (the shape express-session's MemoryStore returns). */
  all(cb) {
    this.#run(cb, () => {
      const out = {};
      for (const { sid, sess } of this.stmt.all.all(Date.now())) out[sid] = JSON.parse(sess);
      for (const [sid, { json }] of this.#heldOnly()) out[sid] = JSON.parse(json);
      return out;
    });
  }

  /** Deletes expired rows (and forgets expired sessions held in memory); returns how many rows. Skipped (0) while another connection holds the write lock: the next run catches up. */
  prune() {
    this.#heldOnly(); // forgets the expired ones
    if (!this.db.open || this.writes.length > 0) return 0;
    try {
      return this.stmt.prune.run(Date.now()).changes;
    } catch (err) {
      if (isBusy(err)) return 0;
      // An 'error' event without a listener would throw from this timer and end the process.
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else console.error('SqliteStore: prune failed:', err);
      return 0;
    }
  }

  /** Stops the prune timer and closes the database (the sessions held in memory are gone). Safe to call twice. */
  close() {
    clearInterval(this.pruneTimer);
    this.fresh.clear();
    if (this.db.open) this.db.close();
  }

  /** The live session `sid` held in memory, or undefined (an expired one is forgotten). */
  #held(sid) {
    const held = this.fresh.get(sid);
    if (held && held.expires <= Date.now()) this.fresh.delete(sid);
    else return held;
  }

  /** The live sessions held in memory only (not being written to the file), as [sid, held] pairs. */
  #heldOnly() {
    return [...this.fresh.keys()].flatMap((sid) => {
      const held = this.#held(sid);
      return held && !held.kept ? [[sid, held]] : [];
    });
  }

  /** Holds a session in memory, as the newest; past `maxFresh`, the oldest held in memory only goes. */
  #hold(sid, held) {
    this.fresh.delete(sid);
    this.fresh.set(sid, held);
    if (this.fresh.size <= this.maxFresh) return;
    for (const [oldest, { kept }] of this.fresh) {
      if (!kept) return void this.fresh.delete(oldest);
    }
  }

  /** Whether the file has a row for `sid` (a session once worth keeping stays in the file). */
  #inFile(sid) {
    try {
      return this.stmt.exists.get(sid) !== undefined;
    } catch {
      return true; // unknown: the write goes to the file, and reports what failed
    }
  }

  /**
   * Runs a synchronous SQLite operation and reports through `cb` on a later tick, so callers
   * never see a synchronous callback and errors never escape as throws. While the database is
   * locked by another connection, the operation is retried on timers (backoff up to
   * MAX_BACKOFF_MS) until `busyWait` ms after the call, then fails with the SQLITE_BUSY error.
   */
  #run(cb, op, onSettled, deadline = Date.now() + this.busyWait) {
    let backoff = 2;
    const attempt = () => {
      let err = null;
      let result;
      try {
        result = op();
      } catch (e) {
        err = e;
      }
      if (err && isBusy(err) && this.db.open && Date.now() + backoff <= deadline) {
        setTimeout(attempt, backoff * (0.5 + Math.random())); // jittered: several waiters do not retry in lockstep
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        return;
      }
      onSettled?.();
      if (typeof cb === 'function') process.nextTick(cb, err, result);
    };
    attempt();
  }

  /**
   * A write: run in call order, each behind the ones before it (which may be waiting for the lock),
   * within `busyWait` of its own call, so one that is reported failed never lands later.
   */
  #write(cb, op) {
    const deadline = Date.now() + this.busyWait;
    const next = () => {
      this.#run(cb, op, () => {
        this.writes.shift();
        if (this.writes.length > 0) this.writes[0]();
      }, deadline);
    };
    this.writes.push(next);
    if (this.writes.length === 1) next();
  }
}

/** Expiry in epoch ms: the cookie's own expiry, else one day from now. */
function expiresOf(sess) {
  const expires = sess?.cookie?.expires;
  if (expires) {
    const ms = new Date(expires).getTime();
    if (Number.isFinite(ms)) return ms;
  }
  return Date.now() + ONE_DAY_MS;
}
