import { CoreV1Api } from '@kubernetes/client-node';
import { EPOCH_LABEL, JOB_UID_LABEL } from '../agent/pods/build.js';
import type { GpuJob } from '../api/types.js';
import type { CustomObjectClient } from '../runtime/kube.js';
import type { JobRecord, PodSample } from './history.js';
import { JOB_NAMESPACE, type ChaosTopology } from './topology.js';

// Watching a run from outside: every sweep lists the job pods running in each provider cluster
// (for the one-live-epoch check) and the hub's GpuJobs (the last state of a deleted job is what it
// looked like just before it vanished). A cluster whose apiserver is down is skipped that sweep.

export class Observer {
  readonly pods: PodSample[] = [];
  sweeps = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly topology: ChaosTopology,
    private readonly jobs: CustomObjectClient<GpuJob>,
    private readonly records: Map<string, JobRecord>,
    private readonly intervalMs = 1_500,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.sweep();
        await new Promise((r) => setTimeout(r, this.intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  async sweep(): Promise<void> {
    const at = Date.now();
    this.sweeps++;
    await Promise.all(
      this.topology.providers.map(async (p) => {
        try {
          const core = this.topology.testbed.cluster(p.cluster).kubeConfig.makeApiClient(CoreV1Api);
          const list = await core.listPodForAllNamespaces({ labelSelector: JOB_UID_LABEL });
          for (const pod of list.items) {
            if (pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp) continue;
            const labels = pod.metadata?.labels ?? {};
            this.pods.push({ at, provider: p.name, jobUid: labels[JOB_UID_LABEL]!, epoch: Number(labels[EPOCH_LABEL]), pod: pod.metadata!.name! });
          }
        } catch {
          // apiserver restarting: no sample from this cluster now
        }
      }),
    );
    try {
      const list = await this.jobs.list({ namespace: JOB_NAMESPACE });
      for (const job of list.items) {
        const record = this.records.get(job.metadata.name!);
        if (record && (!record.uid || record.uid === job.metadata.uid)) record.lastSeen = job;
      }
    } catch {
      // hub apiserver busy: next sweep
    }
  }
}
