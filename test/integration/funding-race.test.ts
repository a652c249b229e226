import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { Wallet } from 'ethers';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { GpuJob, GpuProvider } from '../../operator/src/api/types.js';
import { GpuJobController } from '../../operator/src/hub/jobs/controller.js';
import { coveredGpuSeconds } from '../../operator/src/core/budget.js';
import { parseMoney } from '../../operator/src/core/money.js';
import { gpuJobClient, gpuProviderClient, loadKubeConfig, makeClients } from '../../operator/src/runtime/kube.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';
import { waitFor } from '../../operator/src/testbed/wait.js';
import { HUB_RELEASE, HUB_RELEASE_NAMESPACE, hubIdentity } from '../../operator/src/testbed/federation.js';

// The attack: with settlement on, a job is placed only on an escrow opened for the provider it goes
// to. The hub asks for that escrow after a trial placement; when the trial finds no fit there is
// nothing to open, and the funding check answers "nothing stands in the way". GPUs that free up
// while that check reads the chain must not then be taken by the same reconcile: that would run
// the job with no escrow behind it, compute the consumer never pays for. Here the check itself
// offers the GPUs (a real GpuProvider status write, seen by the controller's informer) before it
// answers, which is the widest that window can be.

const kubeconfig = inject('kubeconfig');
const NS = 'funding-race';
const run = String(process.pid);
const provider = `race-${run}`;
const wallet = Wallet.createRandom().address;

let controller: GpuJobController;
let job: GpuJob;
/** What happened, in order: each funding check (with the provider it was asked for) and each Assign. */
const log: string[] = [];
let escrowOpen = false;
let offered = false;
let assignsWithoutEscrow = 0;
const unfundedChecks: string[] = [];
/** The funding checks of the 'secretive' job: the provider of each candidate, or 'none'. */
const secretiveChecks: string[] = [];
const assignedUids: string[] = [];
/** Covered GPU-seconds of each Assign, by job uid. */
const coveredOf = new Map<string, number>();
/** The 'grown' job: the escrow opened for its first spec holds 0.1 credits; its spec now says 1000. */
const GROWN_ESCROW = parseMoney('0.1');
const GROWN_SPEC_HOLD = parseMoney('1000');

const admin = () => makeClients(loadKubeConfig(kubeconfig));

/** The GPUs on offer for a test that does not go through the race (the first test offers them itself). */
async function offerGpusOnce(): Promise<void> {
  if (offered) return;
  offered = true;
  await offerGpus();
}

async function offerGpus(): Promise<void> {
  const now = new Date().toISOString();
  await gpuProviderClient(admin().customObjects, 'funding-race-test').patchStatus(provider, undefined, {
    status: {
      lastHeartbeatTime: now,
      conditions: [{ type: 'Ready', status: 'True', reason: 'HeartbeatReceived', message: 'set by the test', lastTransitionTime: now }],
      pools: [{
        gpuProduct: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81_920, cudaDriverMajor: 12, nodes: 1, total: 8, allocatable: 8, idle: 8,
        pricePerGpuHour: '1.00', breakEvenPricePerGpuHour: '0.50', offered: true, idleByNode: [{ name: 'gpu-0', idle: 8 }],
      }],
    },
  });
  await waitFor('the controller to see the offered GPUs', () => (controller.providers.get(provider)?.status?.pools?.length ? true : undefined), { timeoutMs: 20_000, intervalMs: 20 });
}

beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  for (const args of [['apply', '--server-side', '-f', crds], ['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]]) {
    const res = await runKubectl(kubeconfig, args);
    expect(res.code, res.stderr).toBe(0);
  }
  const clients = admin();
  await clients.core.createNamespace({ body: { metadata: { name: NS } } }).catch((err) => {
    if ((err as { code?: number }).code !== 409) throw err;
  });
  // Ready, but nothing to offer yet: the job's first trial finds no fit.
  const providers = gpuProviderClient(clients.customObjects, 'funding-race-test');
  await providers.create({ apiVersion: 'fedgpu.io/v1alpha1', kind: 'GpuProvider', metadata: { name: provider }, spec: { wallet } } as GpuProvider);
  const now = new Date().toISOString();
  await providers.patchStatus(provider, undefined, {
    status: { lastHeartbeatTime: now, conditions: [{ type: 'Ready', status: 'True', reason: 'HeartbeatReceived', message: 'set by the test', lastTransitionTime: now }] },
  });
  controller = new GpuJobController({
    kubeConfig: (await hubIdentity({ kubeconfigPath: kubeconfig })).kubeConfig, // the chart's hub identity, not admin
    logger: pino({ level: 'silent' }),
    agents: {
      send: (to, message) => {
        if (message.body?.$case === 'assign') {
          assignedUids.push(message.body.value.jobUid);
          coveredOf.set(message.body.value.jobUid, message.body.value.coveredGpuSeconds);
          log.push(`assign:${to}`);
          if (!escrowOpen) assignsWithoutEscrow++;
        }
        return true;
      },
    },
    // What the spec's hold says the next attempt may spend (jobs/budget.ts), for the 'grown' job the
    // raised maxTotal; nothing for the others.
    budgetLeft: (j) => (j.metadata.name === 'grown' ? GROWN_SPEC_HOLD : undefined),
    fundingCheck: async (j, candidate) => {
      if (j.metadata.namespace !== NS) return {};
      // As the real check answers for a job it judges will end unplaced (deadline just passed):
      // nothing to open, nothing in the way.
      if (j.metadata.name === 'unfunded') return (unfundedChecks.push(candidate?.provider ?? 'none'), {});
      if (j.metadata.name === 'secretive') {
        secretiveChecks.push(candidate?.provider ?? 'none');
        return candidate ? { wait: `waiting for escrow: the test opens it for ${candidate.provider}` } : {};
      }
      // An escrow already open for this attempt, opened before the consumer raised maxTotal.
      if (j.metadata.name === 'grown') return { wallet, escrowAmount: GROWN_ESCROW };
      log.push(`check:${candidate?.provider ?? 'none'}`);
      if (escrowOpen) return { wallet };
      if (candidate) return { wait: `waiting for escrow: the test opens it for ${candidate.provider}` };
      // No fit, so no escrow was asked for: GPUs appear before this answer comes back.
      if (!offered) {
        offered = true;
        await offerGpus();
      }
      return {};
    },
  });
  await controller.start();
  const body = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
  job = await gpuJobClient(clients.customObjects, 'funding-race-test').create({ ...body, metadata: { name: 'racer', namespace: NS } });
});

afterAll(async () => {
  await controller?.stop();
  await gpuProviderClient(admin().customObjects).delete(provider).catch(() => {});
  for (const name of ['racer', 'unfunded', 'grown', 'secretive']) await runKubectl(kubeconfig, ['patch', 'gj', name, '-n', NS, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await runKubectl(kubeconfig, ['delete', 'namespace', NS, '--wait=false']);
});

describe('a placement and its escrow', () => {
  it('GPUs freed while a no-fit funding check reads the chain are not placed without an escrow', async () => {
    // The job is tried again on the provider's change and asks for an escrow there first; an
    // Assign instead is the attack succeeding.
    await waitFor('a funding check for the provider, or an Assign', () => (log.some((l) => l === `check:${provider}` || l.startsWith('assign:')) ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    expect(assignsWithoutEscrow).toBe(0);
    expect(offered).toBe(true);
    expect(log.indexOf('check:none')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('check:none')).toBeLessThan(log.indexOf(`check:${provider}`));
    expect(assignsWithoutEscrow).toBe(0);
    const waiting = await waitFor('the job to say it waits for its escrow', async () => {
      const j = await gpuJobClient(admin().customObjects).get('racer', NS);
      return j.status?.conditions?.find((c) => c.type === 'Scheduled')?.message?.startsWith('waiting for escrow: the test opens it') ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(waiting.status?.placement).toBeUndefined();
    expect(waiting.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'False', reason: 'WaitingForEscrow' });
    expect(assignsWithoutEscrow).toBe(0);
  });

  it('places the job once its escrow is open, on the provider the escrow pays', async () => {
    escrowOpen = true;
    controller.enqueue(`${NS}/racer`);
    await waitFor('the Assign', () => (log.includes(`assign:${provider}`) ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    expect(assignsWithoutEscrow).toBe(0);
    const placed = await waitFor('the placement in status', async () => {
      const j = await gpuJobClient(admin().customObjects).get('racer', NS);
      return j.status?.placement ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(placed.metadata.uid).toBe(job.metadata.uid);
    expect(placed.status?.attempts?.at(-1)?.provider).toBe(provider);
  });

  it('does not place a job that fits when the funding check opened nothing for it', async () => {
    const body = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
    const unfunded = await gpuJobClient(admin().customObjects, 'funding-race-test').create({ ...body, metadata: { name: 'unfunded', namespace: NS } });
    const waiting = await waitFor('the job to wait for an escrow', async () => {
      const j = await gpuJobClient(admin().customObjects).get('unfunded', NS);
      return j.status?.conditions?.find((c) => c.type === 'Scheduled')?.message === 'waiting for escrow: none is open for this attempt' ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(unfundedChecks).toContain(provider); // it did fit there: the trial placed it
    expect(waiting.status?.conditions?.find((c) => c.type === 'Scheduled')?.reason).toBe('WaitingForEscrow');
    expect(waiting.status?.placement).toBeUndefined();
    expect(assignedUids).not.toContain(unfunded.metadata.uid);
  });

  it('opens no escrow for a job whose Secrets the hub cannot read, and asks for one once it can', async () => {
    // The attack: a job naming a Secret its writer may read but never granted to the hub. Its
    // escrow opened on the trial placement, locking one of the provider's stake bonds, and then
    // the job waited on the Secret; retired unplaced after two minutes, its next attempt opened
    // another, and so on. Now the Secret is read before any escrow is asked for.
    await offerGpusOnce();
    const body = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
    await gpuJobClient(admin().customObjects, 'funding-race-test').create({
      ...body,
      metadata: { name: 'secretive', namespace: NS },
      spec: { ...body.spec, secrets: [{ name: 'hf-token', env: [{ name: 'HF_TOKEN', key: 'token' }] }] },
    });
    const waiting = await waitFor('the job to wait for its Secret', async () => {
      const j = await gpuJobClient(admin().customObjects).get('secretive', NS);
      return j.status?.conditions?.find((c) => c.type === 'Scheduled')?.reason === 'WaitingForSecrets' ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(waiting.status?.conditions?.find((c) => c.type === 'Scheduled')?.message).toBe(
      `waiting for a RoleBinding in namespace ${NS} that lets the hub get Secret ${NS}/hf-token (see docs/secrets.md)`,
    );
    expect(waiting.status?.placement).toBeUndefined();
    // The funding check still ran (an escrow already open would be found), but never with a
    // candidate to open one for.
    expect(secretiveChecks.length).toBeGreaterThan(0);
    expect(secretiveChecks.every((c) => c === 'none')).toBe(true);

    // The consumer grants the hub its Secret, as docs/secrets.md says: the next reconcile asks for
    // the escrow on the provider the trial found.
    const clients = admin();
    const rbac = loadKubeConfig(kubeconfig).makeApiClient(RbacAuthorizationV1Api);
    await clients.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'hf-token' }, stringData: { token: 'hf_value' } } });
    await rbac.createNamespacedRole({ namespace: NS, body: { metadata: { name: 'fedgpu-hub-job-secrets' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['hf-token'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'fedgpu-hub-job-secrets' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fedgpu-hub-job-secrets' },
        subjects: [{ kind: 'ServiceAccount', name: HUB_RELEASE, namespace: HUB_RELEASE_NAMESPACE }],
      },
    });
    await waitFor('an escrow asked for on the provider', () => {
      if (secretiveChecks.includes(provider)) return true;
      controller.enqueue(`${NS}/secretive`); // nothing wakes a job when RBAC changes: look again
      return undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const asked = await waitFor('the job to wait for that escrow', async () => {
      const j = await gpuJobClient(admin().customObjects).get('secretive', NS);
      return j.status?.conditions?.find((c) => c.type === 'Scheduled')?.reason === 'WaitingForEscrow' ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(asked.status?.conditions?.find((c) => c.type === 'Scheduled')?.message).toBe(`waiting for escrow: the test opens it for ${provider}`);
  });

  it('never gives an attempt more to spend than its open escrow holds, however much the spec was raised since', async () => {
    // The attack: open the escrow on maxTotal 1, raise maxTotal while it confirms. The Assign then
    // carried the new spec's GPU-seconds while the escrow paid the provider for the old amount.
    await offerGpusOnce();
    const body = parse(readFileSync(join(repoRoot, 'examples', 'gpujob-single.yaml'), 'utf8')) as GpuJob;
    const grown = await gpuJobClient(admin().customObjects, 'funding-race-test').create({ ...body, metadata: { name: 'grown', namespace: NS } });
    await waitFor('the Assign of the grown job', () => (coveredOf.has(grown.metadata.uid!) ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    const price = parseMoney('1.00'); // the provider's price
    expect(coveredOf.get(grown.metadata.uid!)).toBe(coveredGpuSeconds(GROWN_ESCROW, price)); // 360 GPU-seconds
    expect(coveredOf.get(grown.metadata.uid!)).toBeLessThan(coveredGpuSeconds(GROWN_SPEC_HOLD, price));
    const placed = await waitFor('its placement in status', async () => {
      const j = await gpuJobClient(admin().customObjects).get('grown', NS);
      return j.status?.placement ? j : undefined;
    }, { timeoutMs: 30_000 });
    expect(placed.status?.attempts?.at(-1)?.coveredGpuSeconds).toBe(coveredGpuSeconds(GROWN_ESCROW, price));
  });
});
