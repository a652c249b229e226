import { describe, expect, it } from 'vitest';
import { SeededRandom } from './testing/seeded-random.js';
import { validAgentMessage } from './testing/agent-messages.js';
import { validateAgentMessage } from './validate.js';

// A hostile agent's egress claims are checked at the hub's edge like every other field: a bad one
// refuses the message, and the refusal never echoes the peer's value.

function inventoryWith(egress: unknown) {
  const rng = new SeededRandom(7);
  let message = validAgentMessage(rng, 1, 'inventory');
  while ((message.body?.value as { pools: unknown[] }).pools.length === 0) message = validAgentMessage(rng, 1, 'inventory');
  (message.body!.value as unknown as { pools: { egress?: unknown }[] }).pools[0]!.egress = egress;
  return validateAgentMessage(message, 0);
}

describe('pool egress at the edge', () => {
  it('accepts the four modes', () => {
    for (const egress of [{ mode: 'none', destinations: [] }, { mode: 'dns', destinations: [] }, { mode: 'internet', destinations: [] }, { mode: 'cidrs', destinations: [{ cidr: '203.0.113.0/24', ports: [443] }] }]) {
      expect(inventoryWith(egress).ok, JSON.stringify(egress)).toBe(true);
    }
  });

  it.each([
    ['an unknown mode', { mode: 'script', destinations: [] }, 'bad_format'],
    ['cidrs without destinations', { mode: 'cidrs', destinations: [] }, 'bad_format'],
    ['a malformed CIDR', { mode: 'cidrs', destinations: [{ cidr: '999.1.1.1/8', ports: [] }] }, 'bad_format'],
    ['port 0', { mode: 'cidrs', destinations: [{ cidr: '10.0.0.0/8', ports: [0] }] }, 'bad_format'],
    ['a huge mode', { mode: 'x'.repeat(10_000), destinations: [] }, 'too_long'],
    ['too many destinations', { mode: 'cidrs', destinations: Array.from({ length: 65 }, () => ({ cidr: '10.0.0.0/8', ports: [] })) }, 'too_many_items'],
  ])('refuses %s', (_name, egress, reason) => {
    const result = inventoryWith(egress);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.reason).toBe(reason);
      expect(result.error.detail).not.toMatch(/script|999|xxxx/);
    }
  });
});
