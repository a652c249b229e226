#!/usr/bin/env node
// Builds the fedgpu binary the image runs: operator/src/cli/main.ts and everything it imports in
// one ES module, dist/fedgpu.mjs, with what is never imported left out (docs/benchmarks.md, "One
// file instead of node_modules"). Why one file: node keeps the source text of every module it
// loads, and @kubernetes/client-node's index loads every API group it generates (about 16 MiB of
// source and the functions made from it) where the hub and the agent use four.
// Usage: node hack/bundle.mjs [outfile=dist/fedgpu.mjs]
import { buildSync } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** esbuild's options for the binary (the image's, the test beds' and the benches' build alike). */
function bundleOptions(outfile) {
  return {
    absWorkingDir: root,
    entryPoints: [join(root, 'operator', 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Whitespace only: names stay, so stack traces still say which function. Comments go too,
    // and with them the few non-ASCII characters that would make V8 keep the whole source as
    // two-byte text (twice the memory).
    minifyWhitespace: true,
    legalComments: 'none',
    charset: 'ascii',
    // For reading a stack trace offline (`--enable-source-maps` would hold the map in memory).
    sourcemap: 'linked',
    // ws's optional native speed-ups, required inside try/catch: absent is fine.
    external: ['bufferutil', 'utf-8-validate'],
    // The CommonJS dependencies call require() for node's own modules.
    banner: { js: "import { createRequire as __fedgpuCreateRequire } from 'node:module'; const require = __fedgpuCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  };
}

export function bundle(outfile = join(root, 'dist', 'fedgpu.mjs')) {
  buildSync(bundleOptions(resolve(outfile)));
  return resolve(outfile);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(bundle(process.argv[2]));
}
