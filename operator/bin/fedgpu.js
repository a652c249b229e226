#!/usr/bin/env node
// Runs the fedgpu CLI: the bundle when `make bundle` has built one (dist/fedgpu.mjs, what the image
// runs), else the TypeScript sources through tsx (a checkout).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const compiled = join(root, 'dist', 'fedgpu.mjs');
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'operator', 'src', 'cli', 'main.ts')).href);
}
