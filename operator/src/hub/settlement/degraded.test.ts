import { createServer } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { requeueDelay } from '../../runtime/action.js';
import { HubSettlement, type HubSettlementOptions } from './leader-task.js';
import { settlementJob } from './testing/fixtures.js';

// A hub whose chain does not answer at start-up (a loopback port with nothing listening) starts
// degraded instead of failing; what it does meanwhile. The recovery itself, with anvil behind a
// proxy, is in test/e2e/settlement.test.ts.

async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const options = async (over: Partial<HubSettlementOptions> = {}): Promise<HubSettlementOptions> => ({
  rpcUrl: await deadUrl(),
  marketAddress: '0x' + 'cd'.repeat(20),
  settlerKey: '0x' + '42'.repeat(32),
  minStake: 1n,
  slashAmount: 1n,
  defaultHold: 1n,
  ...over,
});

describe('HubSettlement.start with the chain away', () => {
  it('starts degraded: jobs wait for the chain, deleted jobs keep their finalizer, receipts are kept', async () => {
    const settlement = await HubSettlement.start(await options(), pino({ level: 'silent' }));
    try {
      expect(settlement.isConnected).toBe(false);
      expect(settlement.degradedBecause).toMatch(/cannot reach the chain at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
      expect((await settlement.fundingCheck(settlementJob())).wait).toMatch(/^waiting for the settlement chain: cannot reach the chain/);
      expect(requeueDelay(await settlement.release(settlementJob({ deletedAt: Date.now() })))).toBe(5_000);
      // Without --chain-id nobody knows what agents must sign for yet.
      expect(settlement.domainInfo).toBeUndefined();
    } finally {
      settlement.close();
    }
  });

  it('knows the receipt domain from --chain-id while the chain is away', async () => {
    const settlement = await HubSettlement.start(await options({ chainId: 31337 }), pino({ level: 'silent' }));
    try {
      expect(settlement.domainInfo).toEqual({ chainId: 31337, marketAddress: '0x' + 'cd'.repeat(20) });
      await settlement.domainKnown(); // resolves at once
    } finally {
      settlement.close();
    }
  });

  it('the leader task waits for the chain and ends when its signal aborts', async () => {
    const settlement = await HubSettlement.start(await options(), pino({ level: 'silent' }));
    try {
      const stop = new AbortController();
      const running = settlement.run(stop.signal);
      stop.abort();
      await expect(running).resolves.toBeUndefined();
    } finally {
      settlement.close();
    }
  });
});
