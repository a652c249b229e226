import { mkdtempSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { TunnelKind, type TunnelFrame, type TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import { TunnelMux } from '../../protocol/tunnel/mux.js';
import { createCa, issueCert } from '../../tls/certs.js';
import { WebSocketServer } from 'ws';
import { RetainedLogs } from './retained-logs.js';
import { AccessServer, type AccessPolicy } from './serve.js';

// Refusals happen before the provider apiserver is called: the kubeconfig here points nowhere.
const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX = 'NVIDIA-GeForce-RTX-4090';

function agentEnd(policy: AccessPolicy | ((pool: string | undefined) => AccessPolicy), apiserver: { server: string; caPem?: string } = { server: 'https://127.0.0.1:1' }) {
  const kc = new KubeConfig();
  const cluster = { name: 'c', server: apiserver.server, ...(apiserver.caPem ? { caData: Buffer.from(apiserver.caPem).toString('base64') } : {}) };
  kc.loadFromOptions({ clusters: [cluster], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
  const retained = new RetainedLogs({ dir: mkdtempSync(join(tmpdir(), 'fedgpu-retained-')), maxBytesPerReplica: 1024, retentionMs: 60_000 });
  retained.keep('job-a', 1, 0, Buffer.from('line 1\nline 2\nline 3\n'), 'main');
  retained.keep('job-old', 1, 0, Buffer.from('kept by an older agent\n'));
  const access = new AccessServer({
    kubeConfig: kc,
    logger: pino({ level: 'silent' }),
    policyFor: typeof policy === 'function' ? policy : () => policy,
    retained,
    // job-a attempt 2 runs in the H100 pool, job-r attempt 1 in the RTX pool.
    attempt: (jobUid, epoch) =>
      jobUid === 'job-a' && epoch === 2
        ? { replicas: 1, containers: [['main']], live: true, namespace: 'fedgpu-jobs-ml-0123abcd', pools: [H100] }
        : jobUid === 'job-r' && epoch === 1
          ? { replicas: 2, containers: [['main'], ['main']], live: true, namespace: 'fedgpu-jobs-ml-0123abcd', pools: [RTX, RTX] }
          : undefined,
  });
  const sent: TunnelFrame[] = [];
  const mux = new TunnelMux({ transport: { send: (f, flushed) => { sent.push(f); flushed(); return true; } }, onOpen: (s, o) => access.serve(s, o) });
  let id = 1;
  const open = (o: Partial<TunnelOpen>) => {
    const sessionId = id++;
    mux.onFrame({ sessionId, frame: { $case: 'open', value: { kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'job-a', epoch: 2, replica: 0, container: '', initialWindow: 65536, follow: false, tailLines: -1, sinceSeconds: 0, timestamps: false, command: [], stdin: false, tty: false, port: 0, ...o } } });
    return sent.filter((f) => f.sessionId === sessionId);
  };
  return { open, sent };
}

const closeReason = (frames: TunnelFrame[]) => frames.find((f) => f.frame?.$case === 'close')?.frame;

describe('agent access server', () => {
  it('refuses pods that are not part of an attempt it runs', () => {
    const { open } = agentEnd({ exec: true, portForward: true });
    expect(closeReason(open({ jobUid: 'job-b' }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
    expect(closeReason(open({ epoch: 3, kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['sh'] }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
    expect(closeReason(open({ replica: 1 }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
    expect(closeReason(open({ container: 'sidecar' }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
  });

  it('refuses exec and port-forward when the owner switched them off', () => {
    const { open } = agentEnd({ exec: false, portForward: false });
    expect(closeReason(open({ kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['sh'] }))).toMatchObject({ value: { reason: 'exec_disabled' } });
    expect(closeReason(open({ kind: TunnelKind.TUNNEL_KIND_PORT_FORWARD, port: 8080 }))).toMatchObject({ value: { reason: 'port_forward_disabled' } });
  });

  it('serves the kept tail of an ended attempt, honouring --tail', () => {
    const { open } = agentEnd({ exec: true, portForward: true });
    const frames = open({ epoch: 1, tailLines: 2 });
    expect(frames.map((f) => f.frame?.$case)).toEqual(['opened', 'data', 'close']);
    const data = frames[1]?.frame;
    expect(data?.$case === 'data' && Buffer.from(data.value.data).toString()).toBe('line 2\nline 3\n');
    // The tail is the main container's: asked by its name it is served, another container's is
    // refused (not answered with the main one's), as is any other name when the tail does not say.
    expect(open({ epoch: 1, container: 'main' }).map((f) => f.frame?.$case)).toEqual(['opened', 'data', 'close']);
    const sidecar = closeReason(open({ epoch: 1, container: 'sidecar' }));
    expect(sidecar?.$case === 'close' && sidecar.value).toMatchObject({ reason: 'not_attempt_pod', error: 'attempt 1 has ended; only its main container\'s log (main) is kept, not "sidecar"\'s' });
    expect(open({ jobUid: 'job-old', epoch: 1, container: 'anything' }).map((f) => f.frame?.$case)).toEqual(['opened', 'data', 'close']);
    // exec into an attempt that is not running here is refused even though its log is kept.
    expect(closeReason(open({ epoch: 1, kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['sh'] }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
  });

  it('a hostile hub cannot get exec or port-forward into a pool whose owner forbids it', async () => {
    // The owner closed the H100 pool only; the hub asks anyway, for a running attempt there.
    const { open, sent } = agentEnd((pool) => (pool === H100 ? { exec: false, portForward: false } : { exec: true, portForward: true }));
    const exec = closeReason(open({ kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['sh', '-c', 'cat /etc/shadow'], stdin: true, tty: true }));
    expect(exec).toEqual({ $case: 'close', value: expect.objectContaining({ reason: 'exec_disabled' }) });
    expect(exec?.$case === 'close' && exec.value.error).toBe(`the provider's owner does not allow exec into job pods of pool ${H100} (refused by the provider agent)`);
    const pf = closeReason(open({ kind: TunnelKind.TUNNEL_KIND_PORT_FORWARD, port: 22 }));
    expect(pf?.$case === 'close' && pf.value).toMatchObject({ reason: 'port_forward_disabled', error: `the provider's owner does not allow port-forward to job pods of pool ${H100} (refused by the provider agent)` });
    // The same agent lets exec through to its apiserver for the RTX pool's attempt (here the
    // apiserver is unreachable, so the session ends with that, not with a refusal), and logs
    // of the closed pool are still served.
    open({ jobUid: 'job-r', epoch: 1, replica: 1, kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['true'] });
    open({ jobUid: 'job-a', epoch: 2 });
    const closes = () => sent.filter((f) => f.frame?.$case === 'close' && f.sessionId > 2);
    await vi.waitFor(() => expect(closes()).toHaveLength(2), { timeout: 10_000 });
    for (const f of closes()) expect(f.frame).toMatchObject({ value: { reason: 'apiserver_error' } });
  });

  it('ends an exec whose stream was cut before the exit status with an error, not exit 0', async () => {
    // A provider apiserver (here a TLS WebSocket server on loopback) that starts the exec, sends
    // some output, then drops the connection without the status frame: the apiserver, kubelet or
    // network went away mid-command. `fedgpu exec job -- train && upload` must not go on.
    const ca = await createCa('serve-test-ca');
    const cert = await issueCert(ca, { commonName: 'apiserver', ipAddresses: ['127.0.0.1'], usages: ['server'] });
    const https = createHttpsServer({ cert: cert.certPem, key: cert.keyPem });
    const wss = new WebSocketServer({ server: https, handleProtocols: (protocols) => [...protocols][0] ?? false });
    wss.on('connection', (ws) => {
      ws.send(Buffer.concat([Buffer.from([1]), Buffer.from('half of the output\n')]), () => setImmediate(() => ws.terminate()));
    });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    try {
      const { open, sent } = agentEnd({ exec: true, portForward: true }, { server: `https://127.0.0.1:${(https.address() as AddressInfo).port}`, caPem: ca.certPem });
      open({ kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['python', 'eval.py'] });
      const close = await vi.waitFor(() => {
        const c = closeReason(sent.filter((f) => f.sessionId === 1));
        if (!c) throw new Error('no close yet');
        return c;
      }, { timeout: 10_000 });
      expect(close).toMatchObject({ $case: 'close', value: { hasExitCode: false } });
      expect(close?.$case === 'close' && close.value.error).toMatch(/^the exec stream to the pod ended without an exit status \(websocket close \d+\)$/);
      // What the pod printed before the cut still reached the hub.
      expect(sent.some((f) => f.frame?.$case === 'data' && Buffer.from(f.frame.value.data).toString() === 'half of the output\n')).toBe(true);
    } finally {
      wss.close();
      https.close();
    }
  });
});
