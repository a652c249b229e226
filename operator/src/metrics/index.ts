// Metrics of the hub and the agent (docs/metrics.md is the contract), and their HTTP endpoint.
export { AgentMetrics, type AgentMetricsOptions, type AgentSources } from './agent-metrics.js';
export { fedgpuVersion } from './build-info.js';
export { HubMetrics, type HubMetricsOptions, type MarketSources, type SettlementConfirmed } from './hub-metrics.js';
export { type MetricsServer, type MetricsServerOptions, type Readiness, startMetricsServer } from './http-server.js';
export * from './settlement-metrics.js';
