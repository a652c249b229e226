import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { GpuJob } from '../api/types.js';
import { formatTable } from '../cli/output.js';
import { gpuJobClient } from '../runtime/kube.js';
import type { AgentHandle } from '../testbed/federation.js';
import { busyboxImage } from '../testbed/real-node/images.js';
import { REAL_NODE_PRODUCT } from './topology.js';

// The demo the sandbox runs: four GpuJobs that show the product's story in one terminal — a
// training gang placed whole, a latency-bound inference job, a job whose provider fails mid-run
// and moves, and a real container on the homelab's real node — with a live view until every one
// has ended (and settled, with a chain).

export const DEMO_NAMESPACE = 'default';
/** The job whose provider's agent the demo kills while it runs there. */
const FAILOVER_JOB = 'failover-demo';

export interface DemoJob {
  name: string;
  story: string;
  /** What a newcomer should see at the end. */
  expect: { phase: 'Succeeded'; attempts: number };
  manifest: GpuJob;
}

const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';

function job(name: string, runFor: string, spec: Partial<GpuJob['spec']>): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name, namespace: DEMO_NAMESPACE, labels: { 'fedgpu.io/demo': 'true' } },
    spec: {
      template: {
        metadata: { annotations: { 'fedgpu.io/sim-run-for': runFor } },
        spec: { containers: [{ name: 'main', image: `ghcr.io/example/${name}:1.0` }] },
      },
      budget: { maxPricePerGpuHour: '3.00', maxTotal: '50' },
      ...spec,
    },
  };
}

/**
 * A training-like shell script for the real node: prints steps and a falling loss, writes a
 * checkpoint every 5 steps, resumes from it, and on SIGTERM (an owner reclaim) saves one and leaves.
 */
export const REAL_TRAINING_SCRIPT = [
  'ckpt="${FEDGPU_CHECKPOINT_DIR:-/checkpoints}/checkpoint"',
  'trap \'echo "SIGTERM at step $step: saving checkpoint"; echo "$step" > "$ckpt" && echo "checkpoint saved"; exit 0\' TERM',
  'step=$(cat "$ckpt" 2>/dev/null || echo 0)',
  'echo "training on $(hostname) as uid $(id -u), from step $step"',
  'while [ "$step" -lt 20 ]; do',
  '  step=$((step + 1)); echo "step $step/20 loss 0.$((9000 / (step + 9)))"',
  '  if [ $((step % 5)) -eq 0 ]; then echo "$step" > "$ckpt" && echo "checkpoint written at step $step"; fi',
  '  sleep 1 & wait $!',
  'done',
  'echo "training done"',
].join('\n');

function realJob(): GpuJob {
  return {
    apiVersion: 'fedgpu.io/v1alpha1',
    kind: 'GpuJob',
    metadata: { name: 'real-homelab', namespace: DEMO_NAMESPACE, labels: { 'fedgpu.io/demo': 'true' } },
    spec: {
      template: {
        spec: {
          containers: [{
            name: 'train',
            image: busyboxImage(),
            imagePullPolicy: 'IfNotPresent',
            command: ['/bin/sh', '-c', REAL_TRAINING_SCRIPT],
            // The root filesystem is read-only (the agent's default): checkpoints go to an emptyDir.
            volumeMounts: [{ name: 'checkpoints', mountPath: '/checkpoints' }],
          }],
          volumes: [{ name: 'checkpoints', emptyDir: { sizeLimit: '16Mi' } }],
        },
      },
      gpu: { products: [REAL_NODE_PRODUCT] },
      budget: { maxPricePerGpuHour: '1.00', maxTotal: '5' },
      faultTolerance: { checkpoint: { gracePeriodSeconds: 10, dir: '/checkpoints' } },
    },
  };
}

export const demoJobs: DemoJob[] = [
  {
    name: 'train-gang',
    story: 'a 4-replica training gang: all 16 H100s in one cluster, or none',
    expect: { phase: 'Succeeded', attempts: 1 },
    manifest: job('train-gang', '25s', { replicas: 4, gpusPerReplica: 4, gpu: { products: [H100] }, data: { sizeGiB: 200, sourceRegion: 'eu-west' } }),
  },
  {
    name: 'inference-eu',
    story: 'an inference server that must be within 60 ms of the hub',
    expect: { phase: 'Succeeded', attempts: 1 },
    manifest: job('inference-eu', '15s', { gpu: { products: [RTX4090, RTX3090], minMemoryGiB: 24 }, placement: { maxLatencyMs: 60 }, budget: { maxPricePerGpuHour: '0.80', maxTotal: '5' } }),
  },
  {
    name: 'failover-demo',
    story: 'a fine-tune whose provider dies mid-run: it moves, and only the finished attempt is paid',
    expect: { phase: 'Succeeded', attempts: 2 },
    manifest: job('failover-demo', '45s', {
      gpusPerReplica: 2,
      gpu: { products: [RTX3090, H100] },
      faultTolerance: { maxAttempts: 3, checkpoint: { gracePeriodSeconds: 10, dir: 's3://sandbox-checkpoints/failover-demo' } },
    }),
  },
  {
    name: 'real-homelab',
    story: 'a real container (busybox, uid 65532) on the homelab\'s real node: a training log, checkpoints, SIGTERM handled',
    expect: { phase: 'Succeeded', attempts: 1 },
    // Built when read: the image tag comes from the images `make deps` built.
    get manifest() {
      return realJob();
    },
  },
];

export interface DemoOptions {
  hub: KubeConfig;
  /** The agent of the provider that fails mid-run, and its cluster name. */
  victim: { name: string; agent: AgentHandle };
  log: (line: string) => void;
  /** Stop waiting after this long. */
  timeoutMs?: number;
  /** Wait for the Settled condition too (when a chain runs). */
  waitForSettlement?: boolean;
}

export interface DemoResult {
  ok: boolean;
  jobs: GpuJob[];
  problems: string[];
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const client = gpuJobClient(opts.hub.makeApiClient(CustomObjectsApi));
  const apply = async (d: DemoJob) => {
    opts.log(`applying GpuJob ${d.name}: ${d.story}`);
    await client.create(structuredClone(d.manifest));
  };
  // failover-demo comes last, once no other job runs on (or may still be placed on) the provider
  // it will lose, so its agent dies as soon as failover-demo runs there and nothing else moves.
  // Killing it only after the others were done raced failover-demo's own end on a loaded machine.
  for (const d of demoJobs) if (d.name !== FAILOVER_JOB) await apply(d);
  const deadline = Date.now() + (opts.timeoutMs ?? 240_000);
  let lastView = '';
  let failoverApplied = false;
  let victimKilled = false;
  let victimRestarted = false;
  let jobs: GpuJob[] = [];
  while (Date.now() < deadline) {
    jobs = (await client.list({ namespace: DEMO_NAMESPACE, labelSelector: 'fedgpu.io/demo=true' })).items;
    const view = liveView(jobs);
    if (view !== lastView) {
      opts.log(`\n${view}`);
      lastView = view;
    }
    if (!failoverApplied && jobs.every((j) => isFinished(j) || runsAwayFrom(opts, j))) {
      await apply(demoJobs.find((d) => d.name === FAILOVER_JOB)!);
      failoverApplied = true;
      continue;
    }
    const failover = jobs.find((j) => j.metadata.name === FAILOVER_JOB);
    const victimRunsIt = failover?.status?.phase === 'Running' && failover.status.attempts?.length === 1 && victimProvider(opts, failover);
    if (!victimKilled && victimRunsIt) {
      opts.log(`killing the agent of ${opts.victim.name} (pid ${opts.victim.agent.process.pid}) while ${FAILOVER_JOB} runs there`);
      await opts.victim.agent.process.stop(1);
      victimKilled = true;
    }
    if (victimKilled && !victimRestarted && (failover?.status?.attempts?.length ?? 0) >= 2) {
      opts.log(`${FAILOVER_JOB} moved; bringing ${opts.victim.name}'s agent back (its zombie pods are fenced and deleted)`);
      await opts.victim.agent.restart();
      victimRestarted = true;
    }
    const finished = jobs.length === demoJobs.length && jobs.every((j) => isDone(j, opts.waitForSettlement ?? false));
    if (finished) break;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const problems = checkOutcome(jobs, opts.waitForSettlement ?? false);
  return { ok: problems.length === 0, jobs, problems };
}

function victimProvider(opts: DemoOptions, job: GpuJob): boolean {
  const wallet = opts.victim.agent.wallet.address.toLowerCase();
  return (job.status?.placement?.provider ?? '') === `gp-${wallet.slice(2, 14)}`;
}

/** Running on a provider other than the victim, so the victim's death cannot touch it. */
const runsAwayFrom = (opts: DemoOptions, job: GpuJob): boolean =>
  job.status?.phase === 'Running' && Boolean(job.status.placement?.provider) && !victimProvider(opts, job);

const isFinished = (j: GpuJob) => j.status?.phase === 'Succeeded' || j.status?.phase === 'Failed';
const settled = (j: GpuJob) => j.status?.conditions?.find((c) => c.type === 'Settled')?.status === 'True';
const isDone = (j: GpuJob, settlement: boolean) => isFinished(j) && (!settlement || settled(j));

export function checkOutcome(jobs: GpuJob[], settlement: boolean): string[] {
  const problems: string[] = [];
  for (const d of demoJobs) {
    const j = jobs.find((x) => x.metadata.name === d.name);
    if (!j) problems.push(`${d.name}: missing`);
    else if (j.status?.phase !== d.expect.phase) problems.push(`${d.name}: ${j.status?.phase ?? 'Pending'} (${j.status?.message ?? ''}), expected ${d.expect.phase}`);
    else if ((j.status?.attempts?.length ?? 0) !== d.expect.attempts) problems.push(`${d.name}: ${j.status?.attempts?.length} attempts, expected ${d.expect.attempts}`);
    else if (settlement && !settled(j)) problems.push(`${d.name}: not settled on chain`);
  }
  return problems;
}

/** The table the sandbox redraws whenever something changes. */
export function liveView(jobs: GpuJob[]): string {
  const rows = [['JOB', 'PHASE', 'PROVIDER', 'ATTEMPTS', 'COST', 'SETTLEMENT', 'WHY']];
  for (const j of [...jobs].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))) {
    const s = j.status ?? {};
    const attempts = (s.attempts ?? []).map((a) => `${a.epoch}:${a.outcome}${a.faultOf && a.faultOf !== 'none' ? `(${a.faultOf})` : ''}`).join(' ');
    const tx = s.settlement?.txHash ? `${s.settlement.txHash.slice(0, 10)}…` : settled(j) ? 'settled' : '-';
    const why = (s.message ?? '').replace(/^scheduled on \S+ \((.*)\)$/, '$1');
    rows.push([j.metadata.name ?? '', s.phase ?? 'Pending', s.placement?.provider ?? '-', attempts || '-', s.cost?.amount ?? '0', tx, why.length > 90 ? `${why.slice(0, 89)}…` : why]);
  }
  return formatTable(rows).trimEnd();
}
