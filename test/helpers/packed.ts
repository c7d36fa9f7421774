/**
 * The package as a user installs it: `npm pack` of this repository's build (dist/, made by
 * `npm test`'s build; packed with --ignore-scripts so it is that build, not another), installed
 * with the packages of the README's install line into a new npm project (`npm init -y`: CommonJS,
 * as a newcomer's is). Made once per build and shared by the test files that need it
 * (test/packaging/published.test.ts, snippets.test.ts): kept in the system's temp dir under a hash of
 * package.json and dist/, so a second file, or a second run of the same build, reuses it. Outside
 * this repository on purpose: a package missing from the project cannot be found in ours.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(tmpdir(), 'socket.io-sessions-packed');

/** The packages of the README's install line (`npm install …`), in its order; the snippet test holds the README to it. */
export const INSTALL_LINE_PACKAGES = ['socket.io-sessions', 'socket.io', 'socket.io-client', 'express', 'express-session'];
/** Installed beside them for docs/scaling.md's snippet (its own install line there). */
export const SCALING_PACKAGES = ['redis', 'connect-redis', '@socket.io/redis-adapter'];

/** Runs a command; on failure the error carries its output, so the test report shows why. */
export async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
    return stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: err });
  }
}

/** The version of a package in this repository's node_modules: the consumer gets the same. */
export const versionOf = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** What the tarball is made of: package.json and every built file, with the versions installed beside it. */
function buildHash(): string {
  const hash = createHash('sha256');
  for (const file of [join(ROOT, 'package.json'), join(ROOT, 'README.md'), ...files(join(ROOT, 'dist')).sort()]) {
    hash.update(relative(ROOT, file)).update(readFileSync(file));
  }
  hash.update([...INSTALL_LINE_PACKAGES.slice(1), ...SCALING_PACKAGES].map(versionOf).join());
  return hash.digest('hex').slice(0, 16);
}

export interface PackedProject {
  /** The `npm pack` tarball. */
  tarball: string;
  /** A new npm project with the tarball and the install line's other packages installed. */
  project: string;
}

let made: Promise<PackedProject> | undefined;

/** The packed tarball and the project it is installed in, made (or found) once per build. */
export function packedProject(): Promise<PackedProject> {
  return (made ??= make());
}

async function make(): Promise<PackedProject> {
  const dir = join(CACHE, buildHash());
  const result = { tarball: join(dir, 'socket.io-sessions.tgz'), project: join(dir, 'project') };
  if (existsSync(join(result.project, 'node_modules', 'socket.io-sessions', 'package.json'))) return result;

  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, 'making-'));
  try {
    await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work], ROOT);
    const packed = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!packed) throw new Error('npm pack wrote no tarball');
    renameSync(join(work, packed), join(work, 'socket.io-sessions.tgz'));
    const project = join(work, 'project');
    mkdirSync(project);
    await sh('npm', ['init', '-y'], project);
    const packages = [...INSTALL_LINE_PACKAGES, ...SCALING_PACKAGES].map((pkg) => (pkg === 'socket.io-sessions' ? join(work, 'socket.io-sessions.tgz') : `${pkg}@${versionOf(pkg)}`));
    await sh('npm', ['install', ...packages, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], project);
    // Another file may have made it meanwhile: keep the first, and older builds' projects go.
    try {
      renameSync(work, dir);
    } catch {
      rmSync(work, { recursive: true, force: true });
    }
    for (const old of readdirSync(CACHE)) if (join(CACHE, old) !== dir && !old.startsWith('making-')) rmSync(join(CACHE, old), { recursive: true, force: true });
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  return result;
}
