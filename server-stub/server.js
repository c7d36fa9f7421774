/**
 * `npm start`: the reference server on 127.0.0.1:3000.
 *
 * Environment: PORT, HOST (default 127.0.0.1), DATA_DIR (default .data),
 * SESSION_MODE=per-connection (default per-message), SESSION_SECRET, PAGE_PORT (the cross-origin
 * page's port, default PORT + 1, none with REDIS_URL; 0 picks a free one), TICKET_TTL (ms, default 60000),
 * REDIS_URL (sessions in Redis and the Socket.IO Redis adapter instead of SQLite; run several
 * nodes with different PORTs and the same SESSION_SECRET), SESSION_LOCK=off (no cross-node
 * session lock with Redis), REVALIDATE_INTERVAL (ms, how often open sockets check their
 * session, default 60000), COOKIE_MAX_AGE (ms, session lifetime, default one day).
 */
import { createServer } from './app.js';

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 5000;

const server = await createServer({
  port: Number(process.env.PORT) || 3000,
  host: process.env.HOST || '127.0.0.1',
  dataDir: process.env.DATA_DIR || '.data',
  perMessage: process.env.SESSION_MODE !== 'per-connection',
  // With REDIS_URL several nodes run side by side on neighbouring ports: no page listener unless asked for.
  pagePort: process.env.PAGE_PORT !== undefined ? Number(process.env.PAGE_PORT) : process.env.REDIS_URL ? undefined : (Number(process.env.PORT) || 3000) + 1,
  ticketTtl: process.env.TICKET_TTL ? Number(process.env.TICKET_TTL) : undefined,
  redisUrl: process.env.REDIS_URL || undefined,
  lock: process.env.SESSION_LOCK !== 'off',
  revalidateInterval: process.env.REVALIDATE_INTERVAL ? Number(process.env.REVALIDATE_INTERVAL) : undefined,
  cookieMaxAge: process.env.COOKIE_MAX_AGE ? Number(process.env.COOKIE_MAX_AGE) : undefined,
});

let shuttingDown = false;
const shutdown = async (signal) => {
  if (shuttingDown) return;
  shuttingDown = true;
  // A hung connection must not keep a stopped server alive forever.
  setTimeout(() => {
    console.error(`socket.io-sessions reference server: ${signal} shutdown timed out, exiting`);
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS).unref();
  await server.close();
  process.exit(0);
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
