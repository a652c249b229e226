// A consumer must not be able to make its provider look lost. Log, exec and port-forward bytes share
// the agent's stream with its heartbeats, so on a slow uplink a consumer pulling data holds the
// next heartbeat back; counted only at the heartbeat, that silence turned the provider NotReady
// after providerLostAfter, and its attempts were blamed on it (and slashed). Against a real
// kube-apiserver and real gRPC/mTLS: every message the agent sends counts as hearing from it.
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TunnelKind, TunnelOpen } from '../../operator/src/gen/proto/fedgpu/v1/market.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { RawStream, registerRaw } from '../support/raw-stream.js';
import { startRegistryHub, type RegistryHub } from '../support/registry-hub.js';

const kubeconfig = inject('kubeconfig');
const LOST_AFTER_MS = 3_000;
const HEARTBEAT_MS = 200;

let hub: RegistryHub;
const lost = new Set<string>();

beforeAll(async () => {
  hub = await startRegistryHub(kubeconfig, { providerLostAfterMs: LOST_AFTER_MS, onProviderLost: (name) => void lost.add(name) });
});

afterAll(async () => {
  await hub?.stop();
});

const readyOf = (name: string) => hub.providers.get(name)?.status?.conditions?.find((c) => c.type === 'Ready');

interface Agent {
  raw: RawStream;
  name: string;
  heartbeats?: NodeJS.Timeout;
}

async function connectAgent(): Promise<Agent> {
  const raw: RawStream = hub.raw();
  const { providerName } = await registerRaw(raw, Wallet.createRandom());
  raw.send({ $case: 'inventory', value: { pools: [], unisolatedNamespaces: [] } });
  const agent: Agent = { raw, name: providerName };
  agent.heartbeats = setInterval(() => raw.send({ $case: 'heartbeat', value: { sentAtUnixMs: Date.now(), pongFor: 0, bandwidthProbeResults: [] } }), HEARTBEAT_MS);
  return agent;
}

describe('provider liveness while tunnel data holds heartbeats back', () => {
  it('keeps a provider Ready while its agent streams a consumer its logs without heartbeats, and loses it once nothing arrives', async () => {
    const [streaming, silentAgent, steady] = [await connectAgent(), await connectAgent(), await connectAgent()];
    const agents = [streaming, silentAgent, steady];
    let data: NodeJS.Timeout | undefined;
    // The hub checks heartbeats every second; a check held up for half of providerLostAfter would
    // give everyone a fresh grace (registry.ts), so this one runs on a steady short period.
    const checks = setInterval(() => void hub.registry.checkHeartbeats(), 250);
    try {
      await waitFor('every provider Ready', async () => (agents.every((a) => readyOf(a.name)?.status === 'True') ? true : undefined), { timeoutMs: 30_000 });

      // A consumer follows a log through the hub; the agent answers with data only (its heartbeats
      // stuck behind it on the link, as on a slow uplink).
      const session = hub.server.openTunnel(streaming.name, TunnelOpen.fromPartial({ kind: TunnelKind.TUNNEL_KIND_LOG, jobUid: 'job-uid', epoch: 1, follow: true, tailLines: -1 }));
      expect(session).toBeDefined();
      let received = 0;
      session!.onData = (_channel, bytes) => {
        received += bytes.byteLength;
        session!.delivered(bytes.byteLength);
      };
      const open = await streaming.raw.next('tunnel');
      expect(open.frame?.$case).toBe('open');
      streaming.raw.send({ $case: 'tunnel', value: { sessionId: open.sessionId, frame: { $case: 'opened', value: { initialWindow: 64 * 1024 } } } });
      await session!.opened;
      const line = Buffer.from('step 1000 loss 0.123\n'.repeat(20));
      data = setInterval(() => streaming.raw.send({ $case: 'tunnel', value: { sessionId: open.sessionId, frame: { $case: 'data', value: { channel: 0, data: line } } } }), 250);

      // Both go quiet on heartbeats at the same moment; only one keeps sending anything.
      clearInterval(streaming.heartbeats);
      clearInterval(silentAgent.heartbeats);
      const quietSince = Date.now();

      await waitFor('the silent provider lost', async () => (lost.has(silentAgent.name) ? true : undefined), { timeoutMs: LOST_AFTER_MS + 10_000 });
      expect(Date.now() - quietSince).toBeGreaterThanOrEqual(LOST_AFTER_MS);
      expect(received).toBeGreaterThan(0);
      // Before: lost in the same check (no heartbeat for providerLostAfter), blamed for its attempts.
      expect(lost.has(streaming.name)).toBe(false);
      expect(hub.registry.heartbeatAgeMs(streaming.name)!).toBeLessThan(LOST_AFTER_MS);
      await waitFor('the silent provider NotReady in its status', async () => (readyOf(silentAgent.name)?.status === 'False' ? true : undefined), { timeoutMs: 10_000 });
      expect(readyOf(silentAgent.name)?.reason).toBe('HeartbeatMissed');
      expect(readyOf(streaming.name)?.status).toBe('True');
      expect(lost.has(steady.name)).toBe(false);

      // Once nothing at all arrives, the same provider is lost as any other.
      clearInterval(data);
      await waitFor('the streaming provider lost once its data stops', async () => (lost.has(streaming.name) ? true : undefined), { timeoutMs: LOST_AFTER_MS + 10_000 });
      expect(lost.has(steady.name)).toBe(false);
    } finally {
      clearInterval(checks);
      clearInterval(data);
      for (const a of agents) {
        clearInterval(a.heartbeats);
        a.raw.end();
      }
    }
  });
});
