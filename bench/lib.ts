/**
 * The library under test, loaded from a built checkout: `BENCH_LIB=<checkout with a built dist/>`
 * (default: this checkout), so one harness measures today's code and an older commit alike.
 * Only the public API is used (the package's entry points in dist/); the types come from this
 * checkout's sources, which is fine while the public API does not change.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const LIB_DIR = resolve(process.env.BENCH_LIB || fileURLToPath(new URL('..', import.meta.url)));

async function load<T>(relative: string): Promise<T> {
  const file = resolve(LIB_DIR, relative);
  if (!existsSync(file)) throw new Error(`bench: ${file} missing; build that checkout first (npm ci && npm run build in ${LIB_DIR})`);
  return import(pathToFileURL(file).href) as Promise<T>;
}

export const serverLib = () => load<typeof import('../src/server/index.js')>('dist/server/index.js');
export const clientLib = () => load<typeof import('../src/client/index.js')>('dist/client/index.js');
export const ticketsLib = () => load<typeof import('../src/client/tickets.js')>('dist/client/tickets.js');

/** Which code was measured: the checkout's last commit that changed src/, and whether src/ has uncommitted changes. */
export function libVersion(dir = LIB_DIR): { dir: string; commit: string; dirty: boolean } {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  return { dir, commit: git('log', '-1', '--format=%h', '--', 'src') || 'unknown', dirty: git('status', '--porcelain', '--', 'src').length > 0 };
}
