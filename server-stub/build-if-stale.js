/**
 * `npm start`'s `prestart`: builds dist/ only when it is missing or older than what it is built
 * from (src/ and the build's configuration), so a start without changes takes a second, not a
 * full build. `npm run build` always builds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What dist/ is built from, besides src/. */
const BUILD_CONFIG = ['rollup.config.mjs', 'tsconfig.json', 'tsconfig.build.json'];
/** Files the reference server needs from dist/ (it imports the server entry, serves the add-on). */
const NEEDED = ['server/index.js', 'umd/socket.io-sessions.js', 'umd/socket.io-sessions-tickets.js', 'umd/socket.io-sessions-check.js'];

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Why dist/ under `root` must be built, or undefined when it is up to date. */
export function staleReason(root) {
  const dist = join(root, 'dist');
  const missing = NEEDED.find((file) => !existsSync(join(dist, file)));
  if (missing) return `dist/${missing} is missing`;
  // The build empties dist/ and writes every file: its oldest file is when the last build ran.
  const built = Math.min(...files(dist).map((file) => statSync(file).mtimeMs));
  const inputs = [...files(join(root, 'src')), ...BUILD_CONFIG.map((file) => join(root, file)).filter((file) => existsSync(file))];
  const changed = inputs.find((file) => statSync(file).mtimeMs > built);
  return changed ? `${changed.slice(root.length + 1)} changed since the last build` : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const reason = staleReason(root);
  if (!reason) {
    console.log('dist/ is up to date with src/: not building (npm run build forces it)');
  } else {
    console.log(`${reason}: building dist/`);
    // npm runs scripts with npm_execpath set to its own CLI: the same npm builds.
    const npm = process.env.npm_execpath;
    const result = npm ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: root, stdio: 'inherit' }) : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
    process.exit(result.status ?? 1);
  }
}
