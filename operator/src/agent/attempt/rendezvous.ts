import type { V1Container, V1EnvVar, V1NetworkPolicy, V1NetworkPolicyEgressRule, V1Pod, V1Service } from '@kubernetes/client-node';
import { EPOCH_LABEL, JOB_UID_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from '../pods/build.js';

// How the replicas of one attempt find each other (DESIGN §8a): a headless Service gives every
// replica of a gang a stable DNS name (pod hostname + subdomain), the attempt's NetworkPolicy joins
// exactly its pods on every port, and each replica gets the environment torchrun and
// torch.distributed read. A single replica has no peer to find: its master is localhost, and it
// gets no Service (whose Endpoints and EndpointSlice would be written and watched on the
// provider's cluster for nothing). Pure: the objects are applied by resources.ts.

/** Labelled on every per-attempt object (Service, NetworkPolicy, Secret) so resync can find strays. */
export const ATTEMPT_OBJECT_LABEL = 'fedgpu.io/attempt';
/** torch.distributed's default port; pods have their own IPs, so it never clashes. */
export const MASTER_PORT = 29500;

export interface GangShape {
  jobUid: string;
  epoch: number;
  replicas: number;
  gpusPerReplica: number;
}

/** `fj-<first 13 of the uid>-e<epoch>`: the attempt's Service name, and the stem of its pods' names. */
export function attemptName(jobUid: string, epoch: number): string {
  const short = jobUid.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 13);
  return `fj-${short}-e${epoch}`;
}

/** The hostname of a replica's pod: the pod name, so DNS and `kubectl get pods` agree. */
export const replicaHostname = (jobUid: string, epoch: number, replica: number) => `${attemptName(jobUid, epoch)}-r${replica}`;

/** `<hostname>.<service>.<namespace>.svc`: resolves through the pod's search path on any cluster domain. */
export function replicaAddress(shape: GangShape, replica: number, namespace: string): string {
  return `${replicaHostname(shape.jobUid, shape.epoch, replica)}.${attemptName(shape.jobUid, shape.epoch)}.${namespace}.svc`;
}

/** Labels that select exactly the attempt's pods (set by the agent, never by the consumer's template). */
export function attemptSelector(jobUid: string, epoch: number): Record<string, string> {
  return { [JOB_UID_LABEL]: jobUid, [EPOCH_LABEL]: String(epoch) };
}

/** Labels of the per-attempt objects. */
export function attemptObjectLabels(jobUid: string, epoch: number): Record<string, string> {
  return { ...attemptSelector(jobUid, epoch), [ATTEMPT_OBJECT_LABEL]: attemptName(jobUid, epoch), [MANAGED_BY_LABEL]: MANAGED_BY };
}

/**
 * The environment of one replica. Follows the convention of Kubeflow's PyTorchJob so code written
 * for it runs unchanged:
 * - `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE` (= replicas), `RANK` (= replica) for one process per
 *   pod (`init_process_group("nccl")` with the env:// default);
 * - `NODE_RANK` and torchrun's own `PET_*` variables (`PET_NNODES` = replicas, `PET_NPROC_PER_NODE`
 *   = gpusPerReplica, `PET_NODE_RANK`, `PET_MASTER_ADDR`, `PET_MASTER_PORT`), so a bare
 *   `torchrun train.py` starts replicas × gpusPerReplica workers; torchrun then sets each worker's
 *   own RANK/WORLD_SIZE/LOCAL_RANK over ours;
 * - `FEDGPU_*` for anything else (Ray, DeepSpeed hostfiles): the peers' stable names and the counts.
 */
export function rendezvousEnv(shape: GangShape, replica: number, namespace: string): V1EnvVar[] {
  const gang = isGang(shape);
  const master = gang ? replicaAddress(shape, 0, namespace) : SOLO_MASTER;
  const peers = gang ? Array.from({ length: shape.replicas }, (_, r) => replicaAddress(shape, r, namespace)) : [SOLO_MASTER];
  const vars: [string, string | number][] = [
    ['MASTER_ADDR', master],
    ['MASTER_PORT', MASTER_PORT],
    ['WORLD_SIZE', shape.replicas],
    ['RANK', replica],
    ['NODE_RANK', replica],
    ['PET_NNODES', shape.replicas],
    ['PET_NPROC_PER_NODE', shape.gpusPerReplica],
    ['PET_NODE_RANK', replica],
    ['PET_MASTER_ADDR', master],
    ['PET_MASTER_PORT', MASTER_PORT],
    ['FEDGPU_GPUS_PER_REPLICA', shape.gpusPerReplica],
    ['FEDGPU_WORLD_GPUS', shape.replicas * shape.gpusPerReplica],
    ['FEDGPU_RENDEZVOUS_SERVICE', gang ? `${attemptName(shape.jobUid, shape.epoch)}.${namespace}.svc` : ''],
    ['FEDGPU_PEERS', peers.join(',')],
  ];
  return vars.map(([name, value]) => ({ name, value: String(value) }));
}

/** Whether the attempt has peers to find (and so a Service to find them by). */
export const isGang = (shape: Pick<GangShape, 'replicas'>) => shape.replicas > 1;

/** A single replica's master: its own pod (torchrun's standalone default). */
const SOLO_MASTER = 'localhost';

/** Names every rendezvous variable; a consumer's template cannot override them. */
export const RENDEZVOUS_ENV_NAMES = rendezvousEnv({ jobUid: 'x', epoch: 1, replicas: 1, gpusPerReplica: 1 }, 0, 'x').map((e) => e.name);

/**
 * The replica's pod joined to the rendezvous: stable hostname (under the attempt's Service in a
 * gang), the environment on every container (ours win over the template's), and the gang's labels.
 */
export function joinRendezvous(pod: V1Pod, shape: GangShape, replica: number, namespace: string): V1Pod {
  const env = rendezvousEnv(shape, replica, namespace);
  const names = new Set(env.map((e) => e.name));
  const spec = pod.spec!;
  const joined = (c: V1Container): V1Container => ({ ...c, env: [...(c.env ?? []).filter((e) => !names.has(e.name)), ...env] });
  return {
    ...pod,
    spec: {
      ...spec,
      hostname: replicaHostname(shape.jobUid, shape.epoch, replica),
      ...(isGang(shape) ? { subdomain: attemptName(shape.jobUid, shape.epoch) } : {}),
      containers: spec.containers.map(joined),
      // An init container that waits for the master (nc -z $MASTER_ADDR $MASTER_PORT) needs it too.
      ...(spec.initContainers?.length ? { initContainers: spec.initContainers.map(joined) } : {}),
    },
  };
}

/**
 * Headless Service over the attempt's pods. Not-ready addresses are published: replicas look each
 * other up while starting, before any readiness probe passes.
 */
export function headlessService(jobUid: string, epoch: number, namespace: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: attemptName(jobUid, epoch), namespace, labels: attemptObjectLabels(jobUid, epoch) },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: attemptSelector(jobUid, epoch),
      ports: [{ name: 'rendezvous', port: MASTER_PORT, targetPort: MASTER_PORT, protocol: 'TCP' }],
    },
  };
}

/**
 * The attempt's one NetworkPolicy, named like the attempt: its pods may reach each other on every
 * port and protocol, and nothing else may reach them; beyond the gang they may send only what
 * `egress` grants (egress.ts: the job's need, checked against the pool's offer). Other tenants'
 * pods in the namespace match neither side (they carry another job uid or epoch, which only the
 * agent sets). One object, not one per concern: each is a write and a delete on the provider's
 * apiserver per attempt, and policies only add to each other.
 */
export function attemptPolicy(jobUid: string, epoch: number, namespace: string, egress: V1NetworkPolicyEgressRule[]): V1NetworkPolicy {
  const self = { podSelector: { matchLabels: attemptSelector(jobUid, epoch) } };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: attemptName(jobUid, epoch), namespace, labels: attemptObjectLabels(jobUid, epoch) },
    spec: {
      podSelector: { matchLabels: attemptSelector(jobUid, epoch) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [self] }],
      egress: [{ to: [self] }, ...egress],
    },
  };
}
