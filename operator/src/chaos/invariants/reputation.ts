import type { ChaosHistory } from '../history.js';
import type { Violation } from './violation.js';

// DESIGN §6: anyone can recompute a provider's reputation from chain events; `fedgpu reputation
// --from-chain` at the hub's block must give the hub's numbers exactly.

export function reputationAgrees(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  for (const r of h.reputation) {
    const v = (message: string) => out.push({ invariant: 'reputation-from-chain', message: `${r.provider} (${r.wallet}): ${message}`, faults: [] });
    if (!r.status) v('no reputation in GpuProvider status');
    else if (!r.fromChain) v('fedgpu reputation --from-chain gave nothing');
    else {
      for (const k of ['score', 'successes', 'failures', 'asOfBlock'] as const) {
        if (r.status[k] !== r.fromChain[k]) v(`${k} ${r.status[k]} in status, ${r.fromChain[k]} from chain`);
      }
    }
  }
  return out;
}
