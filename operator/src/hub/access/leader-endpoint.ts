// Only the leader holds the agents' streams, so only the leader can serve logs, exec and
// port-forward (docs/access.md). The chart's access Service therefore has no selector: while a
// replica leads it publishes its own pod address as the Service's one EndpointSlice, and when it
// hands over it withdraws it, as kube-apiserver does for the `kubernetes` Service. A stand-by is
// never an endpoint, so the apiserver's proxied requests reach the leader without retries; between
// a leader's loss and its successor's first write they reach no one (there is no tunnel to serve).
import { isIP } from 'node:net';
import { DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { sleep } from '../../runtime/clock.js';
import { cidrContains, parseCidr } from '../../core/egress.js';
import { isConflict, isNotFound, statusCodeOf } from '../../runtime/kube.js';

/** Ties the slice to its Service (kube-proxy and the aggregator look it up by this label). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Anything but the EndpointSlice controller's own value: that controller then leaves the slice alone. */
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'fedgpu-hub';
/** The access Service's port name (charts/fedgpu/templates/hub/access.yaml). */
export const ACCESS_PORT_NAME = 'access';

export interface AccessEndpoint {
  /** The Service the APIService routes to (the chart's `<fullname>-access`), in `namespace`. */
  service: string;
  namespace: string;
  /** This replica's pod IP. */
  address: string;
  /** Where this replica serves the access API. */
  port: number;
  /** This replica's pod, named in the endpoint's targetRef. */
  podName?: string;
}

/** The one slice every leader of this hub overwrites. */
export const leaderSliceName = (service: string): string => `${service}-leader`;

/**
 * Why `address` cannot be an endpoint, or undefined. The apiserver refuses loopback, link-local
 * and unspecified endpoint addresses; saying so at start beats a leader that cannot publish.
 */
export function endpointAddressProblem(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  const special = specialRange(address);
  return special ? `${address} is ${special}: an EndpointSlice cannot name it (give the pod IP)` : undefined;
}

/** Ranges the apiserver refuses as endpoint addresses, and what each is. */
const SPECIAL_RANGES: readonly (readonly [string, string])[] = [
  ['127.0.0.0/8', 'a loopback address'],
  ['0.0.0.0/8', 'an unspecified address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['::1/128', 'a loopback address'],
  ['::/128', 'an unspecified address'],
  ['fe80::/10', 'a link-local address'],
  ['ff00::/8', 'a multicast address'],
];

/** What special range `address` (one isIP accepts) is in, an IPv4-mapped IPv6 address judged as the IPv4 it maps. */
function specialRange(address: string): string | undefined {
  const v6 = isIP(address) === 6;
  // The parser of core/egress.ts takes hex groups only: in IPv6 a zone goes, a dotted IPv4 tail becomes two groups.
  const text = v6
    ? address.split('%')[0]!.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
      `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`)
    : address;
  const host = `${text}/${v6 ? 128 : 32}`;
  if (cidrContains('::ffff:0:0/96', host)) {
    const bits = parseCidr(host)!.bits;
    return specialRange([24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 255n)).join('.'));
  }
  return SPECIAL_RANGES.find(([range]) => cidrContains(range, host))?.[1];
}

/** The Service's EndpointSlice with this replica as its one ready endpoint. */
export function leaderSlice(e: AccessEndpoint): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: leaderSliceName(e.service),
      namespace: e.namespace,
      labels: { [SERVICE_NAME_LABEL]: e.service, [MANAGED_BY_LABEL]: MANAGED_BY },
    },
    addressType: isIP(e.address) === 6 ? 'IPv6' : 'IPv4',
    endpoints: [
      {
        addresses: [e.address],
        conditions: { ready: true, serving: true, terminating: false },
        ...(e.podName ? { targetRef: { kind: 'Pod', namespace: e.namespace, name: e.podName } } : {}),
      },
    ],
    ports: [{ name: ACCESS_PORT_NAME, port: e.port, protocol: 'TCP' }],
  };
}

/** Whether `slice` already says what `want` says (labels, address type, endpoint, port). */
export function sliceMatches(slice: V1EndpointSlice, want: V1EndpointSlice): boolean {
  const labels = slice.metadata?.labels ?? {};
  const wantLabels = want.metadata?.labels ?? {};
  if (Object.entries(wantLabels).some(([k, v]) => labels[k] !== v)) return false;
  if (slice.addressType !== want.addressType) return false;
  const simplify = (s: V1EndpointSlice) => ({
    endpoints: (s.endpoints ?? []).map((ep) => ({
      addresses: ep.addresses,
      ready: ep.conditions?.ready ?? null,
      serving: ep.conditions?.serving ?? null,
      terminating: ep.conditions?.terminating ?? null,
      target: ep.targetRef ? `${ep.targetRef.kind}/${ep.targetRef.namespace}/${ep.targetRef.name}` : null,
    })),
    ports: (s.ports ?? []).map((p) => ({ name: p.name ?? null, port: p.port ?? null, protocol: p.protocol ?? 'TCP' })),
  });
  return JSON.stringify(simplify(slice)) === JSON.stringify(simplify(want));
}

/**
 * Whether the slice names this replica (its address and, when both say one, its pod): only then is
 * it this replica's to withdraw.
 */
export function namesReplica(slice: V1EndpointSlice, address: string, podName?: string): boolean {
  return (slice.endpoints ?? []).some((ep) => ep.addresses.includes(address) && (!podName || !ep.targetRef?.name || ep.targetRef.name === podName));
}

export type PublishOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'stopped';

export interface AccessEndpointPublisherOptions {
  kubeConfig: KubeConfig;
  endpoint: AccessEndpoint;
  logger: Logger;
  /**
   * While leading, how often the slice is read and put right if someone changed it (a replica
   * that lost the Lease while its write was in flight, a person). Default 5 s.
   */
  reassertMs?: number;
  /** Whether the slice names this replica now, after each read or write (a metric). */
  onPublished?: (published: boolean) => void;
}

/**
 * Publishes the leader's access endpoint: `run` is a leader task (hub/roles.ts). The chart makes
 * the slice and grants only get and update on it by name; without it the publisher tries to create
 * it (a hub run outside the chart) and says what is missing when it may not.
 */
export class AccessEndpointPublisher {
  private readonly api: DiscoveryV1Api;
  private readonly name: string;
  /** Set by close(): nothing is published any more. */
  private closed = false;
  /** The publish under way, which close() lets land before it withdraws. */
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: AccessEndpointPublisherOptions) {
    const problem = endpointAddressProblem(opts.endpoint.address);
    if (problem) throw new Error(`the access endpoint: ${problem}`);
    this.api = opts.kubeConfig.makeApiClient(DiscoveryV1Api);
    this.name = leaderSliceName(opts.endpoint.service);
  }

  /** While `signal` is live: publish, then re-read every `reassertMs`; on abort, withdraw. */
  readonly run = async (signal: AbortSignal): Promise<void> => {
    const { logger } = this.opts;
    let backoffMs = 500;
    while (!signal.aborted && !this.closed) {
      let waitMs = this.opts.reassertMs ?? 5_000;
      try {
        const publishing = this.publish(signal);
        this.publishing = publishing.catch(() => undefined);
        const outcome = await publishing;
        this.opts.onPublished?.(outcome === 'created' || outcome === 'updated' || outcome === 'unchanged');
        if (outcome === 'created' || outcome === 'updated') logger.info({ slice: this.name, address: this.opts.endpoint.address, outcome }, 'access endpoint published: the access API now reaches this replica');
        if (outcome === 'conflict') waitMs = 100; // another write landed between our read and ours: read again
        backoffMs = 500;
      } catch (err) {
        this.opts.onPublished?.(false);
        logger.error({ err: err instanceof Error ? err.message : err, slice: this.name }, 'could not publish the access endpoint; retrying');
        waitMs = backoffMs;
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
      await sleep(waitMs, signal);
    }
    this.opts.onPublished?.(false);
    try {
      if (await this.withdraw()) logger.info({ slice: this.name }, 'access endpoint withdrawn');
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : err, slice: this.name }, 'could not withdraw the access endpoint (the next leader overwrites it)');
    }
  };

  /**
   * First step of a graceful stop, before the access API stops listening: withdraws the endpoint
   * while this replica still leads, and publishes nothing after. The apiserver then stops sending
   * requests here before there is no one to answer them.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.publishing;
    this.opts.onPublished?.(false);
    try {
      if (await this.withdraw()) this.opts.logger.info({ slice: this.name }, 'access endpoint withdrawn');
    } catch (err) {
      this.opts.logger.warn({ err: err instanceof Error ? err.message : err, slice: this.name }, 'could not withdraw the access endpoint (the next leader overwrites it)');
    }
  }

  /**
   * Makes the slice name this replica alone. `signal` is the leadership: checked again right
   * before the write, so a replica that lost the Lease while reading does not overwrite the
   * successor it read.
   */
  async publish(signal?: AbortSignal): Promise<PublishOutcome> {
    const { namespace } = this.opts.endpoint;
    const want = leaderSlice(this.opts.endpoint);
    const current = await this.read();
    if (signal?.aborted || this.closed) return 'stopped';
    try {
      if (!current) {
        await this.create(want);
        return 'created';
      }
      if (sliceMatches(current, want)) return 'unchanged';
      if (current.addressType !== want.addressType) {
        // addressType cannot change: the slice must be made again for the other family.
        throw new Error(`EndpointSlice ${namespace}/${this.name} holds ${current.addressType} addresses and this replica's is ${want.addressType} (${this.opts.endpoint.address}): set the chart's hub.access.endpointAddressType to ${want.addressType} (delete this slice first: its address type cannot change)`);
      }
      await this.api.replaceNamespacedEndpointSlice({ name: this.name, namespace, body: this.rewrite(current, want.endpoints) });
      return 'updated';
    } catch (err) {
      if (isConflict(err)) return 'conflict'; // created meanwhile, or changed since the read
      throw err;
    }
  }

  /**
   * Empties the slice if it still names this replica (a successor may already have written its own:
   * that one stays). The write is conditional on the version read, so a successor's write in
   * between is never lost. True when withdrawn.
   */
  async withdraw(): Promise<boolean> {
    const current = await this.read();
    if (!current || !namesReplica(current, this.opts.endpoint.address, this.opts.endpoint.podName)) return false;
    try {
      await this.api.replaceNamespacedEndpointSlice({ name: this.name, namespace: this.opts.endpoint.namespace, body: this.rewrite(current, []) });
      return true;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return false;
      throw err;
    }
  }

  private async read(): Promise<V1EndpointSlice | undefined> {
    try {
      return await this.api.readNamespacedEndpointSlice({ name: this.name, namespace: this.opts.endpoint.namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async create(want: V1EndpointSlice): Promise<void> {
    try {
      await this.api.createNamespacedEndpointSlice({ namespace: this.opts.endpoint.namespace, body: want });
    } catch (err) {
      if (statusCodeOf(err) !== 403) throw err;
      throw new Error(`EndpointSlice ${this.opts.endpoint.namespace}/${this.name} does not exist and this replica may not create it: the chart makes it with the access API (helm upgrade puts it back)`);
    }
  }

  /** `current` with our labels, ports and `endpoints`, at the version read (a precondition on the write). */
  private rewrite(current: V1EndpointSlice, endpoints: V1EndpointSlice['endpoints']): V1EndpointSlice {
    const want = leaderSlice(this.opts.endpoint);
    return {
      ...current,
      metadata: { ...current.metadata, labels: { ...current.metadata?.labels, ...want.metadata?.labels } },
      ports: want.ports,
      endpoints,
    };
  }
}
