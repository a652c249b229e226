import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { REJECT_REASONS } from '../core/scheduling/filter.js';
import { rejectReasons } from '../protocol/edge-error.js';
import { AGENT_RECONNECT_REASONS, MARKET_REJECT_REASONS, SCHEDULER_REJECT_REASONS } from './labels.js';
import { agentReconnectReason, marketRejectionLabel, schedulerRejectionLabel } from './reason-maps.js';

describe('reason maps', () => {
  it('folds every edge reason into the contract labels, or leaves it uncounted', () => {
    for (const reason of rejectReasons) {
      const label = marketRejectionLabel(reason);
      if (label !== undefined) expect(MARKET_REJECT_REASONS).toContain(label);
    }
    // Life-cycle ends are not refusals.
    for (const reason of ['stream_replaced', 'server_shutdown', 'not_leader', 'internal'] as const) expect(marketRejectionLabel(reason)).toBeUndefined();
  });

  it('maps every pool filter of the scheduler to a contract label (Excluded is the job, not the pool)', () => {
    const labels = new Set<string>();
    for (const reason of REJECT_REASONS) {
      const label = schedulerRejectionLabel(reason);
      if (reason === 'Excluded') expect(label).toBeUndefined();
      else labels.add(label as string);
    }
    expect([...labels].sort()).toEqual([...SCHEDULER_REJECT_REASONS].sort());
    expect(schedulerRejectionLabel('InvalidRequest')).toBeUndefined();
    expect(schedulerRejectionLabel('toString')).toBeUndefined();
  });

  it('maps every gRPC status to one of the four reconnect reasons', () => {
    for (const code of Object.values(status).filter((v): v is number => typeof v === 'number')) {
      expect(AGENT_RECONNECT_REASONS).toContain(agentReconnectReason(code));
    }
  });
});
