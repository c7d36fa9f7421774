/**
 * The bench's processes talk over Node's IPC channel: the orchestrator (bench/run.ts) forks the
 * server (bench/server.ts) and client (bench/client.ts) processes and calls commands on them;
 * each command answers once. A child exits as soon as its parent is gone, so a bench that dies
 * (Ctrl-C, a crash) leaves no process behind.
 */
import { fork, type ChildProcess } from 'node:child_process';

type Handler = (args: any) => unknown;
interface Call {
  id: number;
  cmd: string;
  args: unknown;
}
interface Answer {
  id: number;
  result?: unknown;
  error?: string;
}

/** In a child: answer the parent's calls with `handlers`; exit when the parent goes away. */
export function serve(handlers: Record<string, Handler>): void {
  process.on('message', async (message: Call) => {
    const handler = handlers[message.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${message.cmd}`);
      process.send!({ id: message.id, result: await handler(message.args) } satisfies Answer);
    } catch (err) {
      process.send!({ id: message.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Answer);
    }
  });
  process.once('disconnect', () => process.exit(0));
}

/** In a child: tell the parent something unasked (e.g. the server listens). */
export function announce(message: Record<string, unknown>): void {
  process.send!(message);
}

/** Every child forked here, killed when the orchestrator ends, however it ends. */
const children = new Set<ChildProcess>();
function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

export class Child {
  readonly proc: ChildProcess;
  /** The first unasked message (the server's `{ ready }`), or a rejection if the child exits first. */
  readonly announced: Promise<Record<string, any>>;
  readonly exited: Promise<void>;
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  /** `env`: added to this process's environment for the child. */
  constructor(entry: string, argv: string[], execArgv: string[] = [], env?: Record<string, string>) {
    this.proc = fork(new URL(entry, import.meta.url).pathname, argv, {
      execArgv: ['--import', 'tsx', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: env && { ...process.env, ...env },
    });
    children.add(this.proc);
    let announce: (m: Record<string, any>) => void;
    let fail: (e: Error) => void;
    this.announced = new Promise((resolve, reject) => ((announce = resolve), (fail = reject)));
    this.announced.catch(() => undefined);
    this.proc.on('message', (message: Answer & Record<string, any>) => {
      const call = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
      if (!call) return announce(message);
      this.pending.delete(message.id);
      if (message.error !== undefined) call.reject(new Error(`${entry} ${message.error}`));
      else call.resolve(message.result);
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        children.delete(this.proc);
        const gone = new Error(`${entry} exited (code ${code}, signal ${signal})`);
        fail(gone);
        for (const call of this.pending.values()) call.reject(gone);
        this.pending.clear();
        resolve();
      }),
    );
  }

  call<T = any>(cmd: string, args?: unknown): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, args } satisfies Call);
    });
  }

  /** Kill with `signal` (SIGKILL: a crash) and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }
}
