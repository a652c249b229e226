import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reapStaleRuns } from './processes.js';
import { repoRoot } from './tools.js';

// The test beds run hubs and agents from the file the image ships (hack/bundle.mjs), laid out as
// the Dockerfile lays it out (package.json beside dist/fedgpu.mjs) in a temporary directory with
// no node_modules above it, so what the suites pass is what a cluster runs.
// FEDGPU_BINARY: one already built (the e2e suite's global setup builds one for all its files).
// FEDGPU_TESTBED_FROM_SOURCES=1 runs the sources through tsx instead (stack traces into .ts files).
// The build runs as its own node process: importing esbuild here would bundle it into the CLI
// (the sandbox command reaches this file), where it cannot work.

let built: string | undefined;

/** Builds the binary into `dir` (dir/package.json, dir/dist/fedgpu.mjs); returns its path. */
export function buildFedgpuBinary(dir: string): string {
  mkdirSync(join(dir, 'dist'), { recursive: true });
  copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  const binary = join(dir, 'dist', 'fedgpu.mjs');
  execFileSync(process.execPath, [join(repoRoot, 'hack', 'bundle.mjs'), binary], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  return binary;
}

/**
 * A fresh directory for a binary, under one named with this process's pid, the test bed's layout
 * for what a run leaves: those of processes gone without removing theirs (SIGKILL, a crash) are
 * removed first (reapStaleRuns).
 */
export function binaryDir(): string {
  const root = join(tmpdir(), 'fedgpu-binary');
  reapStaleRuns(root);
  mkdirSync(join(root, String(process.pid)), { recursive: true });
  return mkdtempSync(join(root, String(process.pid), 'build-'));
}

/** The bundled fedgpu binary: FEDGPU_BINARY, else one built on first use and removed when this process exits. */
export function fedgpuBinary(): string {
  if (process.env.FEDGPU_BINARY) return process.env.FEDGPU_BINARY;
  if (built) return built;
  const dir = binaryDir();
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return (built = buildFedgpuBinary(dir));
}

/** How to start the CLI: node's arguments before the CLI's own. */
export function cliLaunch(): string[] {
  if (process.env.FEDGPU_TESTBED_FROM_SOURCES) return ['--import', 'tsx', join(repoRoot, 'operator', 'src', 'cli', 'main.ts')];
  return [fedgpuBinary()];
}
