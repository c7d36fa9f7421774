/**
 * Runs `server-stub/server.js` as a real child process on a free loopback port with its own
 * temporary data dir, so tests can stop and restart it like an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVER_ENTRY = join(ROOT, 'server-stub', 'server.js');
const READY_LINE = /reference server on (http:\/\/\S+)/;
/** Printed once the second (page-origin) listener is up: `cross-origin page on http://localhost:N/cross-origin.html`. */
const PAGE_LINE = /cross-origin page on (http:\/\/\S+?)\/cross-origin\.html/;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 8_000;

/** Every temp dir made here, removed when the test process exits even if a test forgot to. */
const tempDirs = new Set<string>();
/** Every server process running, killed when the test process ends, even by a signal. */
const runningServers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of runningServers) proc.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    for (const proc of runningServers) proc.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  });
}

/** The preload that makes a node child exit when this process is gone (its comment says how). */
const EXIT_WITH_PARENT = new URL('exit-with-parent.mjs', import.meta.url).href;

/** `node <args>` as a child that exits with this process (EXIT_WITH_PARENT): stdout and stderr piped, plus the IPC channel it watches. */
export function spawnNode(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): ChildProcess {
  return spawn(process.execPath, ['--import', EXIT_WITH_PARENT, ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
}

/** SIGTERM, then SIGKILL if the process has not exited after `killAfterMs`; resolves on exit. */
export async function terminate(proc: ChildProcess, killAfterMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(killer);
}

/**
 * Where {@link freePort} picks: below Linux's default range of ephemeral ports (32768-60999), from which
 * the kernel gives every outgoing connection its local port. A port taken from that range (`listen(0)`)
 * and handed to a child process could be given to a connection of another test in the moment before
 * the child listens (seen: the reference server's EADDRINUSE beside another test file).
 */
const PICK_FROM = 20_000;
const PICK_TO = 32_767;
/** Ports this process handed out (never twice). */
const handedOut = new Set<number>();

/** A port on 127.0.0.1 that was free a moment ago, outside the kernel's ephemeral range (see PICK_FROM). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PICK_FROM + Math.floor(Math.random() * (PICK_TO - PICK_FROM + 1));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${PICK_FROM} and ${PICK_TO} after 50 tries`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export interface ReferenceServerOptions {
  /** Extra environment, e.g. `{ SESSION_MODE: 'per-connection' }`. */
  env?: Record<string, string>;
  /**
   * Also wait for the page-origin listener (env PAGE_PORT; pass `PAGE_PORT: '0'` for a free port)
   * and expose its origin as `pageUrl`.
   */
  waitForPage?: boolean;
}

export interface ReferenceServer {
  /** Base URL the browser uses: `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Origin of the page listener of the current run (`http://localhost:<page port>`), when `waitForPage` was given. */
  readonly pageUrl: string | undefined;
  /** Everything the process printed (stdout and stderr) across all its runs. */
  output(): string;
  /** Starts the process (again) on the same port and data dir; resolves once it is listening. */
  start(): Promise<void>;
  /** SIGTERM, then waits for the exit (SIGKILL if it hangs). No-op when not running. */
  stop(): Promise<void>;
  /** stop() then start(): same port, same data dir, so sessions and the secret survive. */
  restart(): Promise<void>;
  /** SIGKILL (a crash: no graceful shutdown, no save on disconnect), awaiting the exit. No-op when not running. */
  kill(): Promise<void>;
  /** stop() and delete the data dir. */
  dispose(): Promise<void>;
}

/** Starts a reference server process and resolves when it prints its "reference server on" line. */
export async function startReferenceServer({ env = {}, waitForPage = false }: ReferenceServerOptions = {}): Promise<ReferenceServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'sio-sessions-ref-'));
  tempDirs.add(dataDir);
  let child: ChildProcess | undefined;
  let output = '';
  let pageUrl: string | undefined;

  const start = () =>
    new Promise<void>((resolve, reject) => {
      if (child) return reject(new Error('reference server already running'));
      const childEnv: NodeJS.ProcessEnv = {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        PAGE_PORT: '0', // the page-origin listener on a free port, never a clash with PORT + 1
        ...env,
      };
      delete childEnv.NODE_TEST_CONTEXT; // it is a server, not a node:test subprocess
      const proc = spawnNode([SERVER_ENTRY], { cwd: ROOT, env: childEnv });
      child = proc;
      runningServers.add(proc);
      let ready = false;
      const runStart = output.length;
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`reference server did not start within ${START_TIMEOUT_MS} ms; output:\n${output}`));
      }, START_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const run = output.slice(runStart);
        const page = PAGE_LINE.exec(run);
        if (!ready && READY_LINE.test(run) && (!waitForPage || page)) {
          ready = true;
          pageUrl = page?.[1];
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code, signal) => {
        runningServers.delete(proc);
        if (child === proc) child = undefined;
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`reference server exited (code ${code}, signal ${signal}) before listening; output:\n${output}`));
        }
      });
    });

  const stop = async () => {
    if (child) await terminate(child, STOP_TIMEOUT_MS);
  };

  await start();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    get pageUrl() {
      return pageUrl;
    },
    output: () => output,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    kill: async () => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL');
      await exited;
    },
    dispose: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
      tempDirs.delete(dataDir);
    },
  };
}

/** The session part of the demo's `state` ack (it also carries the server's connection counts). */
export function sessionState(state: unknown): { counter: unknown; user: unknown } {
  const { counter, user } = state as { counter: unknown; user: unknown };
  return { counter, user };
}
