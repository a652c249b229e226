// The agent's side of consumer access: a tunnel session opened by the hub becomes one call to this
// cluster's own apiserver (pods/log, pods/exec, pods/portforward) for one pod of one attempt the
// agent runs, in its job namespace. Anything else (another pod, another namespace, an attempt the
// agent does not run, exec when the owner switched it off) is refused and never reaches the apiserver.
import { request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { TunnelKind, type TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import type { TunnelSession } from '../../protocol/tunnel/mux.js';
import { podName } from '../pods/build.js';
import { retainedView, type RetainedLogs } from './retained-logs.js';

export interface AccessPolicy {
  /** The owner allows exec into job pods (default true). */
  exec: boolean;
  /** The owner allows port-forward to job pods (default true). */
  portForward: boolean;
}

/** What the agent knows of one attempt it runs. */
export interface AttemptPods {
  replicas: number;
  /** Container names of each replica, first = main. */
  containers: string[][];
  live: boolean;
  /** The consumer's namespace on this provider where the attempt's pods run. */
  namespace: string;
  /** The pool (GPU product of the node) of each replica; undefined where the node is unknown. */
  pools: (string | undefined)[];
}

export interface AccessServerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** The owner's choice for a pool (undefined: the node's pool is unknown; the all-pool setting). */
  policyFor(pool: string | undefined): AccessPolicy;
  retained: RetainedLogs;
  /** The attempt, when this agent runs (or ran) it; undefined otherwise. */
  attempt(jobUid: string, epoch: number): AttemptPods | undefined;
}

/** A kept log tail, and whether it was kept with time stamps (it records its container then). */
interface KeptTail {
  log: Buffer;
  stamped: boolean;
}

const kindNames: Record<number, string> = { 1: 'log', 2: 'exec', 3: 'port-forward' };

export class AccessServer {
  constructor(private readonly options: AccessServerOptions) {}

  /** Serves one session; never throws (refusals close the session with a reason). */
  serve(session: TunnelSession, open: TunnelOpen): void {
    const log = this.options.logger.child({ tunnel: session.id, kind: kindNames[open.kind] ?? 'unknown', job: open.jobUid, epoch: open.epoch, replica: open.replica });
    const refuse = (reason: string, error: string) => {
      log.info({ reason }, `tunnel refused: ${error}`);
      session.close({ reason, error });
    };
    const attempt = this.options.attempt(open.jobUid, open.epoch);
    const retained = open.kind === TunnelKind.TUNNEL_KIND_LOG ? this.options.retained.read(open.jobUid, open.epoch, open.replica) : undefined;
    if (!attempt && !retained) return refuse('not_attempt_pod', `attempt ${open.epoch} of job ${open.jobUid} does not run here`);
    if (attempt && (open.replica >= attempt.replicas || !Number.isSafeInteger(open.replica))) {
      return refuse('not_attempt_pod', `attempt ${open.epoch} has ${attempt.replicas} replica(s); there is no replica ${open.replica}`);
    }
    const containers = attempt?.containers[open.replica] ?? [];
    const container = open.container || containers[0] || '';
    if (attempt && !containers.includes(container)) {
      const named = containers.length > 4 ? `${containers.slice(0, 4).join(', ')}, …` : containers.join(', ');
      return refuse('not_attempt_pod', `replica ${open.replica} has no container ${JSON.stringify(open.container)} (it has ${named})`);
    }
    // Only the main container's tail outlives the pods: another container's is gone, and is not
    // answered with the main one's. (A tail kept by an older agent does not say whose it is.)
    // Whose the kept tail is: read once, it also says the tail was kept with time stamps.
    const keptOf = retained ? this.options.retained.containerOf(open.jobUid, open.epoch, open.replica) : undefined;
    const main = containers[0] ?? keptOf;
    const keptTail = retained && (!open.container || main === undefined || open.container === main) ? { log: retained, stamped: keptOf !== undefined } : undefined;
    const pod = podName(open.jobUid, open.epoch, open.replica);
    const namespace = attempt?.namespace ?? '';
    try {
      switch (open.kind) {
        case TunnelKind.TUNNEL_KIND_LOG:
          if (!attempt?.live && retained) {
            if (!keptTail) {
              return refuse('not_attempt_pod', `attempt ${open.epoch} has ended; only its main container's log (${main}) is kept, not ${JSON.stringify(open.container)}'s`);
            }
            return this.serveRetained(session, open, keptTail);
          }
          return this.serveLog(session, namespace, open, pod, container, log, keptTail);
        case TunnelKind.TUNNEL_KIND_EXEC:
          // The owner's choice for the pool the replica runs in, whatever the hub asks.
          if (!this.options.policyFor(attempt?.pools[open.replica]).exec) return refuse('exec_disabled', forbidden('exec into', attempt?.pools[open.replica]));
          if (!attempt?.live) return refuse('attempt_not_running', `attempt ${open.epoch} is not running`);
          return this.serveExec(session, namespace, open, pod, container, log);
        case TunnelKind.TUNNEL_KIND_PORT_FORWARD:
          if (!this.options.policyFor(attempt?.pools[open.replica]).portForward) return refuse('port_forward_disabled', forbidden('port-forward to', attempt?.pools[open.replica]));
          if (!attempt?.live) return refuse('attempt_not_running', `attempt ${open.epoch} is not running`);
          if (!(open.port >= 1 && open.port <= 65535)) return refuse('bad_port', 'port must be 1-65535');
          return this.servePortForward(session, namespace, open, pod, log);
        default:
          return refuse('bad_kind', 'unknown tunnel kind');
      }
    } catch (error) {
      log.error({ err: error }, 'tunnel failed');
      session.close({ reason: 'internal', error: 'agent could not serve the session' });
    }
  }

  /** Keeps the tail of each replica's main-container log of an attempt that just ended. */
  async retain(namespace: string, jobUid: string, epoch: number, containers: string[][]): Promise<void> {
    const limitBytes = this.options.retained.maxBytes;
    await Promise.all(containers.map(async (names, replica) => {
      // With time stamps, so that --since and --timestamps work on the tail as on a live log.
      const query = new URLSearchParams({ container: names[0] ?? '', timestamps: 'true' });
      const options = await this.apiRequest(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${podName(jobUid, epoch, replica)}/log?${query}`);
      const body = await new Promise<Buffer | undefined>((resolve) => {
        const req = request(options, (res) => {
          // Only the tail is kept: memory stays within about twice the limit however long the log.
          let tail: Buffer = Buffer.alloc(0);
          res.on('data', (c: Buffer) => {
            tail = Buffer.concat([tail, c]);
            if (tail.byteLength > limitBytes * 2) tail = tail.subarray(tail.byteLength - limitBytes);
          });
          res.on('end', () => resolve(res.statusCode === 200 ? tail : undefined));
          res.on('error', () => resolve(undefined));
        });
        req.on('error', () => resolve(undefined));
        req.setTimeout(30_000, () => req.destroy());
        req.end();
      });
      if (body) this.options.retained.keep(jobUid, epoch, replica, body, names[0]);
    }));
  }

  private serveRetained(session: TunnelSession, open: TunnelOpen, kept: KeptTail): void {
    session.accept();
    const text = retainedView(kept.log, { tailLines: open.tailLines, sinceSeconds: open.sinceSeconds, timestamps: open.timestamps, stamped: kept.stamped }, Date.now());
    void session.write(0, text).catch(() => {});
    session.end();
  }

  private serveLog(session: TunnelSession, namespace: string, open: TunnelOpen, pod: string, container: string, log: Logger, retained: KeptTail | undefined): void {
    const query = new URLSearchParams({ container });
    if (open.follow) query.set('follow', 'true');
    if (open.tailLines >= 0) query.set('tailLines', String(open.tailLines));
    if (open.sinceSeconds > 0) query.set('sinceSeconds', String(open.sinceSeconds));
    if (open.timestamps) query.set('timestamps', 'true');
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${pod}/log?${query}`;
    void this.apiRequest(path).then((options) => {
      const req = request(options, (res) => {
        if ((res.statusCode ?? 500) >= 300) {
          let body = '';
          res.on('data', (c: Buffer) => (body = (body + c.toString('utf8')).slice(0, 2048)));
          res.on('end', () => {
            if (res.statusCode === 404 && retained) return this.serveRetained(session, open, retained);
            session.close({ reason: 'apiserver_refused', error: `provider apiserver answered ${res.statusCode}: ${statusMessage(body)}` });
          });
          return;
        }
        session.accept();
        // Backpressure end to end: the next chunk is read only once the tunnel took this one.
        res.on('data', (chunk: Buffer) => {
          res.pause();
          session.write(0, chunk).then(() => res.resume(), () => req.destroy());
        });
        res.on('end', () => session.end());
        res.on('error', () => session.close({ reason: 'apiserver_error', error: 'log stream broke' }));
      });
      req.on('error', (error) => {
        log.warn({ err: error }, 'log request failed');
        session.close({ reason: 'apiserver_error', error: 'provider apiserver unreachable' });
      });
      session.onClose = () => req.destroy();
      req.end();
    });
  }

  private serveExec(session: TunnelSession, namespace: string, open: TunnelOpen, pod: string, container: string, log: Logger): void {
    const query = new URLSearchParams({ container, stdout: 'true', stderr: open.tty ? 'false' : 'true' });
    for (const c of open.command) query.append('command', c);
    if (open.stdin) query.set('stdin', 'true');
    if (open.tty) query.set('tty', 'true');
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${pod}/exec?${query}`;
    this.openWebSocket(session, path, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], log, (ws) => {
      let exit: { hasExitCode: boolean; exitCode: number; error: string } | undefined;
      ws.on('message', (raw: Buffer) => {
        const channel = raw[0];
        const data = raw.subarray(1);
        if (channel === 1 || channel === 2) {
          ws.pause();
          session.write(channel, data).then(() => ws.resume(), () => ws.terminate());
        } else if (channel === 3) exit = exitOf(data);
      });
      // The apiserver always ends an exec with its status (channel 3): a stream that closes without
      // one was cut (the apiserver, kubelet or network went away), and is not a success.
      ws.on('close', (code: number) => session.end(exit ?? { hasExitCode: false, exitCode: 0, error: `the exec stream to the pod ended without an exit status (websocket close ${code})` }));
      session.onData = (channel, data) => {
        if (channel === 0 && data.byteLength > 0) ws.send(Buffer.concat([Buffer.from([0]), data]), () => session.delivered(data.byteLength));
        else if (channel === 0 && data.byteLength === 0 && ws.protocol === 'v5.channel.k8s.io') ws.send(Buffer.from([255, 0]));
        else session.delivered(data.byteLength);
      };
      session.onClose = () => ws.terminate();
    });
  }

  private servePortForward(session: TunnelSession, namespace: string, open: TunnelOpen, pod: string, log: Logger): void {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${pod}/portforward?ports=${open.port}`;
    this.openWebSocket(session, path, ['v4.channel.k8s.io'], log, (ws) => {
      // Each channel's first message is the port (2 bytes); channel 0 is data, 1 is errors.
      const seen = new Set<number>();
      ws.on('message', (raw: Buffer) => {
        const channel = raw[0] as number;
        let data = raw.subarray(1);
        if (!seen.has(channel)) {
          seen.add(channel);
          data = data.subarray(2);
        }
        if (data.byteLength === 0) return;
        if (channel === 0) {
          ws.pause();
          session.write(0, data).then(() => ws.resume(), () => ws.terminate());
        } else session.close({ reason: 'port_forward_error', error: data.toString('utf8').slice(0, 512) });
      });
      ws.on('close', () => session.end());
      session.onData = (_channel, data) => {
        if (data.byteLength === 0) return;
        ws.send(Buffer.concat([Buffer.from([0]), data]), () => session.delivered(data.byteLength));
      };
      session.onClose = () => ws.terminate();
    });
  }

  private openWebSocket(session: TunnelSession, path: string, protocols: string[], log: Logger, ready: (ws: WebSocket) => void): void {
    void this.apiRequest(path).then((options) => {
      const url = `wss://${options.hostname}:${options.port}${options.path}`;
      const ws = new WebSocket(url, protocols, { ca: options.ca, cert: options.cert, key: options.key, headers: options.headers as Record<string, string>, rejectUnauthorized: options.rejectUnauthorized ?? true });
      let opened = false;
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body = (body + c.toString('utf8')).slice(0, 2048)));
        res.on('end', () => session.close({ reason: 'apiserver_refused', error: `provider apiserver answered ${res.statusCode}: ${statusMessage(body)}` }));
      });
      ws.on('open', () => {
        opened = true;
        session.accept();
        ready(ws);
      });
      ws.on('error', (error) => {
        log.warn({ err: error }, 'provider apiserver websocket failed');
        if (!opened) session.close({ reason: 'apiserver_error', error: 'provider apiserver unreachable' });
        else session.close({ reason: 'apiserver_error', error: String(error.message).slice(0, 256) });
      });
    });
  }

  private async apiRequest(path: string): Promise<import('node:https').RequestOptions & { path: string }> {
    const cluster = this.options.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server);
    const options: import('node:https').RequestOptions & { path: string } = {
      hostname: url.hostname,
      port: url.port || 443,
      path,
      method: 'GET',
      headers: {},
    };
    await this.options.kubeConfig.applyToHTTPSOptions(options);
    return options;
  }
}

function forbidden(verb: string, pool: string | undefined): string {
  return `the provider's owner does not allow ${verb} job pods of pool ${pool ?? '(unknown node)'} (refused by the provider agent)`;
}

function statusMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body;
  }
}

// The exec error channel carries a metav1.Status: Success, or NonZeroExitCode with the code.
function exitOf(data: Buffer): { hasExitCode: boolean; exitCode: number; error: string } {
  try {
    const status = JSON.parse(data.toString('utf8')) as { status?: string; message?: string; reason?: string; details?: { causes?: { reason?: string; message?: string }[] } };
    if (status.status === 'Success') return { hasExitCode: true, exitCode: 0, error: '' };
    const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
    if (code !== undefined && /^\d+$/.test(code)) return { hasExitCode: true, exitCode: Number(code), error: '' };
    // Runtimes that report a failed wait as an error (kwok does) still name the status.
    const fromMessage = /exit status (\d+)\s*$/.exec(status.message ?? '');
    if (fromMessage) return { hasExitCode: true, exitCode: Number(fromMessage[1]), error: '' };
    return { hasExitCode: false, exitCode: 0, error: (status.message ?? 'exec failed').slice(0, 512) };
  } catch {
    return { hasExitCode: false, exitCode: 0, error: 'exec status unreadable' };
  }
}
