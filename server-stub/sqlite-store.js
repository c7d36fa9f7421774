/**
 * An express-session store on an embedded SQLite file (better-sqlite3, WAL mode), so the
 * reference server keeps its sessions across restarts without any external service.
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

export class SqliteStore extends session.Store {
  /**
   * @param {object} options
   * @param {string} options.path  database file; parent directories are created
   * @param {number} [options.pruneInterval=600000]  ms between deletions of expired rows (0 disables)
   */
  constructor({ path, pruneInterval = 10 * 60 * 1000 } = {}) {
    super();
    if (!path) throw new TypeError('SqliteStore: `path` is required');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });

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
    this.#run(cb, () => {
      this.stmt.set.run(sid, JSON.stringify(sess), expiresOf(sess));
    });
  }

  destroy(sid, cb) {
    this.#run(cb, () => {
      this.stmt.destroy.run(sid);
    });
  }

  /** Extends the expiry of a live session; an expired or unknown one is left alone. */
  touch(sid, sess, cb) {
    this.#run(cb, () => {
      this.stmt.touch.run(expiresOf(sess), sid, Date.now());
    });
  }

  clear(cb) {
    this.#run(cb, () => {
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

  /** Deletes expired rows; returns how many. */
  prune() {
    if (!this.db.open) return 0;
    try {
      return this.stmt.prune.run(Date.now()).changes;
    } catch (err) {
      this.emit('error', err);
      return 0;
    }
  }

  /** Stops the prune timer and closes the database. Safe to call twice. */
  close() {
    clearInterval(this.pruneTimer);
    if (this.db.open) this.db.close();
  }

  /**
   * Runs a synchronous SQLite operation and reports through `cb` on a later tick, so
   * callers never see a synchronous callback and errors never escape as throws.
   */
  #run(cb, op) {
    let err = null;
    let result;
    try {
      result = op();
    } catch (e) {
      err = e;
    }
    if (typeof cb === 'function') process.nextTick(cb, err, result);
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
