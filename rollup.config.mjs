// Builds dist/: npm ESM entries (client, server) + a CommonJS server entry, and the
// script-tag add-on the server serves at /socket.io/socket.io-sessions.js.
// Declarations come from `tsc -p tsconfig.build.json` (see the build script).
import typescript from '@rollup/plugin-typescript';
import commonjs from '@rollup/plugin-commonjs';
import resolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import { builtinModules } from 'node:module';

const ts = () =>
  typescript({
    tsconfig: './tsconfig.json',
    include: ['src/**/*.ts'],
    compilerOptions: { noEmit: false, declaration: false, sourceMap: true, types: ['node'] },
    noEmitOnError: true,
  });

// Server: everything in node_modules and node builtins stays external.
const serverExternal = (id) => builtinModules.includes(id.replace(/^node:/, '')) || id.startsWith('node:') || /^[a-z@][^:]*$/i.test(id) && !id.startsWith('.');

// Client: socket.io-client is the app's (peer dependency); eventemitter3 is bundled (CommonJS inside).
const clientPlugins = () => [resolve({ browser: true }), commonjs(), ts()];

export default [
  {
    input: 'src/client/index.ts',
    external: ['socket.io-client'],
    plugins: clientPlugins(),
    output: { file: 'dist/client/index.js', format: 'es', sourcemap: true },
  },
  {
    input: 'src/server/index.ts',
    external: serverExternal,
    plugins: [ts()],
    output: [
      { file: 'dist/server/index.js', format: 'es', sourcemap: true },
      { file: 'dist/server/index.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  {
    input: 'src/client/umd.ts',
    plugins: clientPlugins(),
    output: {
      file: 'dist/umd/socket.io-sessions.js',
      format: 'umd',
      name: 'ioSessions',
      sourcemap: true,
      plugins: [terser()],
    },
  },
];
