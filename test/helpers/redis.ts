/**
 * A real `redis-server` for tests: its own free loopback port and temp dir, append-only file
 * fsynced on every write (so a restart keeps every session), and no RDB snapshots.
 *
 * @example
 *   const redis = await startRedis();
 *   t.after(() => redis.dispose());
 *   const client = await createClient({ url: redis.url }).connect();
 *   await redis.restart();            // same port, same dir: the data survives
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, terminate } from './reference-server.js';

const REDIS_SERVER = process.env.REDIS_SERVER_BIN || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN || 'redis-cli';
/**
 * redis-server has no IPC channel to watch: on Linux it is started through util-linux's `setpriv
 * --pdeathsig SIGKILL`, which sets the kernel's parent-death signal and then execs redis-server (the
 * same pid, no process in between), so it dies with this process however that ends (SIGKILL
 * included). Without setpriv (macOS), a plain spawn: the exit and signal handlers below only.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** Every redis-server started here, killed when the test process exits even if a test forgot to. */
const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
function cleanUp(): void {
  for (const proc of running) proc.kill('SIGKILL'); // also ends a frozen (SIGSTOPped) one
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.once('exit', cleanUp);
// Killed by a signal (the test runner cancelled, Ctrl-C), 'exit' does not fire: clean up, then die of it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.kill(process.pid, signal);
  });
}

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /** What redis-server printed, across all runs. */
  output(): string;
  /** Starts it (again) on the same port and dir; resolves once `PING` answers. */
  start(): Promise<void>;
  /** SHUTDOWN (SIGTERM: redis-server flushes the AOF and exits), awaiting the exit; SIGKILL if it hangs. No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: connections cut, nothing flushed), awaiting the exit. No-op when stopped. */
  kill(): Promise<void>;
  /** stop() then start(): same port and dir, so the data survives. */
  restart(): Promise<void>;
  /** stop() and delete the temp dir. */
  dispose(): Promise<void>;
  /** SIGSTOP: the process stays up and its connections open, but it answers nothing (a frozen VM, a stuck disk). */
  freeze(): void;
  /** SIGCONT after freeze(); a no-op otherwise. stop() and dispose() thaw first. */
  thaw(): void;
}

function ping(port: number): boolean {
  const result = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), 'ping'], { encoding: 'utf8', timeout: 2000 });
  return result.status === 0 && result.stdout.trim() === 'PONG';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a redis-server on a free 127.0.0.1 port; resolves once it answers PING. `args` come last,
 * so they override the defaults (the bench: `['--appendonly', 'no']`, no disk in the measurement).
 */
export async function startRedis({ args: extraArgs = [] }: { args?: string[] } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sio-sessions-redis-'));
  tempDirs.add(dir);
  let child: ChildProcess | undefined;
  let output = '';

  const start = async () => {
    if (child) throw new Error('redis-server already running');
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
      ...extraArgs,
    ];
    const proc = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', REDIS_SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    running.add(proc);
    let exited: string | undefined;
    proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.once('error', (err) => (exited = String(err)));
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      if (child === proc) child = undefined;
      exited = `code ${code}, signal ${signal}`;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(`redis-server exited (${exited}) before answering; output:\n${output}`);
      if (ping(port)) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server did not answer PING within ${START_TIMEOUT_MS} ms; output:\n${output}`);
      }
      await sleep(50);
    }
  };

  let frozen = false;
  const thaw = () => {
    if (frozen && child) child.kill('SIGCONT');
    frozen = false;
  };
  const stop = async () => {
    thaw(); // a stopped process would not handle the SIGTERM below
    // redis-server's SIGTERM is a SHUTDOWN: the AOF is fsynced anyway (appendfsync always).
    if (child) await terminate(child, STOP_TIMEOUT_MS);
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return child !== undefined;
    },
    output: () => output,
    start,
    stop,
    kill: async () => {
      const proc = child;
      if (!proc) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGKILL'); // ends a frozen one too
      frozen = false;
      await exited;
    },
    restart: async () => {
      await stop();
      await start();
    },
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
    freeze: () => {
      if (!child) throw new Error('redis-server is not running');
      child.kill('SIGSTOP');
      frozen = true;
    },
    thaw,
  };
}
