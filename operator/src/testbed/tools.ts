import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Root of the repository: three levels above operator/src/testbed in the sources. Bundled into
 * the fedgpu binary this file sits elsewhere (dist/, a temporary directory), so the sandbox
 * command run from a bundle finds the checkout above its working directory, else above the bundle.
 */
export const repoRoot = findRepoRoot();

function findRepoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const fromSources = resolve(here, '..', '..', '..');
  if (here.endsWith(join('operator', 'src', 'testbed'))) return fromSources;
  for (const start of [process.cwd(), here]) {
    for (let dir = start, i = 0; i < 32; dir = dirname(dir), i++) {
      if (existsSync(join(dir, 'operator', 'src', 'testbed', 'tools.ts'))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  return fromSources;
}

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
