/**
 * `npm start`: the reference server on 127.0.0.1:3000.
 *
 * Environment: PORT, HOST (default 127.0.0.1), DATA_DIR (default .data),
 * SESSION_MODE=per-connection (default per-message), SESSION_SECRET, PAGE_PORT (the cross-origin
 * page's port, default PORT + 1; 0 picks a free one), TICKET_TTL (ms, default 60000).
 */
import { createServer } from './app.js';

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 5000;

const server = await createServer({
  port: Number(process.env.PORT) || 3000,
  host: process.env.HOST || '127.0.0.1',
  dataDir: process.env.DATA_DIR || '.data',
  perMessage: process.env.SESSION_MODE !== 'per-connection',
  pagePort: process.env.PAGE_PORT === undefined ? (Number(process.env.PORT) || 3000) + 1 : Number(process.env.PAGE_PORT),
  ticketTtl: process.env.TICKET_TTL ? Number(process.env.TICKET_TTL) : undefined,
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
