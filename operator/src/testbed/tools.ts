import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the repository (three levels above operator/src/testbed). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export type Tool =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-scheduler'
  | 'kube-controller-manager'
  | 'kubectl'
  | 'kubelet'
  | 'kwok'
  | 'helm'
  | 'promtool'
  | 'prometheus';

/** Path of a tool built by `make tools` (bin/ links into the versioned cache). */
export function toolPath(tool: Tool): string {
  const path = join(repoRoot, 'bin', tool);
  if (!existsSync(path)) {
    throw new Error(`${tool} is not built: run 'make tools' (expected ${path})`);
  }
  return path;
}
