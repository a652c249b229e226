// Calls to the hub's access API (access.fedgpu.io) through the hub cluster's apiserver, with the
// user's own kubeconfig credentials: the apiserver authenticates, the hub authorizes (RBAC).
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { ACCESS_PREFIX, ACCESS_UPGRADE } from '../../hub/access/request.js';
import { CliError, ExitCode } from '../errors.js';

export function accessPath(namespace: string, job: string, subresource: 'log' | 'exec' | 'portforward', query: URLSearchParams): string {
  return `${ACCESS_PREFIX}/namespaces/${encodeURIComponent(namespace)}/gpujobs/${encodeURIComponent(job)}/${subresource}?${query}`;
}

async function requestOptions(kc: KubeConfig, path: string, method: string): Promise<RequestOptions> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CliError('the kubeconfig names no cluster', ExitCode.Usage);
  const url = new URL(cluster.server);
  const options: RequestOptions = { hostname: url.hostname, port: url.port || 443, path, method, headers: {} };
  await kc.applyToHTTPSOptions(options);
  return options;
}

/** Turns a refusal into a CliError carrying the apiserver's or hub's message (403 names the verb). */
async function refusal(res: IncomingMessage): Promise<CliError> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let message = text.trim() || `HTTP ${res.statusCode}`;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not a Status
  }
  if (res.statusCode === 503 && /the server is currently unable to handle the request|service unavailable/i.test(message)) {
    message += ' (is the hub access API registered and the hub running? see docs/access.md)';
  }
  const code = res.statusCode === 404 ? ExitCode.NotFound : res.statusCode === 503 ? ExitCode.Unreachable : ExitCode.Failure;
  return new CliError(message, code);
}

// With HA hubs only the leader is the access Service's endpoint (docs/access.md). A stand-by can
// still be reached now and then (a connection the apiserver kept from before a hand-over) and
// answers 503 naming the leader: the next request goes to the leader, so a few are tried at once.
// While a leader hands over, the Service has no endpoint or one that is gone (until the Lease of a
// crashed leader expires, 15 s by default) and the apiserver answers 503 itself: tried for longer.
const standbyRetries = 4;
const unavailableForMs = 25_000;
const isStandby = (error: unknown) => error instanceof CliError && error.exitCode === ExitCode.Unreachable && /is a stand-by|is not serving yet/.test(error.message);
const isUnavailable = (error: unknown) => error instanceof CliError && error.exitCode === ExitCode.Unreachable && /unable to handle the request|service unavailable|error trying to reach service/i.test(error.message);

/** Opens, again after a stand-by's answer (a few times) or while the access API is unavailable (for a while). */
export async function pastStandbys<T>(open: () => Promise<T>, opts: { unavailableForMs?: number; onWait?: (error: CliError) => void; sleep?: (ms: number) => Promise<void>; now?: () => number } = {}): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = opts.now ?? Date.now;
  const until = now() + (opts.unavailableForMs ?? unavailableForMs);
  let standbys = 0;
  let waits = 0;
  for (;;) {
    try {
      return await open();
    } catch (error) {
      if (isStandby(error) && standbys < standbyRetries) {
        standbys++;
        await sleep(250 * standbys);
        continue;
      }
      if (!isUnavailable(error) || now() >= until) throw error;
      if (waits++ === 0) opts.onWait?.(error as CliError);
      await sleep(Math.min(250 * 2 ** Math.min(waits - 1, 3), Math.max(0, until - now())));
    }
  }
}

const waitNote = (error: CliError) => process.stderr.write(`the hub access API is not answering (${error.message.split(' (is the hub')[0]}); retrying for up to ${unavailableForMs / 1000} s (a hub leader hand-over takes up to about 20 s)\n`);

/** GET a log: resolves with the response stream once the hub accepted. */
export function openLog(kc: KubeConfig, path: string): Promise<IncomingMessage> {
  return pastStandbys(() => openLogOnce(kc, path), { onWait: waitNote });
}

/** POST with Upgrade: resolves with the raw connection once the hub switched protocols. */
export function openUpgrade(kc: KubeConfig, path: string): Promise<Socket> {
  return pastStandbys(() => openUpgradeOnce(kc, path), { onWait: waitNote });
}

async function openLogOnce(kc: KubeConfig, path: string): Promise<IncomingMessage> {
  const options = await requestOptions(kc, path, 'GET');
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(options, resolve);
    req.on('error', (e) => reject(new CliError(`cannot reach the hub cluster: ${e.message}`, ExitCode.Unreachable)));
    req.end();
  });
  if (res.statusCode !== 200) throw await refusal(res);
  return res;
}

async function openUpgradeOnce(kc: KubeConfig, path: string): Promise<Socket> {
  const options = await requestOptions(kc, path, 'POST');
  options.headers = { ...options.headers, Connection: 'Upgrade', Upgrade: ACCESS_UPGRADE };
  return new Promise<Socket>((resolve, reject) => {
    const req = request(options);
    req.on('upgrade', (_res, socket, head) => {
      if (head.byteLength > 0) socket.unshift(head);
      resolve(socket as Socket);
    });
    req.on('response', (res) => void refusal(res).then(reject, reject));
    req.on('error', (e) => reject(new CliError(`cannot reach the hub cluster: ${e.message}`, ExitCode.Unreachable)));
    req.end();
  });
}
