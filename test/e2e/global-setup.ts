import { rmSync } from 'node:fs';
import { binaryDir, buildFedgpuBinary } from '../../operator/src/testbed/binary.js';

// One fedgpu binary for every e2e file (operator/src/testbed/binary.ts), built from the current
// sources before the first file starts; its test processes inherit FEDGPU_BINARY. (In watch mode
// it is not rebuilt between runs.)
export default function setup(): () => void {
  if (process.env.FEDGPU_BINARY || process.env.FEDGPU_TESTBED_FROM_SOURCES) return () => undefined;
  const dir = binaryDir();
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    process.env.FEDGPU_BINARY = buildFedgpuBinary(dir);
  } catch (err) {
    remove();
    throw err;
  }
  return () => {
    remove();
    delete process.env.FEDGPU_BINARY;
  };
}
