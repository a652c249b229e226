import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './tools.js';

// The fedgpu CLI run from the sources (node --import tsx), as the e2e tests drive it.

export const cliEntry = join(repoRoot, 'operator', 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /** Written to the command's stdin, which is then closed. */
  stdin?: string;
  /** Variables over this process's environment. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Bytes of stdout or stderr kept before the command is killed (execFile's default otherwise). */
  maxBuffer?: number;
}

/** Runs one CLI command to its end; a failure is its exit code (1 when it was killed), never a rejection. */
export function runCli(args: string[], { stdin, env, timeoutMs = 120_000, maxBuffer }: RunCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', cliEntry, ...args],
      { timeout: timeoutMs, ...(env ? { env: { ...process.env, ...env } } : {}), ...(maxBuffer ? { maxBuffer } : {}) },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

export interface StreamingCli {
  child: ChildProcess;
  /** What it printed to stdout so far. */
  output: () => string;
  /** What it printed to stderr so far. */
  errors: () => string;
}

/** Starts a long-running CLI command (logs -f, port-forward...); the caller stops `child`. */
export function streamCli(args: string[]): StreamingCli {
  const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  return { child, output: () => out, errors: () => err };
}
