import { describe, expect, it } from 'vitest';
import { schedule } from './scheduler.js';
import { schedulerConfig } from './config.js';
import { buildSnapshot } from './snapshot.js';
import { H100, job, pool, provider } from '../testing/fixtures.js';
import { isDecision } from '../types.js';

const NOW = Date.UTC(2024, 0, 1, 12);
const config = schedulerConfig();
// A gaming rig's 8 CPU and 32Gi for its one GPU, against a rack's 8 CPU and 64Gi per GPU.
const rig = { hostPerGpu: { cpuMilli: 8_000, memoryMiB: 32 * 1024 } };
const rack = { hostPerGpu: { cpuMilli: 8_000, memoryMiB: 64 * 1024 } };

describe('schedule: CPU and memory per replica against what each GPU brings', () => {
  it('places a replica only where its GPUs bring the CPU and memory it asks, even at a higher price', () => {
    const fleet = [provider('rig', [pool(H100, [8], '1', rig)]), provider('rack', [pool(H100, [8], '3', rack)])];
    const result = schedule(fleet, job(1, 1, { hostPerReplica: { cpuMilli: 4_000, memoryMiB: 48 * 1024 } }), config, NOW);
    expect(isDecision(result) && result.provider).toBe('rack');
    // Two GPUs per replica bring twice as much: the rig fits then, and is cheaper.
    const two = schedule(fleet, job(1, 2, { hostPerReplica: { cpuMilli: 4_000, memoryMiB: 48 * 1024 } }), config, NOW);
    expect(isDecision(two) && two.provider).toBe('rig');
  });

  it('waits with the reason, what each pool gives and what was asked, where none fits', () => {
    const fleet = [provider('rig', [pool(H100, [8], '1', rig)]), provider('rack', [pool(H100, [8], '3', rack)])];
    const result = schedule(fleet, job(1, 1, { hostPerReplica: { cpuMilli: 16_000, memoryMiB: 16 * 1024 } }), config, NOW);
    expect(result).toEqual({
      kind: 'unschedulable',
      reasons: { InsufficientCpuMemory: 2 },
      message: '0/2 providers fit: 2 NVIDIA-H100-80GB-HBM3 gives at most 8 CPU & 64Gi per replica < 16 CPU & 16Gi asked',
    });
  });

  it('follows a share the agent reports anew, on the same pool layout (the snapshot keeps its own copy)', () => {
    const market = buildSnapshot([provider('rig', [pool(H100, [8], '1', rig)])]);
    const ask = job(1, 1, { hostPerReplica: { cpuMilli: 4_000, memoryMiB: 48 * 1024 } });
    expect(isDecision(schedule(market, ask, config, NOW))).toBe(false);
    // The owner's own pods left: each GPU brings more now. Same nodes, so the pool is updated in place.
    market.updateProvider(provider('rig', [pool(H100, [8], '1', rack)]));
    expect(isDecision(schedule(market, ask, config, NOW))).toBe(true);
    market.updateProvider(provider('rig', [pool(H100, [8], '1', rig)]));
    expect(isDecision(schedule(market, ask, config, NOW))).toBe(false);
  });

  it('does not judge a pool whose agent says nothing of it, nor a job that asks nothing', () => {
    const fleet = [provider('old-agent', [pool(H100, [8], '1')])];
    expect(isDecision(schedule(fleet, job(1, 1, { hostPerReplica: { cpuMilli: 512_000, memoryMiB: 4 * 1024 * 1024 } }), config, NOW))).toBe(true);
    expect(isDecision(schedule([provider('rig', [pool(H100, [8], '1', rig)])], job(1, 1, { hostPerReplica: { cpuMilli: 0, memoryMiB: 0 } }), config, NOW))).toBe(true);
  });
});
