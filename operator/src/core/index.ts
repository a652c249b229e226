// The pure core: no I/O, no Kubernetes, no clocks (callers pass `now` in epoch ms). One job per file:
//   types          the scheduler's model (ProviderSnapshot, JobRequest, Decision, Unschedulable)
//   money          decimal credits as bigint with 18 decimals (the ERC-20 scale)
//   availability   owner lending windows and reserved GPUs
//   idle           idle GPUs per node and pool from plain node/pod facts (used by the agent)
//   pricing        break-even price per GPU-hour and whether a pool is offered
//   beta           Beta CDF and quantile (for reputation)
//   reputation     decayed Beta lower bound × uptime × delivered/claimed performance
//   fault          who is at fault when an attempt ends (the table of docs/settlement.md)
//   budget         what an escrow covers, when it is spent, how much may be billed
//   snapshot       the indexed market (pools by product, idle in typed arrays, assume/updateProvider)
//   job            a JobRequest parsed once per call
//   filter         feasibility checks and rejection reasons, in check order
//   score          score parts and their weighted mean
//   gang           all-or-nothing placement of a gang inside one pool
//   unschedulable  the "0/N providers fit: …" explanation
//   assumed        assumed allocations between a decision and the inventory that shows it
//   scheduler      schedule() and scheduleQueue()
export * from './scheduling/assumed.js';
export * from './availability.js';
export * from './beta.js';
export * from './budget.js';
export * from './fault.js';
export * from './scheduling/filter.js';
export * from './scheduling/gang.js';
export * from './idle.js';
export * from './job.js';
export * from './money.js';
export * from './pricing.js';
export * from './reputation.js';
export * from './scheduling/scheduler.js';
export * from './scheduling/config.js';
export * from './scheduling/score.js';
export * from './scheduling/snapshot.js';
export * from './types.js';
export * from './scheduling/unschedulable.js';
