import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { attemptEscrowId } from '../../chain/attempt-escrow.js';
import type { SettlementChain } from './chain.js';
import { EscrowFunding } from './funding.js';
import { ended, openRecord, settlementJob } from './testing/fixtures.js';

// The funding check's wait for an earlier escrow's record, on an in-memory chain that answers only
// escrow reads (anything else it is asked throws, and the check reports that as a chain wait).

const HUB_KEY = '0x00000000000000000000000000000000000000a1';
const OTHER_KEY = '0x00000000000000000000000000000000000000b2';

function fundingOn(escrows: Map<string, { state: string; opener: string }>) {
  const chain = {
    settlerAddress: HUB_KEY,
    isOwnKey: (opener: string) => opener.toLowerCase() === HUB_KEY,
    escrow: async (id: string) => {
      const e = escrows.get(id);
      return { consumer: '0x00000000000000000000000000000000000000c3', amount: 10n, state: e?.state ?? 'None', provider: '0x00000000000000000000000000000000000000d4', expiresAt: 0n, opener: e?.opener ?? '0x0000000000000000000000000000000000000000' };
    },
  } as unknown as SettlementChain;
  return new EscrowFunding({
    chain,
    defaultHold: 10n,
    consumerOf: () => ({ wallet: '0x00000000000000000000000000000000000000c3', namespaceUid: 'ns-uid' }),
    hubId: 'test',
    escrowLifetimeSeconds: 3600,
    walletOf: () => undefined,
    wake: () => {},
    logger: pino({ level: 'silent' }),
  });
}

const candidate = { provider: 'gp-2', wallet: '0x00000000000000000000000000000000000000d4', pricePerGpuHour: '2.4' };

describe('EscrowFunding: an earlier escrow not yet recorded', () => {
  // Attempt 1 was reclaimed a moment after its escrow opened; its record waits for confirmations.
  const retried = settlementJob({ status: { attempts: [ended(1, 'Reclaimed', 'owner-reclaim')] } });
  const first = attemptEscrowId(retried.metadata.uid!, 1);

  it("waits before opening the next escrow: the hold would not count the earlier one and the job could lock its whole budget twice", async () => {
    const verdict = await fundingOn(new Map([[first, { state: 'Open', opener: HUB_KEY }]])).check(retried, candidate);
    expect(verdict).toEqual({ wait: "waiting for escrow: the escrow of attempt 1 is on chain but not yet in this job's status; attempt 2's hold counts it once it is" });
  });

  it('counts the earlier escrow once it is recorded', async () => {
    // Recorded open with the whole budget (10 credits): nothing is left for attempt 2 to hold.
    const recorded = settlementJob({ status: { attempts: [ended(1, 'Reclaimed', 'owner-reclaim')], settlement: { attempts: [openRecord(1)] } } });
    const verdict = await fundingOn(new Map([[first, { state: 'Open', opener: HUB_KEY }]])).check(recorded, candidate);
    expect(verdict.wait).toMatch(/^waiting: the job's budget of 10 credits is spent \(10 committed by earlier attempts\)/);
  });

  it('goes on when no earlier escrow was opened, or another settler opened it (not this hub\'s to record)', async () => {
    for (const escrows of [new Map(), new Map([[first, { state: 'Open', opener: OTHER_KEY }]])]) {
      const verdict = await fundingOn(escrows).check(retried, candidate);
      // Past the wait, the check goes on to the consent and funds on chain, which this chain does not fake.
      expect(verdict.wait).toMatch(/^waiting for the chain: /);
    }
  });
});
