import {
  arr,
  bool,
  conditions,
  GPU_PRODUCT_PATTERN,
  immutable,
  int,
  money,
  num,
  obj,
  oneOf,
  str,
  time,
  type Schema,
} from './builder.js';
import { billedGpuRule, podTemplateSchema } from './pod-template.schema.js';
import { jobNetworkSchema, jobSecretsSchema } from './job-environment.schema.js';
import { jobAccessSchema } from './access.schema.js';

export const JOB_PHASES = ['Pending', 'Scheduled', 'Running', 'Succeeded', 'Failed'] as const;
export const ATTEMPT_OUTCOMES = ['Running', 'Succeeded', 'Failed', 'Lost', 'Reclaimed', 'Cancelled', 'Fenced'] as const;
export const FAULT_PARTIES = ['none', 'user', 'provider', 'owner-reclaim', 'unattributed'] as const;

const REGION = str('A region name as providers declare it, e.g. eu-west.', {
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  maxLength: 63,
});

const gpu = obj(
  'Which GPUs each replica needs.',
  {
    products: arr(
      'Acceptable GPU products as GPU Feature Discovery names them (label nvidia.com/gpu.product), ' +
        'e.g. NVIDIA-H100-80GB-HBM3. Empty accepts any product that meets the other limits.',
      str('A GPU product name.', { pattern: GPU_PRODUCT_PATTERN, maxLength: 63 }),
      { maxItems: 16, 'x-kubernetes-list-type': 'set' },
    ),
    minMemoryGiB: int('Minimum memory per GPU in GiB.', { minimum: 0, maximum: 1024 }),
    minCudaDriverMajor: int(
      'Minimum NVIDIA driver major version, as GPU Feature Discovery labels it (nvidia.com/cuda.driver.major), e.g. 535 or 580.',
      { minimum: 0, maximum: 9999 },
    ),
  },
  { tsName: 'GpuRequirements' },
);

const placement = obj(
  'Where the job may run.',
  {
    regions: arr('Provider regions the job may run in. Empty allows every region.', REGION, {
      maxItems: 32,
      'x-kubernetes-list-type': 'set',
    }),
    maxLatencyMs: int('Largest acceptable round-trip time between hub and provider, in milliseconds.', {
      minimum: 1,
      maximum: 60000,
    }),
    minReputation: num('Lowest acceptable provider reputation score, from 0 to 1.', { minimum: 0, maximum: 1 }),
    requireAudited: arr(
      'Provider attributes that must be audited (signed by an auditor the hub trusts), as name or name=value.',
      str('An attribute name, or name=value.', { pattern: '^[A-Za-z0-9._/-]{1,63}(=[^=]{0,253})?$' }),
      { maxItems: 16, 'x-kubernetes-list-type': 'set' },
    ),
    sameNode: bool('Put every replica on one node (for jobs that need NVLink between replicas).', {
      default: false,
    }),
    runtimeClassName: str('Run only on pools whose owner puts job pods under this RuntimeClass (e.g. gvisor, kata); `fedgpu market` shows each pool\'s.', {
      maxLength: 253,
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    }),
  },
  { tsName: 'JobPlacement' },
);

const data = obj(
  'Input data the job pulls before it starts, used to estimate transfer time to each provider.',
  {
    sizeGiB: num('Size of the input data in GiB.', { minimum: 0, maximum: 1048576 }),
    sourceRegion: REGION,
  },
  { tsName: 'JobData' },
);

/** A budget of 0 buys nothing: refused with its reason rather than a job that waits for ever. */
const MORE_THAN_ZERO = { 'x-kubernetes-validations': [{ rule: "self.matches('[1-9]')", message: 'must be more than 0: nothing can be bought for 0 credits' }] };

const budget = obj(
  'What the consumer is willing to pay. Money is a decimal string of credits.',
  {
    maxPricePerGpuHour: money('Highest acceptable price per GPU-hour, in credits, e.g. "2.5".', MORE_THAN_ZERO),
    maxTotal: money('Most the whole job may cost, in credits; escrowed on chain when the job is scheduled.', MORE_THAN_ZERO),
  },
  { required: ['maxPricePerGpuHour'], tsName: 'JobBudget' },
);

const faultTolerance = obj(
  'How the job survives provider failures and owner reclaims.',
  {
    maxAttempts: int('Most attempts, counting the first; provider faults and reclaims start a new attempt.', {
      minimum: 1,
      maximum: 20,
      default: 3,
    }),
    startTimeoutSeconds: int(
      'Most seconds an attempt may take from assignment to Running (image pulls, data staging). Past it the attempt ' +
        "ends, unpaid, and the job moves to another provider: as the provider's fault (StartTimeout) only when it is at " +
        "least the hub's --start-blame-after (300 s by default) and the pods were not bound and waiting on the image, " +
        'init containers or container spec.',
      { minimum: 5, maximum: 86400, default: 600 },
    ),
    checkpoint: obj(
      'Checkpointing: the job resumes from here on another provider.',
      {
        gracePeriodSeconds: int('Time given to pods to checkpoint after SIGTERM when their GPU is reclaimed.', {
          minimum: 0,
          maximum: 3600,
          default: 30,
        }),
        dir: str('Checkpoint location handed to every attempt in FEDGPU_CHECKPOINT_DIR, e.g. s3://bucket/run-1.', {
          maxLength: 1024,
        }),
      },
      { tsName: 'JobCheckpoint' },
    ),
  },
  { tsName: 'JobFaultTolerance' },
);

export const gpuJobSpec: Schema = obj(
  'What to run, on which GPUs, where, and for how much.',
  {
    template: immutable(podTemplateSchema, 'spec.template'),
    replicas: immutable(
      int('Number of pods in the gang; all run in one provider cluster, all-or-nothing.', {
        minimum: 1,
        maximum: 256,
        default: 1,
      }),
      'spec.replicas',
    ),
    gpusPerReplica: immutable(
      int('GPUs each replica gets (nvidia.com/gpu limit), all on one node.', { minimum: 1, maximum: 16, default: 1 }),
      'spec.gpusPerReplica',
    ),
    gpu: immutable(gpu, 'spec.gpu'),
    placement,
    data,
    budget,
    faultTolerance,
    activeDeadlineSeconds: int('Wall-clock limit for the whole job, across attempts; the job fails after it.', {
      minimum: 1,
      maximum: 31536000,
    }),
    network: jobNetworkSchema,
    secrets: jobSecretsSchema,
    access: jobAccessSchema,
  },
  {
    required: ['template', 'budget'],
    'x-kubernetes-validations': [
      {
        rule: '!has(self.placement) || !has(self.placement.sameNode) || !self.placement.sameNode || self.replicas * self.gpusPerReplica <= 16',
        message: 'placement.sameNode needs replicas × gpusPerReplica ≤ 16 (no node has more GPUs)',
        fieldPath: '.placement.sameNode',
      },
      billedGpuRule,
      {
        // The escrow of a running attempt expires by the deadline it was opened under: raised or
        // removed afterwards, the attempt would outlive its escrow, and the consumer could reclaim
        // the escrow while the pods still run (the provider unpaid for all of it).
        rule: '!has(oldSelf.activeDeadlineSeconds) || (has(self.activeDeadlineSeconds) && self.activeDeadlineSeconds <= oldSelf.activeDeadlineSeconds)',
        message: 'activeDeadlineSeconds may be lowered, not raised or removed: the escrows of running attempts expire by it',
        fieldPath: '.activeDeadlineSeconds',
      },
      {
        // The budget must cover the grace of every GPU (the agent stops the pods that long before the
        // covered time runs out), checked at placement: raised on a running job, and carried to its
        // agent by the next resync, the longer grace would run past what the escrow covers, unpaid.
        // Absent is the hub's default, 30 s, on either side: a job created without a checkpoint
        // section must not gain an hour of grace by adding one.
        rule:
          '(has(self.faultTolerance) && has(self.faultTolerance.checkpoint) && has(self.faultTolerance.checkpoint.gracePeriodSeconds) ? self.faultTolerance.checkpoint.gracePeriodSeconds : 30) <= ' +
          '(has(oldSelf.faultTolerance) && has(oldSelf.faultTolerance.checkpoint) && has(oldSelf.faultTolerance.checkpoint.gracePeriodSeconds) ? oldSelf.faultTolerance.checkpoint.gracePeriodSeconds : 30)',
        message: 'faultTolerance.checkpoint.gracePeriodSeconds may be lowered, not raised (absent is 30): the budget of a running attempt covers the grace it was placed with',
        fieldPath: '.faultTolerance.checkpoint.gracePeriodSeconds',
      },
    ],
    tsName: 'GpuJobSpec',
  },
);

const score = obj(
  'Score of the chosen placement and its parts (each from 0 to 1, higher is better).',
  {
    total: num('Weighted sum of the parts.'),
    reputation: num('Provider reputation part.'),
    latency: num('Round-trip-time part.'),
    price: num('Price part.'),
    timeToStart: num('Data-transfer time part.'),
    fragmentation: num('Bin-packing part: high when the gang fills nodes well.'),
  },
  { tsName: 'PlacementScore' },
);

const attempt = obj(
  'One try at running the job on one provider.',
  {
    epoch: int('Fencing epoch: only the newest attempt may report progress or be paid.', { minimum: 1 }),
    provider: str('GpuProvider that ran the attempt.'),
    nodes: arr('Nodes of the provider cluster the replicas ran on.', str('A node name.'), { maxItems: 256 }),
    startTime: time('When the attempt was assigned.'),
    endTime: time('When the attempt ended.'),
    outcome: oneOf('How the attempt ended.', [...ATTEMPT_OUTCOMES]),
    reason: str('PascalCase cause, e.g. ProviderLost, ContainerFailed, OwnerReclaim.'),
    message: str('Human-readable detail.'),
    faultOf: oneOf(
      'Who is at fault for the attempt ending early: user (what the pod did to itself; not retried), provider (slashed, retried elsewhere), owner-reclaim (announced reclaim, resumed elsewhere), unattributed (cannot be told apart, e.g. node pressure: retried, never slashed), none.',
      [...FAULT_PARTIES],
    ),
    runningTime: time('When the hub first saw the attempt Running (its own clock): billing never starts before it, unless part of the gang ran earlier (firstUsageTime).'),
    firstUsageTime: time(
      'When the hub first heard GPU time used by a replica of a gang not all Running yet (its own clock). From here until runningTime (or the end) at most every GPU but one replica\'s is billed: a start timeout with replicas running bills what they used, and a gang whose replicas started apart is paid for its early ones.',
    ),
    gpuSeconds: num(
      'GPU-seconds billed for the attempt: what the agent measured, at most the interval the hub saw it running × GPUs, at most what its escrow covers.',
      { minimum: 0 },
    ),
    coveredGpuSeconds: int('GPU-seconds the budget left for this attempt covers at its price; the attempt is stopped (BudgetExhausted) when they are used.', { minimum: 0 }),
    pricePerGpuHour: money('Price per GPU-hour agreed for this attempt.'),
    gpuProduct: str('GPU product the attempt ran on.'),
    exitCode: int('Exit code of the first failed container, when one failed.'),
    secretNames: arr(
      "Names of the Secrets (spec.secrets) sent with this attempt: its processes hold them, so exec and port-forward into it need get on each, whatever spec.secrets says since.",
      str('A Secret name.'),
      { maxItems: 16 },
    ),
  },
  { required: ['epoch', 'provider'], tsName: 'JobAttempt' },
);

const HEX32 = { pattern: '^0x[0-9a-fA-F]{64}$' };

const usageReceipt = obj(
  "The provider's signed usage of one attempt (EIP-712 UsageReceipt), as the hub verified and recorded it.",
  {
    gpuSeconds: int('Whole GPU-seconds the provider measured and signed for.', { minimum: 0 }),
    amount: money('Credits charged: floor(gpuSeconds × pricePerGpuHour / 3600).'),
    usageHash: str("Hash of the agent's detailed usage record.", HEX32),
    signature: str("The provider wallet's 65-byte signature.", { pattern: '^0x[0-9a-fA-F]{130}$' }),
    wallet: str('The provider wallet that signed the receipt and is paid.', { pattern: '^0x[0-9a-fA-F]{40}$' }),
    receivedTime: time('When the hub recorded the receipt.'),
  },
  { required: ['gpuSeconds', 'amount', 'usageHash', 'signature', 'wallet'], tsName: 'SettlementReceipt' },
);

const attemptSettlement = obj(
  'The escrow of one attempt: opened before its Assign, settled from its receipt or refunded, slashed at most once.',
  {
    epoch: int('Attempt epoch; the escrow key on chain is keccak256("<job uid>:<epoch>").', { minimum: 1 }),
    escrowId: str('bytes32 key of the escrow on chain.', HEX32),
    escrowAmount: money('Credits locked for the attempt (the rest of the job budget).'),
    escrowTxHash: str('Transaction that opened the escrow.'),
    escrowBlock: int('Block of that transaction.'),
    state: oneOf('State of the escrow on chain.', ['Open', 'Settled', 'Refunded']),
    receipt: usageReceipt,
    paid: money('Credits paid to the provider.'),
    refunded: money('Credits returned to the consumer.'),
    txHash: str('Transaction that settled or refunded the escrow.'),
    block: int('Block of that transaction.'),
    slashed: money('Credits taken from the provider at fault and paid to the consumer.'),
    slashTxHash: str('Transaction of the slash.'),
    slashBlock: int('Block of the slash.'),
  },
  { required: ['epoch'], tsName: 'AttemptSettlement' },
);

export const gpuJobStatus: Schema = obj(
  'Observed state of the job, written by the hub.',
  {
    phase: oneOf('Lifecycle phase.', [...JOB_PHASES]),
    conditions: conditions('Scheduled, Running, Finished and Settled conditions.'),
    observedGeneration: int('Generation of the spec this status reflects.'),
    message: str('Why the job is where it is, e.g. why it waits: "0/5 providers fit: …".'),
    gpus: int('Total GPUs of the gang (replicas × gpusPerReplica).'),
    attemptCount: int('Number of attempts so far.'),
    currentEpoch: int('Epoch of the live attempt.'),
    startTime: time('When the first attempt started running.'),
    completionTime: time('When the job reached Succeeded or Failed.'),
    placement: obj(
      'The scheduling decision of the current attempt.',
      {
        provider: str('Chosen GpuProvider.'),
        gpuProduct: str('GPU product of the chosen pool.'),
        nodes: arr('Node of each replica, in replica order.', str('A node name.'), { maxItems: 256 }),
        pricePerGpuHour: money('Agreed price per GPU-hour.'),
        score,
      },
      { tsName: 'JobPlacementStatus' },
    ),
    attempts: arr('Every attempt, oldest first.', attempt, { maxItems: 64 }),
    budget: obj(
      'The budget while the job runs: spec.budget.maxTotal, what is used (billed attempts and the running one), and what is left.',
      {
        limit: money('spec.budget.maxTotal.'),
        used: money('Credits used so far, the running attempt included.'),
        left: money('Credits left of the limit.'),
        attemptLeftGpuSeconds: num('GPU-seconds the running attempt may still use before it is stopped.', { minimum: 0 }),
      },
      { tsName: 'JobBudgetStatus' },
    ),
    cost: obj(
      'What the job has cost so far.',
      {
        gpuSeconds: num('GPU-seconds billed across attempts.', { minimum: 0 }),
        amount: money('Credits billed across attempts.'),
      },
      { tsName: 'JobCost' },
    ),
    settlement: obj(
      'On-chain settlement of the job.',
      {
        escrowTxHash: str('Transaction that opened the escrow.'),
        escrowAmount: money('Credits locked in escrow.'),
        txHash: str('Transaction that settled or refunded the escrow.'),
        block: int('Block of that transaction.'),
        paid: money('Credits paid to providers.'),
        refunded: money('Credits returned to the consumer.'),
        slashed: money('Credits slashed from providers at fault and paid to the consumer.'),
        consumer: str('Consumer wallet the escrows draw on (the namespace label fedgpu.io/consumer-wallet).', {
          pattern: '^0x[0-9a-fA-F]{40}$',
        }),
        attempts: arr('One escrow per attempt, by epoch.', attemptSettlement, { maxItems: 65 }),
      },
      { tsName: 'JobSettlement' },
    ),
  },
  { tsName: 'GpuJobStatus' },
);
