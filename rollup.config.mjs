// Builds dist/ (the files and their size budgets: docs/browser.md, "Including it"; test/packaging/dist.test.ts):
//   client/  npm ESM + CommonJS entry of `socket.io-sessions` (socket.io-client external), its core
//            without the option check, minified (the `production` condition; the size budget is
//            measured on it), bundled .d.ts/.d.cts
//   server/  npm ESM + CommonJS entry of `socket.io-sessions/server`, bundled .d.ts/.d.cts
//            and of `socket.io-sessions/tickets` (opt-in ticket credentials)
//   umd/     the script-tag add-on, its tickets part and its option check, served together (with an
//            embedded ticket; the check unless NODE_ENV=production) at /socket.io/socket.io-sessions.js
//   cdn/     standalone files with socket.io-client inside: a UMD for one <script>, an ESM for import
// Declarations: `tsc -p tsconfig.build.json` writes them to node_modules/.cache/ first (build script);
// rollup-plugin-dts bundles one file per entry, so `import` and `require` each get their own.
import typescript from '@rollup/plugin-typescript';
import commonjs from '@rollup/plugin-commonjs';
import resolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import { dts } from 'rollup-plugin-dts';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';

const ts = () =>
  typescript({
    tsconfig: './tsconfig.json',
    include: ['src/**/*.ts'],
    compilerOptions: { noEmit: false, declaration: false, sourceMap: true, types: ['node'] },
    noEmitOnError: true,
  });

// Every minified file uses these. The property regex renames our own `_` names (the SDK emitter's map,
// the fields of connect.ts's Link): src/ names no `_` field of another library (test/unit/no-private-fields.test.ts
// lists ours), so in the files without socket.io-client every `_` name is ours. The CDN files bundle
// socket.io-client, whose own `_` fields must keep their names: there only the emitter's `_events` is renamed.
// An ES module's top-level names are its own (`module`: mangled too); a UMD's are inside rollup's wrapper.
const OURS = /^_[a-z]/i;
const minify = (module = false, properties = OURS) =>
  terser({
    ecma: 2020,
    module,
    compress: { passes: 3, pure_getters: true, unsafe_arrows: true }, // no getter in these bundles has a side effect; no function of ours is called with `new` but the classes
    mangle: { properties: { regex: properties } },
    format: { comments: false },
  });
const EMITTER_ONLY = /^_events$/;

// Node builtins and packages (bare specifiers) stay external: the server's and all declarations.
const packagesAndBuiltins = (id) => id.startsWith('node:') || builtinModules.includes(id) || /^[a-z@][^:]*$/i.test(id);

// Client: CommonJS dependencies (none in the add-on since the SDK has its own emitter; the CDN files'
// socket.io-client is ESM) are inlined without a lazy-init wrapper or an interop helper.
const clientPlugins = (...before) => [...before, resolve({ browser: true }), commonjs({ strictRequires: false, defaultIsModuleExports: true }), ts()];

// The tabs entry and the option check import the core entry (error classes, the reload guard) as
// `socket.io-sessions` (the global `ioSessions` of the script-tag add-on): one copy, so `instanceof`
// holds in every tab and no bytes ship twice. The CDN builds bundle everything once anyway.
const coreExternal = {
  name: 'core-external',
  resolveId: (id, importer) =>
    (id === './index.js' && importer?.endsWith('/src/client/tabs.ts')) || (id === './core.js' && importer?.endsWith('/src/client/option-check.ts'))
      ? { id: 'socket.io-sessions', external: true }
      : null,
};

// The script-tag add-on's socket.io-client is the global `io` of /socket.io/socket.io.js.
const globalIo = {
  name: 'global-io',
  resolveId: (id) => (id === 'socket.io-client' ? fileURLToPath(new URL('./src/client/global-io.ts', import.meta.url)) : null),
};

const declarations = (entry, name = 'index') => ({
  input: `node_modules/.cache/socket.io-sessions/types/${entry}/${name}.d.ts`,
  external: packagesAndBuiltins,
  plugins: [dts({ sourcemap: true, respectExternal: true })], // respectExternal: the input is under node_modules/.cache
  output: [
    { file: `dist/${entry}/${name}.d.ts`, format: 'es', sourcemap: true },
    { file: `dist/${entry}/${name}.d.cts`, format: 'es', sourcemap: true },
  ],
});

export default [
  // socket.io-sessions: the core with the option check (option-check.ts)...
  {
    input: 'src/client/index.ts',
    external: ['socket.io-client'],
    plugins: clientPlugins(),
    output: [
      { file: 'dist/client/index.js', format: 'es', sourcemap: true },
      { file: 'dist/client/index.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  // ...and without it, minified: the size budget's file, and the entry under the `production` export
  // condition (Vite and webpack production builds) and for import maps.
  {
    input: 'src/client/core.ts',
    external: ['socket.io-client'],
    plugins: clientPlugins(),
    output: { file: 'dist/client/index.min.js', format: 'es', sourcemap: true, plugins: [minify(true)] },
  },
  // socket.io-sessions/tickets: opt-in ticket credentials, so cookie-only apps do not ship them.
  {
    input: 'src/client/tickets.ts',
    external: ['socket.io-client'],
    plugins: clientPlugins(),
    output: [
      { file: 'dist/client/tickets.js', format: 'es', sourcemap: true },
      { file: 'dist/client/tickets.min.js', format: 'es', sourcemap: true, plugins: [minify(true)] },
      { file: 'dist/client/tickets.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  // socket.io-sessions/tabs: opt-in, one connection shared by the tabs of a browser.
  {
    input: 'src/client/tabs.ts',
    external: ['socket.io-client'],
    plugins: clientPlugins(coreExternal),
    output: [
      { file: 'dist/client/tabs.js', format: 'es', sourcemap: true },
      { file: 'dist/client/tabs.min.js', format: 'es', sourcemap: true, plugins: [minify(true)] },
      { file: 'dist/client/tabs.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  {
    input: 'src/server/index.ts',
    external: packagesAndBuiltins,
    plugins: [ts()],
    output: [
      { file: 'dist/server/index.js', format: 'es', sourcemap: true },
      { file: 'dist/server/index.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  // An IIFE, not a UMD: it needs the global `io` anyway, and a UMD under an AMD loader would not set the
  // global `ioSessions` that the tickets and check parts read.
  {
    input: 'src/client/umd.ts',
    plugins: clientPlugins(globalIo),
    output: { file: 'dist/umd/socket.io-sessions.js', format: 'iife', name: 'ioSessions', sourcemap: true, plugins: [minify()] },
  },
  // Served after the add-on in /socket.io/socket.io-sessions.js, with the embedded ticket.
  {
    input: 'src/client/tickets-umd.ts',
    plugins: clientPlugins(coreExternal),
    output: { file: 'dist/umd/socket.io-sessions-tickets.js', format: 'iife', globals: { 'socket.io-sessions': 'ioSessions' }, sourcemap: true, plugins: [minify()] },
  },
  // Served third, unless NODE_ENV=production: the option check of io.connectWithSession.
  {
    input: 'src/client/check-umd.ts',
    plugins: clientPlugins(coreExternal),
    output: { file: 'dist/umd/socket.io-sessions-check.js', format: 'iife', globals: { 'socket.io-sessions': 'ioSessions' }, sourcemap: true, plugins: [minify()] },
  },
  {
    input: 'src/client/standalone.ts',
    plugins: clientPlugins(),
    output: [
      { file: 'dist/cdn/socket.io-sessions.min.js', format: 'umd', name: 'ioSessions', sourcemap: true, plugins: [minify(false, EMITTER_ONLY)] },
      { file: 'dist/cdn/socket.io-sessions.esm.min.js', format: 'es', sourcemap: true, plugins: [minify(true, EMITTER_ONLY)] },
    ],
  },
  declarations('client'),
  declarations('client', 'tickets'),
  declarations('client', 'tabs'),
  declarations('server'),
];
