import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../testbed/tools.js';

/** Where the sandbox keeps kubeconfigs, logs, pid files and its status (FEDGPU_SANDBOX_DIR moves it, e.g. for tests). */
export const sandboxDir = process.env.FEDGPU_SANDBOX_DIR ?? join(repoRoot, '.sandbox');
export const statusPath = join(sandboxDir, 'status.json');
export const supervisorPidPath = join(sandboxDir, 'supervisor.pid');

export interface SandboxClusterStatus {
  name: string;
  role: 'hub' | 'provider';
  kubeconfig: string;
  server: string;
  displayName?: string;
}

/** What `fedgpu sandbox status -o json` prints; later parts add to it as they start. */
export interface SandboxStatus {
  startedAt: string;
  supervisorPid: number;
  state: 'starting' | 'running' | 'stopped';
  clusters: SandboxClusterStatus[];
  chain?: { rpcUrl: string; chainId: number; contracts: Record<string, string>; consumer: string; consumerKeyFile: string };
  prometheus?: { url: string };
  hub?: { grpcAddress: string; metricsUrl: string };
  /** How the demo ended, once it has. */
  demo?: { state: 'running' | 'done'; ok?: boolean; problems?: string[] };
}

export function writeStatus(status: SandboxStatus): void {
  mkdirSync(sandboxDir, { recursive: true });
  writeFileSync(statusPath, `${JSON.stringify(status, null, 2)}\n`);
}

export function readStatus(): SandboxStatus | undefined {
  if (!existsSync(statusPath)) return undefined;
  return JSON.parse(readFileSync(statusPath, 'utf8')) as SandboxStatus;
}

