import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gauge, type Registry } from 'prom-client';

// fedgpu_build_info{version} 1, exported by every binary. The version is package.json's, found by
// walking up from this file: the sources (operator/src/metrics), the image's bundle (dist/fedgpu.mjs)
// and the test bed's (a temporary copy of the image's layout) sit at different depths.

let cached: string | undefined;

export function fedgpuVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fedgpu' && pkg.version) return (cached = pkg.version);
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}

export function registerBuildInfo(registry: Registry, version = fedgpuVersion()): void {
  new Gauge({ name: 'fedgpu_build_info', help: 'Always 1; the version label names the running binary.', labelNames: ['version'], registers: [registry] }).set(
    { version },
    1,
  );
}
