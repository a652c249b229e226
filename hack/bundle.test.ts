import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.mjs';

// The image's binary, laid out as the Dockerfile lays it out (/app/package.json, /app/dist/
// fedgpu.mjs) in a directory with no node_modules anywhere above it, as in the image.

const repo = join(import.meta.dirname, '..');
let app: string;
let binary: string;

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'fedgpu-image-'));
  copyFileSync(join(repo, 'package.json'), join(app, 'package.json'));
  binary = bundle(join(app, 'dist', 'fedgpu.mjs'));
}, 60_000);

afterAll(() => rmSync(app, { recursive: true, force: true }));

const run = (...args: string[]) => execFileSync(process.execPath, [binary, ...args], { cwd: app, encoding: 'utf8', timeout: 30_000 });

describe('the bundled fedgpu binary', () => {
  it('starts without node_modules and reports its version', () => {
    expect(run('--version').trim()).toBe('0.1.0');
    expect(run('hub', '--help')).toContain('--grpc-port');
    expect(run('agent', '--help')).toContain('--hub-address');
  });

  it('asks node at run time for its own modules only, and for optional ones that may be missing', () => {
    const source = readFileSync(binary, 'utf8');
    const required = new Set([...source.matchAll(/__require\("([^"]+)"\)/g)].map((m) => m[1]!));
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    // Each required inside try/catch or only on use: ws's native speed-ups, debug's colours, and
    // undici's SQLite cache store (node:sqlite is built into the image's Node 22, not into 20).
    const optional = ['bufferutil', 'node:sqlite', 'supports-color', 'utf-8-validate'];
    expect([...required].filter((m) => !builtins.has(m) && !optional.includes(m))).toEqual([]);
  });

  it('is ASCII, so V8 keeps its source as one-byte text', () => {
    expect(readFileSync(binary).every((b) => b < 0x80)).toBe(true);
  });

  it('leaves out the Kubernetes API groups nothing calls', () => {
    const source = readFileSync(binary, 'utf8');
    // (a boolean each: a failed toContain would print all 6 MB)
    expect(source.includes('ObservableCoreV1Api=class')).toBe(true);
    expect(source.includes('ObservableStorageV1Api=class')).toBe(false);
  });
});
