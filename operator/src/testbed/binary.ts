import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * A fresh directory for one process's binary, named with its pid; those of processes gone without
 * removing theirs (SIGKILL, a crash) are removed first.
 */
export function binaryDir(): string {
  const prefix = 'fedgpu-binary-';
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^fedgpu-binary-(\d+)-/.exec(name)?.[1]);
    if (pid && pid !== process.pid && !alive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
