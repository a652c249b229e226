import { buildSync } from 'esbuild';
const base = { absWorkingDir: '/work/main', entryPoints: ['/work/main/operator/src/cli/main.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', legalComments: 'none', charset: 'ascii', external: ['bufferutil','utf-8-validate'], banner: { js: "import { createRequire as __fedgpuCreateRequire } from 'node:module'; const require = __fedgpuCreateRequire(import.meta.url);" }, logLevel: 'warning' };
for (const [name, extra] of [['ws', { minifyWhitespace: true }], ['ws+syntax', { minifyWhitespace: true, minifySyntax: true }], ['full+keepNames', { minify: true, keepNames: true }], ['full', { minify: true }]]) {
  const r = buildSync({ ...base, ...extra, outfile: `/tmp/b2-${name}.mjs` });
}
