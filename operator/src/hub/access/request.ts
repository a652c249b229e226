// Parsing of consumer access requests (pure): the aggregated API path and its query, with a clear
// error naming the bad parameter. The CLI builds the same URLs (cli/access/).
import type { AccessSubresource } from './authorize.js';

export const ACCESS_GROUP = 'access.fedgpu.io';
export const ACCESS_VERSION = 'v1alpha1';
export const ACCESS_PREFIX = `/apis/${ACCESS_GROUP}/${ACCESS_VERSION}`;
/** The Upgrade token of exec and port-forward connections (framing in frames.ts). */
export const ACCESS_UPGRADE = 'fedgpu.tunnel.v1';

export interface AccessTarget {
  namespace: string;
  name: string;
  subresource: AccessSubresource;
}

export interface AccessOptions {
  replica: number;
  /** Attempt epoch; undefined = the latest. */
  attempt: number | undefined;
  container: string;
  follow: boolean;
  tailLines: number;
  sinceSeconds: number;
  timestamps: boolean;
  command: string[];
  stdin: boolean;
  tty: boolean;
  port: number;
}

const dns1123 = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const containerName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export class BadRequest extends Error {}

export function parseTarget(pathname: string): AccessTarget | undefined {
  const m = /^\/apis\/access\.fedgpu\.io\/v1alpha1\/namespaces\/([^/]+)\/gpujobs\/([^/]+)\/(log|exec|portforward)$/.exec(pathname);
  if (!m) return undefined;
  const [, namespace, name, subresource] = m as unknown as [string, string, string, AccessSubresource];
  if (!dns1123.test(namespace) || !dns1123.test(name)) return undefined;
  return { namespace, name, subresource };
}

function int(query: URLSearchParams, key: string, min: number, max: number, fallback: number): number {
  const text = query.get(key);
  if (text === null || text === '') return fallback;
  if (!/^-?\d+$/.test(text)) throw new BadRequest(`${key} must be an integer, got ${JSON.stringify(text.slice(0, 32))}`);
  const n = Number(text);
  if (n < min || n > max) throw new BadRequest(`${key} must be between ${min} and ${max}`);
  return n;
}

function flag(query: URLSearchParams, key: string): boolean {
  const text = query.get(key);
  if (text === null || text === '' || text === 'false') return false;
  if (text === 'true' || text === '1') return true;
  throw new BadRequest(`${key} must be true or false`);
}

export function parseOptions(subresource: AccessSubresource, query: URLSearchParams): AccessOptions {
  const container = query.get('container') ?? '';
  if (container !== '' && !containerName.test(container)) throw new BadRequest('container must be a container name (DNS-1123 label)');
  const command = query.getAll('command');
  if (subresource === 'exec') {
    if (command.length === 0) throw new BadRequest('command is required for exec');
    if (command.length > 256 || command.some((c) => c.length > 4096)) throw new BadRequest('command is too long');
  }
  const attemptText = query.get('attempt');
  const options: AccessOptions = {
    replica: int(query, 'replica', 0, 4095, 0),
    attempt: attemptText === null || attemptText === '' ? undefined : int(query, 'attempt', 1, Number.MAX_SAFE_INTEGER, 1),
    container,
    follow: flag(query, 'follow'),
    tailLines: int(query, 'tailLines', -1, 10_000_000, -1),
    sinceSeconds: int(query, 'sinceSeconds', 0, 10 * 365 * 86_400, 0),
    timestamps: flag(query, 'timestamps'),
    command,
    stdin: flag(query, 'stdin'),
    tty: flag(query, 'tty'),
    port: int(query, 'port', 0, 65_535, 0),
  };
  if (subresource === 'portforward' && options.port === 0) throw new BadRequest('port is required for portforward (1-65535)');
  return options;
}

/** Discovery for the aggregated group version: only the three subresources are served. */
export function apiResourceList(): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${ACCESS_GROUP}/${ACCESS_VERSION}`,
    resources: [
      { name: 'gpujobs/log', singularName: '', namespaced: true, kind: 'GpuJobLog', verbs: ['get'] },
      { name: 'gpujobs/exec', singularName: '', namespaced: true, kind: 'GpuJobExecOptions', verbs: ['create'] },
      { name: 'gpujobs/portforward', singularName: '', namespaced: true, kind: 'GpuJobPortForwardOptions', verbs: ['create'] },
    ],
  };
}

/** A metav1.Status body, so kubectl-style clients print the message. */
export function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
