import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFedgpuBinary } from '../../operator/src/testbed/binary.js';

// One fedgpu binary for every e2e file (operator/src/testbed/binary.ts), built from the current
// sources before the first file starts; its test processes inherit FEDGPU_BINARY.
export default function setup(): () => void {
  if (process.env.FEDGPU_BINARY || process.env.FEDGPU_TESTBED_FROM_SOURCES) return () => undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fedgpu-binary-'));
  process.env.FEDGPU_BINARY = buildFedgpuBinary(dir);
  return () => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.FEDGPU_BINARY;
  };
}
