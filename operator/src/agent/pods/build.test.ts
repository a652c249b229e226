import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { attemptState } from './status.js';
import { buildJobPods, podName, PodSecurityError, ShareExceededError, type Assignment } from './build.js';

const template = { metadata: { annotations: { 'fedgpu.io/sim-run-for': '5s' }, labels: { team: 'a' } }, spec: { containers: [{ name: 'main', image: 'train' }] } };
const assignment: Assignment = {
  jobUid: '6f1c2b9e-7a1d-4c55-9b1e-1234567890ab',
  epoch: 2,
  podTemplates: [template, template],
  nodeNames: ['h100-0', 'h100-1'],
  gpusPerReplica: 4,
  checkpointDir: 's3://ckpt/run',
  gracePeriodSeconds: 60,
};

describe('buildJobPods', () => {
  const pods = buildJobPods(assignment, 'fedgpu-jobs');

  describe('CPU and memory: each replica within its share of its node', () => {
    // 4 of 8 GPUs on a 64-CPU, 512Gi node: 32 CPU and 256Gi; h100-1 has only 2 GPUs left.
    const shareFor = (node: string, gpus: number) =>
      node === 'h100-1' && gpus > 2 ? undefined : { cpuMilli: (64_000 * gpus) / 8, memoryBytes: (512 * 1024 ** 3 * gpus) / 8, gpus, ofGpus: 8 };
    const one = { ...assignment, podTemplates: [template], nodeNames: ['h100-0'] };

    it('puts limits and equal requests on a template that has none', () => {
      const [pod] = buildJobPods(one, 'ns', { shareFor });
      expect(pod!.spec?.containers[0]?.resources).toEqual({
        limits: { cpu: '32000m', memory: '262144Mi', 'nvidia.com/gpu': '4' },
        requests: { cpu: '32000m', memory: '262144Mi', 'nvidia.com/gpu': '4' },
      });
    });

    it('refuses a replica that asks more than its share, or a node without the GPUs left', () => {
      const greedy = { metadata: {}, spec: { containers: [{ name: 'main', image: 'train', resources: { limits: { memory: '300Gi' } } }] } };
      expect(() => buildJobPods({ ...one, podTemplates: [greedy] }, 'ns', { shareFor })).toThrow(ShareExceededError);
      expect(() => buildJobPods({ ...one, podTemplates: [greedy] }, 'ns', { shareFor })).toThrow(
        "replica 0 on node h100-0: memory limits of the containers add up to 307200Mi (main 307200Mi): more than this replica's share of its node (4 of the 8 GPU(s) it has for jobs), 262144Mi",
      );
      expect(() => buildJobPods(assignment, 'ns', { shareFor })).toThrow('replica 1: node h100-1 has fewer than 4 GPU(s) left to jobs');
    });

    it('cuts limits over a share that moved for an attempt already running, and never builds a pod without its bound', () => {
      const greedy = { metadata: {}, spec: { containers: [{ name: 'main', image: 'train', resources: { limits: { memory: '300Gi' } } }] } };
      const [pod] = buildJobPods({ ...one, podTemplates: [greedy] }, 'ns', { shareFor, clampToShare: true });
      expect(pod!.spec?.containers[0]?.resources?.limits?.memory).toBe('262144Mi');
      // A running attempt's replica on a node with no share left is not rebuilt unbounded (a hostile resync included).
      expect(() => buildJobPods(assignment, 'ns', { shareFor, clampToShare: true })).toThrow(ShareExceededError);
      expect(() => buildJobPods({ ...one, gpusPerReplica: 0 }, 'ns', { shareFor: (n, g) => (g < 1 ? undefined : shareFor(n, g)), clampToShare: true })).toThrow(ShareExceededError);
    });
  });

  describe('ephemeral storage: each replica within its share of its node disk', () => {
    // 4 of 8 GPUs on a node with 400Gi of allocatable ephemeral storage: 200Gi.
    const shareFor = (_node: string, gpus: number) => ({ cpuMilli: 32_000, memoryBytes: 256 * 1024 ** 3, gpus, ofGpus: 8, diskBytes: (400 * 1024 ** 3 * gpus) / 8 });
    const one = { ...assignment, podTemplates: [template], nodeNames: ['h100-0'] };
    const sidecars = (n: number, limit: string) => ({ metadata: {}, spec: { containers: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, image: 'train', resources: { limits: { 'ephemeral-storage': limit } } })) } });

    it('gives a container without a limit the LimitRange default, and the agent\'s own default when set', () => {
      const [pod] = buildJobPods(one, 'ns', { shareFor });
      expect(pod!.spec?.containers[0]?.resources?.limits?.['ephemeral-storage']).toBe('20480Mi');
      const [own] = buildJobPods(one, 'ns', { shareFor, diskBounds: { defaultBytes: 5 * 1024 ** 3, maxBytes: 50 * 1024 ** 3 } });
      expect(own!.spec?.containers[0]?.resources?.limits?.['ephemeral-storage']).toBe('5120Mi');
    });

    it('refuses a replica whose containers add up past its share of the disk, each within the LimitRange max (the attack: fill the node, evict the neighbours)', () => {
      expect(() => buildJobPods({ ...one, podTemplates: [sidecars(10, '200Gi')] }, 'ns', { shareFor })).toThrow(
        /^replica 0 on node h100-0: ephemeral-storage limits of the containers add up to 2000Gi .*more than this replica's share of its node's ephemeral storage, 200Gi$/,
      );
      expect(buildJobPods({ ...one, podTemplates: [sidecars(4, '50Gi')] }, 'ns', { shareFor })).toHaveLength(1);
      // A node that does not say its disk: the LimitRange alone, as before.
      const [unsaid] = buildJobPods({ ...one, podTemplates: [sidecars(10, '200Gi')] }, 'ns', { shareFor: (n, g) => ({ ...shareFor(n, g), diskBytes: undefined }) });
      expect(unsaid!.spec?.containers).toHaveLength(10);
    });
  });

  it('names pods deterministically per job, epoch and replica', () => {
    expect(pods.map((p) => p.metadata?.name)).toEqual(['fj-6f1c2b9e7a1d4-e2-r0', 'fj-6f1c2b9e7a1d4-e2-r1']);
    expect(buildJobPods(assignment, 'fedgpu-jobs')).toEqual(pods);
    expect(podName(assignment.jobUid, 3, 0)).not.toBe(podName(assignment.jobUid, 2, 0));
  });

  it('asks for the GPUs, tolerates the GPU taint and requires the chosen node', () => {
    const pod = pods[1]!;
    expect(pod.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('4');
    expect(pod.spec?.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields?.[0]?.values).toEqual(['h100-1']);
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.terminationGracePeriodSeconds).toBe(60);
  });

  it('keeps annotations and labels, and hands every attempt the checkpoint location', () => {
    const pod = pods[0]!;
    expect(pod.metadata?.annotations?.['fedgpu.io/sim-run-for']).toBe('5s');
    expect(pod.metadata?.labels).toMatchObject({ team: 'a', 'fedgpu.io/epoch': '2', 'fedgpu.io/replica': '0' });
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'FEDGPU_CHECKPOINT_DIR', value: 's3://ckpt/run' });
    expect(pod.spec?.containers[0]?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true });
  });

  it.each([
    ['hostNetwork', { containers: [{ name: 'c', image: 'x' }], hostNetwork: true }, /template\.spec\.hostNetwork: host namespaces/],
    ['hostPath', { containers: [{ name: 'c', image: 'x' }], volumes: [{ name: 'v', hostPath: { path: '/' } }] }, /hostPath/],
    ['privileged', { containers: [{ name: 'c', image: 'x', securityContext: { privileged: true } }] }, /privileged/],
    ['capabilities', { containers: [{ name: 'c', image: 'x', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] }, /capabilities\.add/],
    ['hostPort', { containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 80, hostPort: 80 }] }] }, /hostPort/],
  ])('refuses %s with the field and the reason', (_n, spec, message) => {
    const bad = { ...assignment, podTemplates: [{ spec }], nodeNames: ['n'] };
    expect(() => buildJobPods(bad, 'ns')).toThrow(PodSecurityError);
    expect(() => buildJobPods(bad, 'ns')).toThrow(message);
  });

  it('sets the pool\'s runtime class and never passes the hub\'s GPU env through', () => {
    const hostileHub = { ...assignment, env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }, { name: 'FEDGPU_JOB', value: 'ns/j' }] };
    const [built] = buildJobPods(hostileHub, 'ns', { runtimeClassFor: (node) => (node === 'h100-0' ? 'gvisor' : undefined) });
    expect(built!.spec?.runtimeClassName).toBe('gvisor');
    const names = built!.spec!.containers[0]!.env!.map((e) => e.name);
    expect(names).toContain('FEDGPU_JOB');
    expect(names).not.toContain('NVIDIA_VISIBLE_DEVICES');
  });

  it('tells the NVIDIA runtime to show no GPU to every container but the billed one, whatever its image says', () => {
    // A sidecar and an init container FROM nvidia/cuda carry NVIDIA_VISIBLE_DEVICES=all in their
    // image; without a pod env saying otherwise they would see every GPU of the node.
    const withSidecar = { ...assignment, podTemplates: [{ spec: { initContainers: [{ name: 'fetch', image: 'cuda-tools' }], containers: [{ name: 'main', image: 'train' }, { name: 'side', image: 'cuda-tools' }] } }], nodeNames: ['n'] };
    const [built] = buildJobPods(withSidecar, 'ns');
    const visible = (env: { name: string; value?: string }[] | undefined) => env?.filter((e) => e.name === 'NVIDIA_VISIBLE_DEVICES');
    expect(visible(built!.spec!.containers[0]!.env)).toEqual([]); // the device plugin's value stands
    expect(built!.spec!.containers[0]!.resources?.limits?.['nvidia.com/gpu']).toBe('4');
    expect(visible(built!.spec!.containers[1]!.env)).toEqual([{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }]);
    expect(visible(built!.spec!.initContainers![0]!.env)).toEqual([{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'void' }]);
  });
});

const pod = (name: string, phase: string, start: string, end?: string, exitCode?: number, reason?: string): V1Pod => ({
  metadata: { name },
  spec: { nodeName: 'n', containers: [] },
  status: {
    phase,
    reason,
    containerStatuses: [{
      name: 'main', image: 'x', imageID: '', ready: phase === 'Running', restartCount: 0,
      state: end ? { terminated: { exitCode: exitCode ?? 0, startedAt: new Date(start), finishedAt: new Date(end) } } : { running: { startedAt: new Date(start) } },
    }],
  },
});

describe('attemptState', () => {
  const t0 = '2026-11-25T12:00:00Z';
  it('is Running while every replica runs, and counts GPU-seconds up to now', () => {
    const s = attemptState([pod('a', 'Running', t0), pod('b', 'Running', t0)], 2, 4, Date.parse(t0) + 10_000);
    expect(s).toMatchObject({ phase: 'Running', gpuSeconds: 80 });
  });
  it('is Succeeded when every replica succeeded, with exact GPU-seconds', () => {
    const s = attemptState([pod('a', 'Succeeded', t0, '2026-11-25T12:00:30Z'), pod('b', 'Succeeded', t0, '2026-11-25T12:00:20Z')], 2, 2, 0);
    expect(s).toMatchObject({ phase: 'Succeeded', gpuSeconds: 100 });
  });
  it('blames the user for a non-zero exit', () => {
    const s = attemptState([pod('a', 'Failed', t0, '2026-11-25T12:00:05Z', 3), pod('b', 'Running', t0)], 2, 1, Date.parse(t0) + 5_000);
    expect(s).toMatchObject({ phase: 'Failed', reason: 'ContainerFailed', exitCode: 3 });
  });
  it('reports an eviction as the provider\'s cause', () => {
    const s = attemptState([pod('a', 'Failed', t0, '2026-11-25T12:00:05Z', 137, 'Evicted')], 1, 1, 0);
    expect(s).toMatchObject({ phase: 'Failed', reason: 'Evicted' });
  });
  it('counts a container that never started (startedAt 1970) from its pod\'s start, not from 1970', () => {
    const neverStarted: V1Pod = {
      metadata: { name: 'a' },
      spec: { nodeName: 'n', containers: [] },
      status: {
        phase: 'Failed',
        startTime: new Date(t0),
        containerStatuses: [{
          name: 'main', image: 'x', imageID: '', ready: false, restartCount: 0,
          state: { terminated: { exitCode: 128, reason: 'StartError', startedAt: new Date(0), finishedAt: new Date(Date.parse(t0) + 2_000) } },
        }],
      },
    };
    expect(attemptState([neverStarted], 1, 16, 0)).toMatchObject({ phase: 'Failed', gpuSeconds: 32 });
  });
  it('is Pending until every replica runs', () => {
    expect(attemptState([pod('a', 'Running', t0)], 2, 1, Date.parse(t0)).phase).toBe('Pending');
  });

  describe('while Pending, says what bound pods wait for when the job itself can cause it', () => {
    type Status = NonNullable<V1Pod['status']>;
    const waiting = (name: string, reason: string, message?: string) => ({ name, image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, ...(message ? { message } : {}) } } });
    const pending = (name: string, status: Partial<Status>, spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod => ({
      metadata: { name }, spec: { nodeName: 'n', containers: [{ name: 'main' }], ...spec }, status: { phase: 'Pending', ...status },
    });
    const state = (...pods: V1Pod[]) => attemptState(pods, pods.length, 1, Date.parse(t0));

    it('an image that cannot be pulled, in any pod, before anything else', () => {
      const s = state(pod('a', 'Running', t0), pending('b', { containerStatuses: [waiting('main', 'ErrImagePull', 'failed to pull: not found')] }));
      expect(s).toMatchObject({ phase: 'Pending', reason: 'ImagePullFailed', message: 'pod b container main: ErrImagePull: failed to pull: not found' });
      expect(state(pending('a', { initContainerStatuses: [waiting('fetch', 'ImagePullBackOff')], containerStatuses: [waiting('main', 'PodInitializing')] })).reason).toBe('ImagePullFailed');
    });
    it('a container the runtime would not create', () => {
      expect(state(pending('a', { containerStatuses: [waiting('main', 'CreateContainerConfigError', 'secret not found')] })).reason).toBe('ContainerConfigError');
    });
    it('an init container not finished (a sidecar that runs does not count)', () => {
      const init = { name: 'fetch', image: 'x', imageID: '', ready: false, restartCount: 0, state: { running: { startedAt: new Date(t0) } } };
      const sidecar = { ...init, name: 'proxy' };
      const s = state(pending('a', { initContainerStatuses: [init], containerStatuses: [waiting('main', 'PodInitializing')] }, { initContainers: [{ name: 'fetch' }] }));
      expect(s).toMatchObject({ reason: 'InitContainersNotDone', message: 'pod a init container fetch has not finished' });
      const started = state(pending('a', { initContainerStatuses: [{ ...sidecar, started: true }], containerStatuses: [waiting('main', 'ContainerCreating')] }, { initContainers: [{ name: 'proxy', restartPolicy: 'Always' }] }));
      expect(started.reason).toBe('ContainersNotStarted');
      // A sidecar not started yet (crashing, or its startupProbe not passed) holds the pod: the job's.
      const notStarted = state(pending('a', { initContainerStatuses: [{ ...sidecar, started: false }], containerStatuses: [waiting('main', 'PodInitializing')] }, { initContainers: [{ name: 'proxy', restartPolicy: 'Always' }] }));
      expect(notStarted).toMatchObject({ reason: 'InitContainersNotDone', message: 'pod a init container proxy has not finished' });
    });
    it('the kubelet still creating the containers, said in a bounded message however large the gang', () => {
      expect(state(pending('a', { containerStatuses: [waiting('main', 'ContainerCreating')] })).reason).toBe('ContainersNotStarted');
      const gang = Array.from({ length: 500 }, (_, i) => pending(`a-very-long-job-name-for-a-large-gang-${i}`, { containerStatuses: [waiting('main', 'ContainerCreating')] }));
      const s = state(...gang);
      expect(s.reason).toBe('ContainersNotStarted');
      expect(s.message!.length).toBeLessThanOrEqual(400);
      expect(s.message).toMatch(/^500 pod\(s\) bound/);
    });
    it('a container the runtime failed to create is not the job\'s to answer for (the runtime or its GPU hook may be the cause)', () => {
      expect(state(pending('a', { containerStatuses: [waiting('main', 'CreateContainerError', 'nvidia-container-cli: initialization error')] })).reason).toBe('ContainersNotStarted');
    });
    it('a pod that asks more cpu, memory or ephemeral storage than its node holds at all', () => {
      const node = { metadata: { name: 'gpu-0' }, status: { allocatable: { cpu: '64', memory: '512Gi', 'ephemeral-storage': '1Ti', 'nvidia.com/gpu': '8' } } };
      const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['gpu-0'] }] }] } } };
      const unschedulable = (name: string, requests: Record<string, string>, message: string) => ({
        metadata: { name }, spec: { affinity, containers: [{ name: 'main', resources: { requests } }] },
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] },
      }) as V1Pod;
      const judge = (...pods: V1Pod[]) => attemptState(pods, pods.length, 1, Date.parse(t0), [node]);
      const huge = judge(unschedulable('a', { cpu: '100000' }, '0/65 nodes are available: 1 Insufficient cpu, 64 node(s) didn\'t match Pod\'s node affinity/selector.'));
      expect(huge).toMatchObject({ phase: 'Pending', reason: 'InsufficientResources' });
      expect(huge.message).toContain('pod a asks more cpu than node gpu-0 holds: 0/65 nodes are available: 1 Insufficient cpu');
      expect(judge(unschedulable('a', { memory: '2Ti' }, '0/1 nodes are available: 1 Insufficient memory.')).reason).toBe('InsufficientResources');
      // Within what the node holds, short only of what the owner's pods leave: the owner's doing, not excused.
      expect(judge(unschedulable('a', { cpu: '32' }, '0/1 nodes are available: 1 Insufficient cpu.')).reason).toBeUndefined();
      // Short of GPUs too, or for a reason the template cannot cause, or no node known: not excused.
      expect(judge(unschedulable('a', { cpu: '100000' }, '0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient nvidia.com/gpu.')).reason).toBeUndefined();
      expect(judge(unschedulable('a', { cpu: '1' }, '0/1 nodes are available: 1 node(s) had untolerated taint {owner: only}.')).reason).toBeUndefined();
      expect(attemptState([unschedulable('a', { cpu: '100000' }, '1 Insufficient cpu')], 1, 1, Date.parse(t0)).reason).toBeUndefined();
      // One pod that asks too much excuses no other pod of the gang.
      expect(judge(unschedulable('a', { cpu: '100000' }, '1 Insufficient cpu'), unschedulable('b', { cpu: '1' }, '1 node(s) had untolerated taint {owner: only}')).reason).toBeUndefined();
    });
    it('nothing, where only the provider can be the cause: a pod not bound, one the kubelet says nothing of, or one missing', () => {
      expect(state(pending('a', { containerStatuses: [waiting('main', 'ErrImagePull')] }, { nodeName: undefined })).reason).toBeUndefined();
      expect(state(pending('a', {})).reason).toBeUndefined();
      expect(attemptState([pending('a', { containerStatuses: [waiting('main', 'ErrImagePull')] })], 2, 1, Date.parse(t0)).reason).toBeUndefined();
    });
  });
});
