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

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, ...): another connection holds a lock. */
const isBusy = (err) => typeof err?.code === 'string' && err.code.startsWith('SQLITE_BUSY');

export class SqliteStore extends session.Store {
  /**
   * @param {object} options
   * @param {string} options.path  database file; parent directories are created
   * @param {number} [options.pruneInterval=600000]  ms between deletions of expired rows (0 disables)
   * @param {number} [options.busyWait=1000]  how long a call retries while another connection holds
   *   the write lock before it fails; keep it well under the library's `storeTimeout` (5000)
   */
  constructor({ path, pruneInterval = 10 * 60 * 1000, busyWait = 1000 } = {}) {
    super();
    if (!path) throw new TypeError('SqliteStore: `path` is required');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.busyWait = busyWait;
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
      const row = this.stmt.get.get(sid, Date.now());
      return row ? JSON.parse(row.sess) : null;
    });
  }

  set(sid, sess, cb) {
    const json = JSON.stringify(sess); // now: the caller may change `sess` while the write waits
    const expires = expiresOf(sess);
    this.#write(cb, () => {
      this.stmt.set.run(sid, json, expires);
    });
  }

  destroy(sid, cb) {
    this.#write(cb, () => {
      this.stmt.destroy.run(sid);
    });
  }

  /** Extends the expiry of a live session; an expired or unknown one is left alone. */
  touch(sid, sess, cb) {
    const expires = expiresOf(sess);
    this.#write(cb, () => {
      this.stmt.touch.run(expires, sid, Date.now());
    });
  }

  clear(cb) {
    this.#write(cb, () => {
      this.stmt.clear.run();
    });
  }

  length(cb) {
    this.#run(cb, () => this.stmt.length.get(Date.now()).n);
  }

  /** All live sessions as `{ [sid]: session }` (the shape express-session's MemoryStore returns). */
  all(cb) {
    this.#run(cb, () => {
      const out = {};
      for (const { sid, sess } of this.stmt.all.all(Date.now())) out[sid] = JSON.parse(sess);
      return out;
    });
  }

  /** Deletes expired rows; returns how many. Skipped (0) while another connection holds the write lock: the next run catches up. */
  prune() {
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

  /** Stops the prune timer and closes the database. Safe to call twice. */
  close() {
    clearInterval(this.pruneTimer);
    if (this.db.open) this.db.close();
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
