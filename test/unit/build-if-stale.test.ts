/**
 * `npm start` and `npm test` build only when dist/ is missing or older than src/ (or the build's
 * configuration): server-stub/build-if-stale.js, the `prestart` and `pretest` script, on a made-up
 * project tree with set mtimes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
// @ts-expect-error: a plain JavaScript module (the reference server's), without declarations
import { staleReason } from '../../server-stub/build-if-stale.js';

const BUILT = ['server/index.js', 'umd/socket.io-sessions.js', 'umd/socket.io-sessions-tickets.js', 'umd/socket.io-sessions-check.js', 'client/index.js'];

/** A project with src/ and dist/ files, each written with the given mtime (seconds). */
function project(t: { after(fn: () => void): void }, files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'build-if-stale-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, mtime] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), '');
    utimesSync(join(root, path), mtime, mtime);
  }
  return root;
}
const dist = (mtime: number) => Object.fromEntries(BUILT.map((f) => [`dist/${f}`, mtime]));

test('no build when dist/ is newer than every source and build configuration file', (t) => {
  const root = project(t, { 'src/client/a.ts': 1000, 'src/server/b.ts': 1100, 'rollup.config.mjs': 900, ...dist(2000) });
  assert.equal(staleReason(root), undefined);
});

test('a build when dist/ is missing, or a file the reference server needs is', (t) => {
  assert.equal(staleReason(project(t, { 'src/a.ts': 1000 })), 'dist/server/index.js is missing');
  const { 'dist/umd/socket.io-sessions-check.js': _, ...partial } = dist(2000);
  assert.equal(staleReason(project(t, { 'src/a.ts': 1000, ...partial })), 'dist/umd/socket.io-sessions-check.js is missing');
});

test('a build when a file package.json names (an entry point, its types, the CDN file) is missing', (t) => {
  const root = project(t, { 'src/a.ts': 1000, ...dist(2000) });
  const pkg = { exports: { './tabs': { import: { types: './dist/client/tabs.d.ts', default: './dist/client/tabs.js' } } }, unpkg: './dist/cdn/x.min.js' };
  writeFileSync(join(root, 'package.json'), JSON.stringify(pkg));
  utimesSync(join(root, 'package.json'), 500, 500);
  assert.equal(staleReason(root), 'dist/cdn/x.min.js is missing');
  for (const f of ['client/tabs.d.ts', 'client/tabs.js', 'cdn/x.min.js']) {
    mkdirSync(dirname(join(root, 'dist', f)), { recursive: true });
    writeFileSync(join(root, 'dist', f), '');
    utimesSync(join(root, 'dist', f), 2000, 2000);
  }
  assert.equal(staleReason(root), undefined);
  utimesSync(join(root, 'package.json'), 3000, 3000);
  assert.equal(staleReason(root), 'package.json changed since the last build');
});

test('a build when a source file or the build configuration changed after the last build', (t) => {
  assert.equal(staleReason(project(t, { 'src/server/deep/c.ts': 3000, ...dist(2000) })), 'src/server/deep/c.ts changed since the last build');
  assert.equal(staleReason(project(t, { 'src/a.ts': 1000, 'rollup.config.mjs': 3000, ...dist(2000) })), 'rollup.config.mjs changed since the last build');
  // The oldest built file dates the build: a build cut short is rebuilt.
  assert.equal(staleReason(project(t, { 'src/a.ts': 1500, ...dist(2000), 'dist/client/index.js': 1000 })), 'src/a.ts changed since the last build');
});
