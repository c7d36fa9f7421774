/**
 * A test server in its own process: a TypeScript fixture run with tsx that prints one JSON line
 * `{"url": ...}` once it listens. For what only a separate process shows (its heap, its stderr
 * with DEBUG on). Stopped (SIGTERM, then SIGKILL) when the test ends.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnNode, terminate } from './reference-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  url: string;
  /** The whole line it printed with its URL (a fixture may say more there). */
  announced: Record<string, unknown>;
  /** What it printed on stderr so far. */
  stderr(): string;
  /** Everything it printed so far (stdout lines and stderr), for failure messages. */
  output(): string;
}

/**
 * Starts `fixture` (a path) with `node [...nodeArgs] --import tsx`, `env` added to this process's.
 * Resolves with its URL once it printed `{"url": ...}`; rejects if it exits or takes over 60 s (a
 * deadline for a broken fixture: at load 15 on two cores, starting one with tsx took over 20 s).
 */
export async function startServerProcess(
  t: { after(fn: () => unknown): void },
  fixture: string,
  { env = {}, nodeArgs = [] }: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<ServerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT; // a server, not a node:test subprocess
  const proc = spawnNode([...nodeArgs, '--import', 'tsx', fixture], { cwd: ROOT, env: childEnv });
  t.after(() => terminate(proc, 3000));
  let output = '';
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  const lines = createInterface({ input: proc.stdout! });
  const announced = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${fixture} did not start; output:\n${output}`)), 60_000);
    lines.on('line', (line) => {
      output += line + '\n';
      try {
        const parsed = JSON.parse(line) as { url?: string };
        if (parsed.url) {
          clearTimeout(timer);
          resolve(parsed);
        }
      } catch {
        // not our line
      }
    });
    proc.once('exit', (code) => reject(new Error(`${fixture} exited (${code}); output:\n${output}`)));
  });
  return { url: announced.url as string, announced, stderr: () => stderr, output: () => output };
}
