import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules, SourceMap } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryDir, buildFedgpuBinary } from '../operator/src/testbed/binary.js';

// The image's binary, laid out as the Dockerfile lays it out (/app/package.json, /app/dist/
// fedgpu.mjs) in a directory with no node_modules anywhere above it, as in the image: the test
// beds' own build (operator/src/testbed/binary.ts).

let app: string;
let binary: string;

beforeAll(() => {
  app = binaryDir();
  binary = buildFedgpuBinary(app);
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

  it('uses __dirname or __filename (undefined in an ES module) only where the binary never goes', () => {
    // Each occurrence, by the source file the bundle's own source map says it came from (grpc-js
    // ships its own maps, so its files are named as its TypeScript sources).
    const source = readFileSync(binary, 'utf8');
    const map = new SourceMap(JSON.parse(readFileSync(`${binary}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    const lineStarts = [0, ...[...source.matchAll(/\n/g)].map((m) => m.index + 1)];
    const where = new Set<string>();
    for (const m of source.matchAll(/\b__(?:dirname|filename)\b/g)) {
      let line = lineStarts.length - 1;
      while (lineStarts[line]! > m.index) line--;
      const entry = map.findEntry(line, m.index - lineStarts[line]!) as { originalSource?: string };
      const file = entry.originalSource ?? '(unmapped)';
      where.add(file.includes('node_modules/') ? file.slice(file.indexOf('node_modules/')) : file);
    }
    const neverReached = [
      'node_modules/@grpc/grpc-js/src/channelz.ts', // the channelz admin service's .proto: no admin services are added
      'node_modules/@grpc/grpc-js/src/orca.ts', // ORCA load reports: grpc.server_call_metric_recording is not set
      'node_modules/pino/lib/transport.js', // pino.transport(): the binary logs to stdout
      'node_modules/thread-stream/index.js', // the worker behind pino transports
      'node_modules/undici/index.js', // behind typeof __filename !== "undefined"
    ];
    expect([...where].filter((f) => !neverReached.includes(f))).toEqual([]);
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
