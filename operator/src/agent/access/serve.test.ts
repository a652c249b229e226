import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TunnelKind, type TunnelFrame, type TunnelOpen } from '../../gen/proto/fedgpu/v1/market.js';
import { TunnelMux } from '../../protocol/tunnel/mux.js';
import { RetainedLogs } from './retained-logs.js';
import { AccessServer, type AccessPolicy } from './serve.js';

// Refusals happen before the provider apiserver is called: the kubeconfig here points nowhere.
function agentEnd(policy: AccessPolicy) {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
  const retained = new RetainedLogs({ dir: mkdtempSync(join(tmpdir(), 'fedgpu-retained-')), maxBytesPerReplica: 1024, retentionMs: 60_000 });
  retained.keep('job-a', 1, 0, Buffer.from('line 1\nline 2\nline 3\n'));
  const access = new AccessServer({
    kubeConfig: kc,
    logger: pino({ level: 'silent' }),
    policy,
    retained,
    attempt: (jobUid, epoch) => (jobUid === 'job-a' && epoch === 2 ? { replicas: 1, containers: [['main']], live: true, namespace: 'fedgpu-jobs-ml-0123abcd' } : undefined),
  });
  const sent: TunnelFrame[] = [];
  const mux = new TunnelMux({ transport: { send: (f, flushed) => { sent.push(f); flushed(); return true; } }, onOpen: (s, o) => access.serve(s, o) });
  let id = 1;
  const open = (o: Partial<TunnelOpen>) => {
    const sessionId = id++;
    mux.onFrame({ sessionId, frame: { $case: 'open', value: { kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'job-a', epoch: 2, replica: 0, container: '', initialWindow: 65536, follow: false, tailLines: -1, sinceSeconds: 0, timestamps: false, command: [], stdin: false, tty: false, port: 0, ...o } } });
    return sent.filter((f) => f.sessionId === sessionId);
  };
  return { open };
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
    // exec into an attempt that is not running here is refused even though its log is kept.
    expect(closeReason(open({ epoch: 1, kind: TunnelKind.TUNNEL_KIND_EXEC, command: ['sh'] }))).toMatchObject({ value: { reason: 'not_attempt_pod' } });
  });
});
