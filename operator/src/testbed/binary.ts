import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

// The test bed runs hubs and agents from the file the image ships (hack/bundle.mjs), built from
// the current sources once per test process, so what the suites pass is what a cluster runs.
// FEDGPU_TESTBED_FROM_SOURCES=1 runs them through tsx instead (stack traces into .ts files).
// The build runs as its own node process: importing esbuild here would bundle it into the CLI
// (the sandbox command reaches this file), where it cannot work.

let built: string | undefined;

/** The bundled fedgpu binary, built on first use; concurrent test processes each swap in a whole file. */
export function fedgpuBinary(): string {
  if (built) return built;
  const dir = join(repoRoot, '.testbed', 'bin');
  const scratch = join(dir, `build-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  try {
    execFileSync(process.execPath, [join(repoRoot, 'hack', 'bundle.mjs'), join(scratch, 'fedgpu.mjs')], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    renameSync(join(scratch, 'fedgpu.mjs.map'), join(dir, 'fedgpu.mjs.map'));
    renameSync(join(scratch, 'fedgpu.mjs'), join(dir, 'fedgpu.mjs'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return (built = join(dir, 'fedgpu.mjs'));
}

/** How to start the CLI: node's arguments before the CLI's own. */
export function cliLaunch(): string[] {
  if (process.env.FEDGPU_TESTBED_FROM_SOURCES) return ['--import', 'tsx', join(repoRoot, 'operator', 'src', 'cli', 'main.ts')];
  return [fedgpuBinary()];
}
