import { status } from '@grpc/grpc-js';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from './agent-metrics.js';
import { parseExposition, series, valueOf } from './testing/exposition.js';

const pod = (phase: string): V1Pod => ({ metadata: { name: phase }, status: { phase } });

describe('AgentMetrics', () => {
  it('follows the stream: connected while registered, restarts counted by bounded reason', async () => {
    const m = new AgentMetrics({ processMetrics: false, version: '1.2.3' });
    let s = parseExposition(await m.text());
    expect(valueOf(s, 'fedgpu_agent_connected')).toBe(0);
    expect(series(s, 'fedgpu_agent_reconnects_total').map((x) => [x.labels.reason, x.value])).toEqual([
      ['eof', 0],
      ['unavailable', 0],
      ['unauthenticated', 0],
      ['heartbeat_timeout', 0],
    ]);
    m.onConnected();
    expect(valueOf(parseExposition(await m.text()), 'fedgpu_agent_connected')).toBe(1);
    m.onDisconnected(status.UNAVAILABLE);
    m.onDisconnected(status.ABORTED); // stream replaced: still "the hub went away" to the agent
    m.onDisconnected(status.PERMISSION_DENIED);
    m.onDisconnected(status.DEADLINE_EXCEEDED);
    m.onDisconnected(status.OK);
    s = parseExposition(await m.text());
    expect(valueOf(s, 'fedgpu_agent_connected')).toBe(0);
    expect(Object.fromEntries(series(s, 'fedgpu_agent_reconnects_total').map((x) => [x.labels.reason, x.value]))).toEqual({
      eof: 1,
      unavailable: 2,
      unauthenticated: 1,
      heartbeat_timeout: 1,
    });
    expect(valueOf(s, 'fedgpu_build_info', { version: '1.2.3' })).toBe(1);
  });

  it('reads idle GPUs and job pods at scrape time', async () => {
    const m = new AgentMetrics({ processMetrics: false });
    let idle = new Map([['NVIDIA-H100-80GB-HBM3', 5]]);
    m.observeAgent({ idleGpus: () => idle, jobPods: () => [pod('Running'), pod('Running'), pod('Succeeded'), pod('Unknown')] });
    let s = parseExposition(await m.text());
    expect(valueOf(s, 'fedgpu_agent_gpus_idle', { product: 'NVIDIA-H100-80GB-HBM3' })).toBe(5);
    expect(Object.fromEntries(series(s, 'fedgpu_agent_pods').map((x) => [x.labels.phase, x.value]))).toEqual({
      Pending: 0,
      Running: 2,
      Succeeded: 1,
      Failed: 0,
    });
    idle = new Map([['NVIDIA-GeForce-RTX-4090', 1]]);
    s = parseExposition(await m.text());
    expect(series(s, 'fedgpu_agent_gpus_idle').map((x) => x.labels.product)).toEqual(['NVIDIA-GeForce-RTX-4090']);
  });
});
