#!/usr/bin/env node
// Runs the fedgpu CLI of this checkout from its TypeScript sources through tsx, never a build that
// may be older than them (the image runs its own bundle, dist/fedgpu.mjs, directly).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { register } = await import('tsx/esm/api');
register({ tsconfig: join(root, 'tsconfig.json') }); // ours, whatever the working directory holds
await import(pathToFileURL(join(root, 'operator', 'src', 'cli', 'main.ts')).href);
