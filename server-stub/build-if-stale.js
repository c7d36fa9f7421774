/**
 * `npm start`'s `prestart` and `npm test`'s `pretest`: builds dist/ only when a file package.json
 * names is missing or dist/ is older than what it is built from (src/ and the build's
 * configuration), so a start or a test run without changes takes a second, not a full build
 * (`npm install` and `npm ci` already built it). `npm run build` always builds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What dist/ is built from, besides src/. */
const BUILD_CONFIG = ['rollup.config.mjs', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
/** Files the reference server needs from dist/ (it imports the server entry, serves the add-on). */
const SERVED = ['server/index.js', 'umd/socket.io-sessions.js', 'umd/socket.io-sessions-check.js', 'umd/socket.io-sessions-tickets.js'];

/** Every dist/ file package.json names (entry points, types, CDN), and what the reference server serves. */
function needed(root) {
  const file = join(root, 'package.json');
  const pkg = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const named = [];
  const walk = (value) => {
    if (typeof value === 'string') {
      if (value.startsWith('./dist/')) named.push(value.slice('./dist/'.length));
    } else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk([pkg.main, pkg.module, pkg.types, pkg.unpkg, pkg.jsdelivr, pkg.exports]);
  return [...new Set([...SERVED, ...named])];
}

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Why dist/ under `root` must be built, or undefined when it is up to date. */
export function staleReason(root) {
  const dist = join(root, 'dist');
  const missing = needed(root).find((file) => !existsSync(join(dist, file)));
  if (missing) return `dist/${missing} is missing`;
  // The build empties dist/ and writes every file: its oldest file is when the last build ran.
  const built = Math.min(...files(dist).map((file) => statSync(file).mtimeMs));
  const inputs = [...files(join(root, 'src')), ...BUILD_CONFIG.map((file) => join(root, file)).filter((file) => existsSync(file))];
  const changed = inputs.find((file) => statSync(file).mtimeMs > built);
  return changed ? `${relative(root, changed)} changed since the last build` : undefined;
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
