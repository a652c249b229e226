import { egressProfileSchema } from './job-environment.schema.js';
import { poolAccessSchema } from './access.schema.js';
import {
  arr,
  conditions,
  GPU_PRODUCT_PATTERN,
  immutable,
  int,
  money,
  num,
  obj,
  oneOf,
  str,
  stringMap,
  time,
  wallet,
  type Schema,
} from './builder.js';

export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const CLOCK = '^([01][0-9]|2[0-3]):[0-5][0-9]$';

const pricing = obj(
  'What the provider asks, in credits per GPU-hour, and what its power costs (for break-even).',
  {
    pricePerGpuHour: stringMap(
      'Price per GPU-hour by GPU product (label nvidia.com/gpu.product), e.g. {"NVIDIA-H100-80GB-HBM3": "2.4"}.',
      money('Price per GPU-hour in credits.'),
      { maxProperties: 64 },
    ),
    defaultPricePerGpuHour: money('Price per GPU-hour for products not listed in pricePerGpuHour.'),
    electricity: obj(
      'Power cost, used to compute each pool\'s break-even price; a pool priced below it is not offered.',
      {
        pricePerKWh: money('Electricity price per kWh, in credits.'),
        pue: num('Power usage effectiveness of the site (1.0 = no overhead).', {
          minimum: 1,
          maximum: 3,
          default: 1.4,
        }),
        wearPerGpuHour: money('Hardware wear allowance per GPU-hour, in credits, added to the power cost.'),
      },
      { tsName: 'ProviderElectricity' },
    ),
  },
  { tsName: 'ProviderPricing' },
);

const window = obj(
  'A daily window in which the owner lends GPUs. It may cross midnight (22:00-06:00).',
  {
    days: arr('Weekdays the window opens on; empty means every day.', oneOf('A weekday.', [...WEEKDAYS]), {
      maxItems: 7,
      'x-kubernetes-list-type': 'set',
    }),
    start: str('Opening time, HH:MM in the window\'s time zone.', { pattern: CLOCK, maxLength: 5 }),
    end: str('Closing time, HH:MM in the window\'s time zone.', { pattern: CLOCK, maxLength: 5 }),
  },
  {
    required: ['start', 'end'],
    tsName: 'AvailabilityWindow',
    'x-kubernetes-validations': [{ rule: 'self.start != self.end', message: 'start and end must differ' }],
  },
);

const availability = obj(
  'When the owner lends GPUs, and how many the owner keeps.',
  {
    windows: arr('Lending windows; none means always available.', window, { maxItems: 32 }),
    utcOffsetMinutes: int('Offset of the windows\' time zone from UTC, in minutes (e.g. 60 for CET).', {
      minimum: -840,
      maximum: 840,
      default: 0,
    }),
    reservedGpus: int('GPUs the owner keeps for itself across the cluster; never offered.', {
      minimum: 0,
      maximum: 100000,
      default: 0,
    }),
  },
  { tsName: 'ProviderAvailability' },
);

const auditedAttribute = obj(
  'An attribute signed by an auditor the hub trusts.',
  {
    name: str('Attribute name, e.g. tier or soc2.', { pattern: '^[A-Za-z0-9._/-]{1,63}$' }),
    value: str('Attribute value.', { maxLength: 253 }),
    auditor: wallet('Wallet address of the auditor.'),
    signature: str('EIP-191 signature by the auditor over "fedgpu-audit:<provider wallet>:<name>=<value>".', {
      pattern: '^0x[0-9a-fA-F]{130}$',
    }),
  },
  { required: ['name', 'value', 'auditor', 'signature'], tsName: 'AuditedAttribute' },
);

export const gpuProviderSpec: Schema = obj(
  'A provider cluster: its identity, prices and availability.',
  {
    wallet: immutable(
      wallet('Ethereum address of the provider: its identity on the hub, the stake holder and the payee.'),
      'spec.wallet',
    ),
    displayName: str('Human-readable name.', { maxLength: 128 }),
    region: str('Region of the cluster, e.g. eu-west.', { pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }),
    pricing,
    availability,
    attributes: stringMap('Self-declared attributes (unverified), e.g. tier: datacenter.', str('Value.', { maxLength: 253 }), {
      maxProperties: 64,
    }),
    auditedAttributes: arr('Attributes signed by auditors.', auditedAttribute, { maxItems: 32 }),
  },
  { required: ['wallet'], tsName: 'GpuProviderSpec' },
);

const pool = obj(
  'A group of identical GPU nodes.',
  {
    gpuProduct: str('GPU product (nvidia.com/gpu.product).', { pattern: GPU_PRODUCT_PATTERN }),
    memoryMiB: int('Memory per GPU in MiB (nvidia.com/gpu.memory).', { minimum: 0 }),
    cudaDriverMajor: int('NVIDIA driver major version (nvidia.com/cuda.driver.major), e.g. 580.', { minimum: 0 }),
    nodes: int('Nodes in the pool.', { minimum: 0 }),
    total: int('GPUs in the pool.', { minimum: 0 }),
    allocatable: int('GPUs on schedulable, Ready nodes.', { minimum: 0 }),
    idle: int('GPUs free to offer now.', { minimum: 0 }),
    pricePerGpuHour: money('Price asked per GPU-hour.'),
    breakEvenPricePerGpuHour: money('Power and wear cost per GPU-hour.'),
    cpuMilliPerGpu: int('CPU each GPU brings, in millicores, on the pool\'s smallest node (its allocatable less what the owner\'s pods hold, divided among the GPUs they leave): a replica of g GPUs may use g times this, no more. Absent: an agent that does not say.', { minimum: 0 }),
    memoryMiBPerGpu: int('Host memory each GPU brings, in MiB, counted as cpuMilliPerGpu is.', { minimum: 0 }),
    runtimeClassName: str('RuntimeClass the owner runs this pool\'s job pods under (e.g. gvisor, kata); absent: the cluster default.', { maxLength: 253 }),
    offered: { type: 'boolean', description: 'Whether the pool is on the market.' },
    notOfferedReason: str('Why the pool is not offered, e.g. PriceBelowBreakEven.'),
    egress: egressProfileSchema('What job pods in this pool may reach, as the owner declares it (jobs needing more are not placed here).', 'PoolEgress'),
    access: poolAccessSchema,
    idleByNode: arr(
      'Idle GPUs per node, largest first.',
      obj('Idle GPUs on one node.', { name: str('Node name.'), idle: int('Idle GPUs.', { minimum: 0 }) }, {
        tsName: 'NodeIdle',
      }),
      { maxItems: 10000 },
    ),
  },
  { tsName: 'ProviderPool' },
);

export const gpuProviderStatus: Schema = obj(
  'Observed state of the provider, written by the hub from its agent\'s stream and the chain.',
  {
    conditions: conditions('Registered, Ready, Staked, Degraded and TenantIsolation conditions. TenantIsolation is False (NamespaceNotRestricted) while the agent refuses job pods in a tenant namespace that no longer enforces PodSecurity restricted; its message names the namespace and why.'),
    observedGeneration: int('Generation of the spec this status reflects.'),
    lastHeartbeatTime: time('When the agent last sent a heartbeat, at a coarse resolution: the leading hub keeps liveness in memory and writes this on transitions, with other status writes, and about once a minute otherwise.'),
    agentVersion: str('Version of the connected agent.'),
    pools: arr('GPU pools of the cluster.', pool, { maxItems: 256 }),
    idleGpus: int('Idle GPUs across offered pools.'),
    totalGpus: int('GPUs across all pools.'),
    gpus: str('Idle/total GPUs, for display.'),
    latency: obj(
      'Network quality between hub and provider, as the leading hub measured it when status was last written (about once a minute at rest); its scheduler uses its own live figures.',
      {
        rttMs: num('Round-trip time, exponentially weighted moving average, in milliseconds.', { minimum: 0 }),
        bandwidthMbps: num('Measured bandwidth in megabits per second.', { minimum: 0 }),
      },
      { tsName: 'ProviderLatency' },
    ),
    reputation: obj(
      'Reputation from attempt outcomes attributed to the provider.',
      {
        score: num('Lower bound of the credible interval of the success rate, from 0 to 1.', {
          minimum: 0,
          maximum: 1,
        }),
        successes: num('Decayed count of successful attempts.', { minimum: 0 }),
        failures: num('Decayed count of attempts failed by the provider.', { minimum: 0 }),
        window: str('Decay half-life used, e.g. 168h.'),
        asOfBlock: int('Chain block the score was computed at: events up to it, decayed to its timestamp.', { minimum: 0 }),
        asOf: time('Timestamp of that block.'),
      },
      { tsName: 'ProviderReputation' },
    ),
    stake: obj(
      'Collateral on chain.',
      {
        amount: money('Active stake in credits.'),
        unbonding: money('Stake waiting out its unbonding delay.'),
        slashed: money('Credits slashed so far.'),
        locked: money('Part of the active stake locked by open escrows (the slash bond of each); it cannot be unstaked.'),
        free: money('Active stake not locked by open escrows: what can back new escrows. The provider is Staked only while it covers one more bond.'),
      },
      { tsName: 'ProviderStake' },
    ),
    runningJobs: int('Attempts running on the provider.', { minimum: 0 }),
  },
  { tsName: 'GpuProviderStatus' },
);
