// The consumer-facing access API, served by the hub as an aggregated API (APIService
// v1alpha1.access.fedgpu.io): the hub cluster's apiserver authenticates the user and proxies here;
// we check the identity came from it (identity.ts), ask RBAC with a SubjectAccessReview
// (authorize.ts), find the attempt's provider, and open a tunnel session to that provider's agent.
//
//   GET  .../namespaces/NS/gpujobs/NAME/log          text, streamed (follow)
//   POST .../namespaces/NS/gpujobs/NAME/exec         Upgrade: fedgpu.tunnel.v1, framed (frames.ts)
//   POST .../namespaces/NS/gpujobs/NAME/portforward  Upgrade: fedgpu.tunnel.v1, raw bytes, one connection
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GPUJOB_PLURAL, GROUP, VERSION, type GpuJob } from '../../api/types.js';
import { TunnelKind, type TunnelClose, type TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import type { TunnelSession } from '../../protocol/tunnel/mux.js';
import { AccessAuthorizer, verbOf } from './authorize.js';
import { encodeFrame, FrameDecoder, STATUS, STDIN } from './frames.js';
import { loadRequestHeaderConfig, userOf, type RequestHeaderConfig } from './identity.js';
import { UserSessions } from './user-sessions.js';
import { ACCESS_PREFIX, ACCESS_UPGRADE, apiResourceList, BadRequest, parseOptions, parseTarget, statusBody, type AccessOptions, type AccessTarget } from './request.js';

export interface AccessServerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  /** Why this replica cannot serve access now (an HA stand-by); undefined when it can. */
  standby?: () => string | undefined;
  /** Sessions one user may hold open to one provider (default 16, a quarter of an agent stream's 64). */
  maxSessionsPerUser?: number;
  /** Opens a tunnel session to a provider's agent (MarketServer.openTunnel). */
  openTunnel(provider: string, open: TunnelOpen): TunnelSession | undefined;
}

class HttpError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message);
  }
}

// Refusals from the agent, as HTTP answers.
const closeStatus: Record<string, [number, string]> = {
  not_attempt_pod: [404, 'NotFound'],
  exec_disabled: [403, 'Forbidden'],
  port_forward_disabled: [403, 'Forbidden'],
  attempt_not_running: [409, 'Conflict'],
  too_many_sessions: [429, 'TooManyRequests'],
  open_timeout: [504, 'GatewayTimeout'],
};

/** How long a provider has to answer a session the hub opens (keepalives hold it open meanwhile). */
const OPEN_TIMEOUT_MS = 60_000;
/** Idle time before TCP keepalive probes a consumer connection. */
const TCP_KEEPALIVE_MS = 30_000;

export class AccessApiServer {
  private server: Server | undefined;
  private requestHeader: RequestHeaderConfig | undefined;
  private readonly authorizer: AccessAuthorizer;
  private readonly jobs: CustomObjectsApi;
  private readonly userSessions: UserSessions;

  constructor(private readonly options: AccessServerOptions) {
    this.userSessions = new UserSessions(options.maxSessionsPerUser);
    this.authorizer = new AccessAuthorizer(options.kubeConfig);
    this.jobs = options.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async start(): Promise<number> {
    const requestHeader = await loadRequestHeaderConfig(this.options.kubeConfig);
    this.requestHeader = requestHeader;
    const server = createServer({
      cert: this.options.certPem,
      key: this.options.keyPem,
      ca: requestHeader.caPem,
      requestCert: true,
      rejectUnauthorized: false,
    });
    // A client that vanishes without a FIN (its node lost power, a NAT forgot it) is found by TCP
    // keepalive: its sessions are kept open only while the connection lives.
    server.on('secureConnection', (socket: TLSSocket) => socket.setKeepAlive(true, TCP_KEEPALIVE_MS));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : this.options.port);
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // --- plain requests: discovery and logs ----------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'https://hub');
      if (url.pathname === '/healthz' || url.pathname === '/readyz' || url.pathname === '/livez') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      if (url.pathname === ACCESS_PREFIX) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(apiResourceList()));
        return;
      }
      const target = parseTarget(url.pathname);
      if (!target) throw new HttpError(404, 'NotFound', `no such path ${url.pathname.slice(0, 200)}`);
      if (target.subresource !== 'log' || req.method !== 'GET') {
        throw new HttpError(405, 'MethodNotAllowed', `${target.subresource} needs POST with Upgrade: ${ACCESS_UPGRADE}; log needs GET`);
      }
      const session = await this.openSession(req, target, parseOptions('log', url.searchParams));
      // The client may have gone while the session opened (its close event is past): end it now,
      // or it would stream into nothing and hold one of the provider's sessions.
      if (req.socket.destroyed) {
        session.close({ reason: 'client_gone' });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      session.onData = (_channel, data) => {
        res.write(data, () => session.delivered(data.byteLength));
      };
      session.onClose = (close) => {
        if (close.error) res.write(`\n[fedgpu: log ended: ${close.error}]\n`);
        res.end();
      };
      res.on('close', () => session.close({ reason: 'client_gone' }));
    } catch (error) {
      this.answerError(res, error);
    }
  }

  private answerError(res: ServerResponse, error: unknown): void {
    const e = asHttpError(error, this.options.logger);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(e.code, { 'content-type': 'application/json' }).end(statusBody(e.code, e.reason, e.message));
  }

  // --- upgraded connections: exec and port-forward -------------------------------------------

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    try {
      const url = new URL(req.url ?? '/', 'https://hub');
      const target = parseTarget(url.pathname);
      if (!target || target.subresource === 'log') throw new HttpError(404, 'NotFound', 'only exec and portforward are upgraded');
      if (req.method !== 'POST') throw new HttpError(405, 'MethodNotAllowed', `${target.subresource} needs POST`);
      if ((req.headers.upgrade ?? '').toLowerCase() !== ACCESS_UPGRADE) throw new HttpError(400, 'BadRequest', `Upgrade must be ${ACCESS_UPGRADE}`);
      const options = parseOptions(target.subresource, url.searchParams);
      const session = await this.openSession(req, target, options);
      if (socket.destroyed) {
        session.close({ reason: 'client_gone' });
        return;
      }
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${ACCESS_UPGRADE}\r\n\r\n`);
      if (target.subresource === 'exec') this.pipeExec(session, socket, head);
      else this.pipeRaw(session, socket, head);
    } catch (error) {
      const e = asHttpError(error, this.options.logger);
      const body = statusBody(e.code, e.reason, e.message);
      socket.end(`HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
  }

  private pipeExec(session: TunnelSession, socket: Duplex, head: Buffer): void {
    const decoder = new FrameDecoder();
    const onBytes = (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        session.close({ reason: 'bad_frame', error: String(error) });
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (f.channel !== STDIN) continue;
        socket.pause();
        session.write(STDIN, f.payload).then(() => socket.resume(), () => socket.destroy());
      }
    };
    session.onData = (channel, data) => {
      socket.write(encodeFrame(channel, data), () => session.delivered(data.byteLength));
    };
    session.onClose = (close: TunnelClose) => {
      const status = close.hasExitCode ? { exitCode: close.exitCode } : close.error ? { error: close.error } : { exitCode: 0 };
      socket.end(encodeFrame(STATUS, Buffer.from(JSON.stringify(status))));
    };
    socket.on('data', onBytes);
    socket.on('close', () => session.close({ reason: 'client_gone' }));
    if (head.byteLength > 0) onBytes(head);
  }

  private pipeRaw(session: TunnelSession, socket: Duplex, head: Buffer): void {
    session.onData = (_channel, data) => {
      socket.write(data, () => session.delivered(data.byteLength));
    };
    session.onClose = () => socket.end();
    const onBytes = (chunk: Buffer) => {
      socket.pause();
      session.write(0, chunk).then(() => socket.resume(), () => socket.destroy());
    };
    socket.on('data', onBytes);
    socket.on('end', () => session.end());
    socket.on('close', () => session.close({ reason: 'client_gone' }));
    if (head.byteLength > 0) onBytes(head);
  }

  // --- the common path: who, may they, which attempt, open -----------------------------------

  private async openSession(req: IncomingMessage, target: AccessTarget, options: AccessOptions): Promise<TunnelSession> {
    const user = userOf(req, this.requestHeader as RequestHeaderConfig);
    if ('error' in user) throw new HttpError(401, 'Unauthorized', user.error);
    // Agents stream to the leader only: a stand-by has no tunnel to open, and says so.
    const standby = this.options.standby?.();
    if (standby) throw new HttpError(503, 'ServiceUnavailable', standby);
    const decision = await this.authorizer.check(user, target.namespace, target.name, target.subresource);
    if (!decision.allowed) throw new HttpError(403, 'Forbidden', decision.message);

    let job: GpuJob;
    try {
      job = (await this.jobs.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: target.namespace, plural: GPUJOB_PLURAL, name: target.name })) as GpuJob;
    } catch (error) {
      if ((error as { code?: number }).code === 404) throw new HttpError(404, 'NotFound', `gpujob ${JSON.stringify(target.name)} not found in namespace ${JSON.stringify(target.namespace)}`);
      throw error;
    }
    const attempts = job.status?.attempts ?? [];
    if (target.subresource !== 'log') {
      // The Secrets the running attempt was sent (spec.secrets may have been edited since: emptied,
      // or swapped for one the user may read), and those the spec names now.
      const sent = attempts.filter((a) => !a.endTime).flatMap((a) => a.secretNames ?? []);
      const secrets = [...new Set([...sent, ...(job.spec?.secrets ?? []).map((s) => s.name)])];
      const reach = await this.authorizer.checkSecrets(user, target.namespace, secrets, target.subresource);
      if (!reach.allowed) throw new HttpError(403, 'Forbidden', reach.message);
    }
    if (attempts.length === 0) throw new HttpError(409, 'Conflict', `gpujob ${target.name} has not been placed on a provider yet`);
    const latest = attempts.reduce((a, b) => (b.epoch > a.epoch ? b : a));
    const attempt = options.attempt === undefined ? latest : attempts.find((a) => a.epoch === options.attempt);
    if (!attempt) throw new HttpError(404, 'NotFound', `gpujob ${target.name} has no attempt ${options.attempt} (attempts: ${attempts.map((a) => a.epoch).join(', ')})`);
    if (target.subresource !== 'log' && (attempt !== latest || (attempt.outcome && attempt.outcome !== 'Running'))) {
      throw new HttpError(409, 'Conflict', `attempt ${attempt.epoch} is not running (${attempt.outcome ?? 'unknown'}); ${verbOf[target.subresource]} ${target.subresource} needs a running attempt`);
    }
    const uid = job.metadata?.uid;
    if (!uid) throw new HttpError(500, 'InternalError', 'gpujob has no uid');

    const kind = { log: TunnelKind.TUNNEL_KIND_LOG, exec: TunnelKind.TUNNEL_KIND_EXEC, portforward: TunnelKind.TUNNEL_KIND_PORT_FORWARD }[target.subresource];
    const refusal = this.userSessions.refusal(attempt.provider, user.user);
    if (refusal) throw new HttpError(429, 'TooManyRequests', refusal);
    const session = this.options.openTunnel(attempt.provider, {
      kind,
      jobUid: uid,
      epoch: attempt.epoch,
      replica: options.replica,
      container: options.container,
      initialWindow: 0,
      follow: options.follow,
      tailLines: options.tailLines,
      sinceSeconds: options.sinceSeconds,
      timestamps: options.timestamps,
      command: options.command,
      stdin: options.stdin,
      tty: options.tty,
      port: options.port,
    });
    if (!session) throw new HttpError(503, 'ServiceUnavailable', `provider ${attempt.provider} is not connected to the hub, or has too many open sessions`);
    this.userSessions.track(attempt.provider, user.user, session.ended);
    // Open for as long as the consumer's connection is, as kubectl's are: a followed log may be
    // quiet for hours, a shell idle, a port-forward waiting for its next request. The connection's
    // end closes the session: here while it opens, then in the caller.
    session.keepAlive();
    const clientGone = () => session.close({ reason: 'client_gone' });
    req.socket.once('close', clientGone);
    // The keepalives hold the session open: a provider that never answers it is given up on.
    const openTimer = setTimeout(() => session.close({ reason: 'open_timeout', error: `no answer within ${OPEN_TIMEOUT_MS / 1000} s` }), OPEN_TIMEOUT_MS);
    this.options.logger.info({ user: user.user, job: `${target.namespace}/${target.name}`, attempt: attempt.epoch, provider: attempt.provider, subresource: target.subresource }, 'access session');
    try {
      await session.opened;
    } catch (error) {
      const close = (error as { close?: TunnelClose }).close;
      const [code, reason] = closeStatus[close?.reason ?? ''] ?? [502, 'BadGateway'];
      throw new HttpError(code, reason, `provider ${attempt.provider} refused: ${close?.error ?? String(error)}`);
    } finally {
      clearTimeout(openTimer);
      req.socket.off('close', clientGone);
    }
    return session;
  }
}

function asHttpError(error: unknown, logger: Logger): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof BadRequest) return new HttpError(400, 'BadRequest', error.message);
  logger.error({ err: error }, 'access request failed');
  return new HttpError(500, 'InternalError', 'the hub could not serve the request');
}
