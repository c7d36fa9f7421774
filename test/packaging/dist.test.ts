/**
 * What `npm run build` puts in dist/, checked on the files themselves: every file has its source
 * map, and the size budget holds. Sizes are min+gzip: the minified file as shipped (source-map
 * comment included) through gzip at level 9, as `gzip -9` or a CDN compresses it.
 * - The add-on, socket.io-client external, its own emitter inside (no eventemitter3): <= 3 KB, both as ESM
 *   (dist/client/index.min.js: dist/client/index.js minified with the same terser options) and
 *   as the script-tag UMD.
 * - The opt-in tickets part (socket.io-sessions/tickets) and the opt-in tabs part
 *   (socket.io-sessions/tabs): <= 2 KB and 3 KB, our own budgets. Their script-tag twin, one file
 *   that the server serves after the add-on, holds both: <= 5 KB.
 * - The standalone CDN files, socket.io-client inside: <= socket.io-client's socket.io.min.js + 3 KB
 *   (the add-on and its tickets part) + 3 KB (the tabs part).
 * - The option check (misspelled options throw) is outside the add-on: in the npm entry
 *   (dist/client/index.js, .cjs), the CDN files and its own script-tag part (<= 1.25 KB), which the
 *   server serves third unless NODE_ENV=production; dist/client/index.min.js (the `production`
 *   export condition) and the UMD add-on leave it out.
 * Prints the table of sizes next to socket.io-client's own files.
 * Needs `npm run build` first, as `npm test` does.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = join(ROOT, 'dist');
const SOCKET_IO_DIST = join(ROOT, 'node_modules/socket.io-client/dist');
const KB = 1024;
const ADD_ON_BUDGET = 3 * KB;
const TICKETS_BUDGET = 2 * KB;
// Issue 17: what a readable tabs part (named message types, each message's shape checked) may cost.
/** 2.5 KB until the tabs' probe fixes of 2026-12-07 (at most once per connection, per-tab invalid policy, clone check, ...). */
const TABS_BUDGET = 3 * KB;
const CHECK_BUDGET = 1.25 * KB;

/** min+gzip size of a built (already minified) file. */
const gzipped = (file: string) => gzipSync(readFileSync(file), { level: 9 }).length;
const text = (file: string) => readFileSync(file, 'utf8');

const files = {
  esmAddOn: join(DIST, 'client/index.min.js'),
  umdAddOn: join(DIST, 'umd/socket.io-sessions.js'),
  esmTickets: join(DIST, 'client/tickets.min.js'),
  esmTabs: join(DIST, 'client/tabs.min.js'),
  umdTickets: join(DIST, 'umd/socket.io-sessions-tickets.js'),
  umdCheck: join(DIST, 'umd/socket.io-sessions-check.js'),
  cdnUmd: join(DIST, 'cdn/socket.io-sessions.min.js'),
  cdnEsm: join(DIST, 'cdn/socket.io-sessions.esm.min.js'),
  socketIoMin: join(SOCKET_IO_DIST, 'socket.io.min.js'),
  socketIoEsmMin: join(SOCKET_IO_DIST, 'socket.io.esm.min.js'),
};

/** Markers that tell whose code a bundle holds. */
const EVENTEMITTER3 = 'The listener must be a function'; // eventemitter3's own error message (no bundle has it any more)
const CORE = '"SessionEmitError"'; // the name of the core's error class of the emit guard (its definition, not an import of it): one copy, in the add-on
const ENGINE_IO = '"websocket"'; // engine.io-client's transport name, in every socket.io-client build

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Everything the build writes, each with a `.map` beside it. */
const EXPECTED = [
  'cdn/socket.io-sessions.esm.min.js',
  'cdn/socket.io-sessions.min.js',
  'client/index.cjs',
  'client/index.d.cts',
  'client/index.d.ts',
  'client/index.js',
  'client/index.min.js',
  'client/tabs.cjs',
  'client/tabs.d.cts',
  'client/tabs.d.ts',
  'client/tabs.js',
  'client/tabs.min.js',
  'client/tickets.cjs',
  'client/tickets.d.cts',
  'client/tickets.d.ts',
  'client/tickets.js',
  'client/tickets.min.js',
  'server/index.cjs',
  'server/index.d.cts',
  'server/index.d.ts',
  'server/index.js',
  'umd/socket.io-sessions-check.js',
  'umd/socket.io-sessions-tickets.js',
  'umd/socket.io-sessions.js',
];

test('dist/ holds exactly the documented files, each with a source map beside it that it links and that maps to src/', () => {
  const built = walk(DIST).map((f) => relative(DIST, f)).sort();
  assert.deepEqual(built, EXPECTED.flatMap((f) => [f, `${f}.map`]).sort());
  for (const file of EXPECTED.map((f) => join(DIST, f))) {
    const name = `${file.split('/').pop()}.map`;
    assert.ok(text(file).trimEnd().endsWith(`//# sourceMappingURL=${name}`), `${relative(ROOT, file)} does not link ${name}`);
    const { sources } = JSON.parse(text(`${file}.map`)) as { sources: string[] };
    assert.ok(sources.some((s) => s.includes('src/')), `${name} maps to no source in src/`);
  }
});

test('the add-on (ESM and script-tag UMD) fits in 3 KB min+gzip: socket.io-client external, its own emitter and the emit guard inside', () => {
  const esm = text(files.esmAddOn);
  assert.match(esm, /from\s*"socket\.io-client"/, 'the ESM add-on imports socket.io-client');
  assert.ok(!esm.includes(ENGINE_IO), 'the ESM add-on carries no socket.io-client code');
  assert.ok(!text(files.umdAddOn).includes(ENGINE_IO), 'the UMD add-on carries no socket.io-client code');
  for (const file of [files.esmAddOn, files.umdAddOn]) {
    assert.ok(text(file).includes(CORE), `${relative(ROOT, file)} includes the emit guard`);
    assert.ok(!text(file).includes(EVENTEMITTER3), `${relative(ROOT, file)} carries no eventemitter3 (the SDK has its own emitter)`);
    const size = gzipped(file);
    assert.ok(size <= ADD_ON_BUDGET, `${relative(ROOT, file)}: ${size} B min+gzip, budget ${ADD_ON_BUDGET} B (over by ${size - ADD_ON_BUDGET} B)`);
  }
});

/** Text only the tabs part has (its lock and channel name). */
const TABS = 'BroadcastChannel';

test('the opt-in tickets and tabs parts fit in 2 KB and 3 KB min+gzip, their script-tag file in both together, and the add-on carries neither', () => {
  for (const file of [files.esmAddOn, files.umdAddOn]) {
    assert.ok(!text(file).includes('sio-sessions:refresh'), `${relative(ROOT, file)} carries ticket code`);
    assert.ok(!text(file).includes(TABS), `${relative(ROOT, file)} carries tabs code`);
  }
  const parts: Array<[string, string, number]> = [
    [files.esmTickets, 'sio-sessions:refresh', TICKETS_BUDGET],
    [files.esmTabs, TABS, TABS_BUDGET],
    [files.umdTickets, 'sio-sessions:refresh', TICKETS_BUDGET + TABS_BUDGET],
  ];
  for (const [file, marker, budget] of parts) {
    assert.ok(text(file).includes(marker), `${relative(ROOT, file)} holds its part`);
    assert.ok(!text(file).includes(ENGINE_IO), `${relative(ROOT, file)} carries no socket.io-client code`);
    assert.ok(!text(file).includes(EVENTEMITTER3) && !text(file).includes(CORE), `${relative(ROOT, file)} carries no copy of the add-on's core`);
    const size = gzipped(file);
    assert.ok(size <= budget, `${relative(ROOT, file)}: ${size} B min+gzip, budget ${budget} B (over by ${size - budget} B)`);
  }
  assert.ok(text(files.umdTickets).includes(TABS), 'the script-tag file holds the tabs part too');
  // The tabs part takes the core's classes from the core entry, not a copy of its own.
  assert.match(text(files.esmTabs), /from\s*"socket\.io-sessions"/);
});

/** Text only the option check has (its message). */
const OPTION_CHECK = 'did you mean';

test('the option check is in the npm entry, the CDN files and its own script-tag part (<= 1.25 KB), never in the add-on or the tabs and tickets parts', () => {
  for (const file of [join(DIST, 'client/index.js'), join(DIST, 'client/index.cjs'), files.cdnUmd, files.cdnEsm, files.umdCheck]) {
    assert.ok(text(file).includes(OPTION_CHECK), `${relative(ROOT, file)} checks options`);
  }
  for (const file of [files.esmAddOn, files.umdAddOn, files.esmTickets, files.esmTabs, files.umdTickets]) {
    assert.ok(!text(file).includes(OPTION_CHECK), `${relative(ROOT, file)} carries the option check`);
  }
  // It throws the core's SessionOptionsError (the global ioSessions'), not a copy of its own.
  assert.ok(!text(files.umdCheck).includes('INVALID_OPTIONS'), 'the script-tag check carries no error class of its own');
  const size = gzipped(files.umdCheck);
  assert.ok(size <= CHECK_BUDGET, `${relative(ROOT, files.umdCheck)}: ${size} B min+gzip, budget ${CHECK_BUDGET} B (over by ${size - CHECK_BUDGET} B)`);
});

test("the standalone CDN files (socket.io-client, tickets and tabs inside) cost at most 3 KB + 3 KB on top of socket.io-client's socket.io.min.js", () => {
  const budget = gzipped(files.socketIoMin) + ADD_ON_BUDGET + TABS_BUDGET;
  for (const file of [files.cdnUmd, files.cdnEsm]) {
    const code = text(file);
    assert.ok(code.includes(ENGINE_IO) && code.includes(CORE) && code.includes(TABS), `${relative(ROOT, file)} bundles socket.io-client, the core and the tabs part`);
    assert.doesNotMatch(code, /from\s*"socket\.io-client"|require\("socket\.io-client"\)/, `${relative(ROOT, file)} needs nothing else`);
    const size = gzipped(file);
    assert.ok(size <= budget, `${relative(ROOT, file)}: ${size} B min+gzip, budget ${budget} B (over by ${size - budget} B)`);
  }
});

after(() => {
  // The table of sizes, printed by `npm run size`.
  const socketIo = gzipped(files.socketIoMin);
  const rows: Array<[string, string, number, number, string]> = [
    ['dist/client/index.min.js', 'ESM add-on (dist/client/index.js minified, without the option check)', 0, 0, `budget ${ADD_ON_BUDGET}`],
    ['dist/umd/socket.io-sessions.js', 'UMD add-on, script tag after socket.io.js', 0, 0, `budget ${ADD_ON_BUDGET}`],
    ['dist/client/tickets.min.js', 'tickets part, ESM (socket.io-sessions/tickets)', 0, 0, `budget ${TICKETS_BUDGET}`],
    ['dist/client/tabs.min.js', 'tabs part, ESM (socket.io-sessions/tabs)', 0, 0, `budget ${TABS_BUDGET}`],
    ['dist/umd/socket.io-sessions-tickets.js', 'tickets + tabs parts, script tag (served after the add-on)', 0, 0, `budget ${TICKETS_BUDGET + TABS_BUDGET}`],
    ['dist/umd/socket.io-sessions-check.js', 'option check, script tag (served third unless NODE_ENV=production)', 0, 0, `budget ${CHECK_BUDGET}`],
    ['dist/cdn/socket.io-sessions.min.js', 'CDN standalone UMD, socket.io-client inside', 0, 0, `socket.io.min.js +`],
    ['dist/cdn/socket.io-sessions.esm.min.js', 'CDN standalone ESM, socket.io-client inside', 0, 0, `socket.io.min.js +`],
    ['socket.io-client/dist/socket.io.min.js', "socket.io-client's own, for comparison", 0, 0, ''],
    ['socket.io-client/dist/socket.io.esm.min.js', "socket.io-client's own, for comparison", 0, 0, ''],
  ];
  const paths = [files.esmAddOn, files.umdAddOn, files.esmTickets, files.esmTabs, files.umdTickets, files.umdCheck, files.cdnUmd, files.cdnEsm, files.socketIoMin, files.socketIoEsmMin];
  const lines = ['| file | what | min (B) | min+gzip (B) | vs socket.io.min.js |', '| --- | --- | ---: | ---: | --- |'];
  rows.forEach((row, i) => {
    const path = paths[i]!;
    if (!existsSync(path)) return;
    const size = gzipped(path);
    const ratio = `${((size / socketIo) * 100).toFixed(0)} %${row[4] ? ` (${row[4].startsWith('budget') ? row[4] : `${row[4]}${size - socketIo}`})` : ''}`;
    lines.push(`| ${row[0]} | ${row[1]} | ${readFileSync(path).length} | ${size} | ${ratio} |`);
  });
  console.log(`\nsizes (min+gzip level 9):\n${lines.join('\n')}\n`);
});
