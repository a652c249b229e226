import { NodeV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseQuantity } from '../core/idle.js';

// The pod overhead of each RuntimeClass the owner runs job pods under (settings runtimeClassName,
// runtimeClassByProduct), read by name (the chart grants get on runtimeclasses) at start and every
// minute after: a replica's containers get its share less that overhead (core/isolation/share.ts).
// A class not yet read counts as no overhead, as before the agent read them; one the apiserver does
// not have stays so (its pods are refused by the apiserver anyway).

export interface Overhead {
  cpuMilli: number;
  memoryBytes: number;
}

const NONE: Overhead = { cpuMilli: 0, memoryBytes: 0 };
const REFRESH_MS = 60_000;

export class RuntimeClassOverheads {
  private readonly api: NodeV1Api;
  private readonly known = new Map<string, Overhead>();
  private timer: NodeJS.Timeout | undefined;

  constructor(kubeConfig: KubeConfig, private readonly names: readonly string[], private readonly logger: Logger) {
    this.api = kubeConfig.makeApiClient(NodeV1Api);
  }

  /** The overhead of `name`; none when unknown. */
  of(name: string | undefined): Overhead {
    return (name && this.known.get(name)) || NONE;
  }

  async refresh(): Promise<void> {
    await Promise.all([...new Set(this.names)].map(async (name) => {
      try {
        const podFixed = (await this.api.readRuntimeClass({ name })).overhead?.podFixed ?? {};
        this.known.set(name, {
          cpuMilli: Math.ceil(parseQuantity(podFixed.cpu ?? 0) * 1000),
          memoryBytes: Math.ceil(parseQuantity(podFixed.memory ?? 0)),
        });
      } catch (err) {
        if ((err as { code?: number }).code === 404) this.known.set(name, NONE);
        else this.logger.warn({ err, runtimeClass: name }, 'could not read a RuntimeClass\'s pod overhead; job pods of its pools get their share as if it had none');
      }
    }));
  }

  /** Reads them now, then every minute until stop(). */
  async start(): Promise<void> {
    if (this.names.length === 0) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
