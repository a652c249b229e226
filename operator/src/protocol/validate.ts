// Edge validation of every AgentMessage, before any of it reaches the registry, the apiserver or a
// log line. Input is `unknown` on purpose: the checks never trust the decoder's types.
//
// The validator never throws: it returns either the message, now typed, or an EdgeError with the
// gRPC status to end the stream with and a reason for metrics.
import { status } from '@grpc/grpc-js';
import {
  AttemptPhase,
  NotOfferedReason,
  PodPhase,
  type AgentMessage,
} from '../gen/proto/fedgpu/v1/market.js';
import { EdgeError, invalid } from './edge-error.js';
import { invalidEgress, type EgressProfile } from '../core/egress.js';
import { bool, bytes, decimal, enumMembers, enumValue, finite, int, list, record, text, walletAddress, type Path } from './field-checks.js';
import { defaultEdgeLimits, type EdgeLimits } from './limits.js';
import {
  agentVersion,
  dns1123Subdomain,
  dns1123SubdomainMaxChars,
  hexBytes32,
  hexNonce,
  hexSignature,
  jobUid,
  jobUidMaxChars,
  labelValue,
  labelValueMaxChars,
  machineReason,
} from './patterns.js';

export type AgentMessageKind = NonNullable<AgentMessage['body']>['$case'];

export type ValidationResult =
  | { ok: true; message: AgentMessage; kind: AgentMessageKind }
  | { ok: false; error: EdgeError };

const uint32Max = 0xffff_ffff;
const int32Min = -0x8000_0000;
const int32Max = 0x7fff_ffff;
const maxSafe = Number.MAX_SAFE_INTEGER;

const attemptPhases = enumMembers(AttemptPhase);
const podPhases = enumMembers(PodPhase);
// UNSPECIFIED is meaningful here: it is the reason of an offered pool.
const notOfferedReasons = enumMembers(NotOfferedReason, true);
/** Every kind of AgentMessage the hub accepts (the fuzz generators cover each). */
export const agentMessageKinds = [
  'hello',
  'registerProof',
  'inventory',
  'heartbeat',
  'attemptStatus',
  'usageReceipt',
  'bandwidthProbeData',
  'podEvents',
] as const satisfies readonly AgentMessageKind[];
const knownKinds: ReadonlySet<string> = new Set<AgentMessageKind>(agentMessageKinds);

/**
 * Validates one message against `limits`. `lastSeq` is the highest seq accepted on this stream so
 * far (0 before the first message); the message's seq must be greater.
 */
export function validateAgentMessage(
  input: unknown,
  lastSeq: number,
  limits: Readonly<EdgeLimits> = defaultEdgeLimits,
): ValidationResult {
  try {
    const message = record(input, 'message');
    const seq = int(message.seq, 'seq', 1, maxSafe);
    if (seq <= lastSeq) throw invalid('bad_seq', 'seq must increase on every message');
    const kind = checkBody(message.body, limits);
    return { ok: true, message: input as AgentMessage, kind };
  } catch (error) {
    if (error instanceof EdgeError) return { ok: false, error };
    // Anything else (a throwing getter on a crafted object, say) is still the peer's fault.
    return { ok: false, error: invalid('bad_type', 'message could not be inspected') };
  }
}

/** Keeps the per-stream state (the last seq) so callers cannot forget to advance it. */
export class StreamValidator {
  private lastSeq = 0;

  constructor(private readonly limits: Readonly<EdgeLimits> = defaultEdgeLimits) {}

  check(input: unknown): ValidationResult {
    const result = validateAgentMessage(input, this.lastSeq, this.limits);
    if (result.ok) this.lastSeq = result.message.seq;
    return result;
  }

  /** Accepts `seq` for a message checked elsewhere (tunnel frames); false when it does not increase. */
  advance(seq: unknown): boolean {
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return true;
  }

  get highestSeq(): number {
    return this.lastSeq;
  }
}

function checkBody(value: unknown, limits: Readonly<EdgeLimits>): AgentMessageKind {
  if (value === undefined || value === null) throw invalid('missing_body', 'message has no body');
  const body = record(value, 'body');
  const kind = body.$case;
  // The path is built from the matched literal, never from peer input.
  const path = `body.${typeof kind === 'string' && knownKinds.has(kind) ? kind : '?'}`;
  switch (kind) {
    case 'hello':
      checkHello(body.value, path, limits);
      return kind;
    case 'registerProof':
      checkRegisterProof(body.value, path);
      return kind;
    case 'inventory':
      checkInventory(body.value, path, limits);
      return kind;
    case 'heartbeat':
      checkHeartbeat(body.value, path, limits);
      return kind;
    case 'attemptStatus':
      checkAttemptStatus(body.value, path, limits);
      return kind;
    case 'usageReceipt':
      checkUsageReceipt(body.value, path, limits);
      return kind;
    case 'bandwidthProbeData':
      checkBandwidthProbeData(body.value, path, limits);
      return kind;
    case 'podEvents':
      checkPodEvents(body.value, path, limits);
      return kind;
    default:
      throw invalid('missing_body', 'body has an unknown kind');
  }
}

function checkHello(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const hello = record(value, path);
  walletAddress(hello.walletAddress, `${path}.walletAddress`);
  text(hello.agentVersion, `${path}.agentVersion`, { maxChars: limits.maxAgentVersionChars, pattern: agentVersion });
  const version = int(hello.protocolVersion, `${path}.protocolVersion`, 0, uint32Max);
  if (!limits.supportedProtocolVersions.includes(version)) {
    throw new EdgeError(status.FAILED_PRECONDITION, 'unsupported_protocol', `${path}.protocolVersion is not supported by this hub`);
  }
  if (hello.profile !== undefined) checkProfile(hello.profile, `${path}.profile`);
}

const weekdays = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);
const clock = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
const region = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/;
const displayName = /^[^\u0000-\u001f\u007f]*$/;

function checkProfile(value: unknown, path: Path): void {
  const profile = record(value, path);
  text(profile.displayName, `${path}.displayName`, { maxChars: 128, pattern: displayName, allowEmpty: true });
  text(profile.region, `${path}.region`, { maxChars: 63, pattern: region, allowEmpty: true });
  int(profile.utcOffsetMinutes, `${path}.utcOffsetMinutes`, -840, 840);
  int(profile.reservedGpus, `${path}.reservedGpus`, 0, 100_000);
  list(profile.windows, `${path}.windows`, 32).forEach((w, i) => {
    const window = record(w, `${path}.windows[${i}]`);
    text(window.start, `${path}.windows[${i}].start`, { maxChars: 5, pattern: clock });
    text(window.end, `${path}.windows[${i}].end`, { maxChars: 5, pattern: clock });
    list(window.days, `${path}.windows[${i}].days`, 7).forEach((d, j) => {
      if (typeof d !== 'string' || !weekdays.has(d)) throw invalid('bad_enum', `${path}.windows[${i}].days[${j}] is not a weekday`);
    });
  });
}

function checkRegisterProof(value: unknown, path: Path): void {
  const proof = record(value, path);
  text(proof.nonce, `${path}.nonce`, { maxChars: 64, pattern: hexNonce });
  text(proof.signature, `${path}.signature`, { maxChars: 132, pattern: hexSignature });
}

function checkInventory(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const inventory = record(value, path);
  const pools = list(inventory.pools, `${path}.pools`, limits.maxPools);
  const nodeNames = new Set<string>();
  const poolKeys = new Set<string>();
  pools.forEach((pool, i) => {
    const key = checkPool(pool, `${path}.pools[${i}]`, limits, nodeNames);
    if (poolKeys.has(key)) throw invalid('duplicate', `${path}.pools[${i}] repeats a pool (product, memory, driver)`);
    poolKeys.add(key);
  });
  list(inventory.unisolatedNamespaces, `${path}.unisolatedNamespaces`, limits.maxUnisolatedNamespaces).forEach((item, i) => {
    const entry = record(item, `${path}.unisolatedNamespaces[${i}]`);
    text(entry.namespace, `${path}.unisolatedNamespaces[${i}].namespace`, { maxChars: 63, pattern: dns1123Subdomain });
    text(entry.reason, `${path}.unisolatedNamespaces[${i}].reason`, { maxChars: limits.maxMessageChars });
  });
}

/** Returns the pool's identity key; adds its node names to `seenNodes` (names are unique per inventory). */
function checkPool(value: unknown, path: Path, limits: Readonly<EdgeLimits>, seenNodes: Set<string>): string {
  const pool = record(value, path);
  const product = text(pool.gpuProduct, `${path}.gpuProduct`, { maxChars: labelValueMaxChars, pattern: labelValue });
  const memoryMiB = int(pool.memoryMib, `${path}.memoryMib`, 0, limits.maxMemoryMiB);
  const driver = int(pool.cudaDriverMajor, `${path}.cudaDriverMajor`, 0, limits.maxCudaDriverMajor);
  const total = int(pool.total, `${path}.total`, 0, limits.maxGpusPerPool);
  const allocatable = int(pool.allocatable, `${path}.allocatable`, 0, limits.maxGpusPerPool);
  const idle = int(pool.idle, `${path}.idle`, 0, limits.maxGpusPerPool);
  if (allocatable > total) throw invalid('inconsistent', `${path}.allocatable exceeds total`);
  if (idle > allocatable) throw invalid('inconsistent', `${path}.idle exceeds allocatable`);

  const offered = bool(pool.offered, `${path}.offered`);
  decimal(pool.pricePerGpuHour, `${path}.pricePerGpuHour`, !offered);
  decimal(pool.breakEvenPricePerGpuHour, `${path}.breakEvenPricePerGpuHour`, true);
  int(pool.cpuMilliPerGpu, `${path}.cpuMilliPerGpu`, 0, limits.maxCpuMilliPerGpu);
  int(pool.memoryMibPerGpu, `${path}.memoryMibPerGpu`, 0, limits.maxHostMemoryMiBPerGpu);
  text(pool.runtimeClassName, `${path}.runtimeClassName`, { maxChars: dns1123SubdomainMaxChars, pattern: dns1123Subdomain, allowEmpty: true });
  const reason = enumValue(pool.notOfferedReason, `${path}.notOfferedReason`, notOfferedReasons);
  if (offered && reason !== NotOfferedReason.NOT_OFFERED_REASON_UNSPECIFIED) {
    throw invalid('inconsistent', `${path}.notOfferedReason must be unset for an offered pool`);
  }
  if (!offered && reason === NotOfferedReason.NOT_OFFERED_REASON_UNSPECIFIED) {
    throw invalid('inconsistent', `${path}.notOfferedReason is required when the pool is not offered`);
  }

  if (pool.egress !== undefined) checkEgress(pool.egress, `${path}.egress`);
  if (pool.access !== undefined) {
    const access = record(pool.access, `${path}.access`);
    bool(access.exec, `${path}.access.exec`);
    bool(access.portForward, `${path}.access.portForward`);
  }
  const nodes = list(pool.nodes, `${path}.nodes`, limits.maxNodesPerPool);
  let nodeTotal = 0;
  let nodeIdle = 0;
  nodes.forEach((nodeValue, j) => {
    const nodePath = `${path}.nodes[${j}]`;
    const node = record(nodeValue, nodePath);
    const name = text(node.name, `${nodePath}.name`, { maxChars: dns1123SubdomainMaxChars, pattern: dns1123Subdomain });
    if (seenNodes.has(name)) throw invalid('duplicate', `${nodePath}.name appears twice in the inventory`);
    seenNodes.add(name);
    if (seenNodes.size > limits.maxNodesTotal) throw invalid('too_many_items', `${path}: inventory exceeds ${limits.maxNodesTotal} nodes`);
    const nodeGpus = int(node.totalGpus, `${nodePath}.totalGpus`, 0, limits.maxGpusPerNode);
    const nodeIdleGpus = int(node.idleGpus, `${nodePath}.idleGpus`, 0, limits.maxGpusPerNode);
    if (nodeIdleGpus > nodeGpus) throw invalid('inconsistent', `${nodePath}.idleGpus exceeds totalGpus`);
    bool(node.ready, `${nodePath}.ready`);
    bool(node.cordoned, `${nodePath}.cordoned`);
    nodeTotal += nodeGpus;
    nodeIdle += nodeIdleGpus;
  });
  if (total > nodeTotal) throw invalid('inconsistent', `${path}.total exceeds the GPUs of its nodes`);
  if (idle > nodeIdle) throw invalid('inconsistent', `${path}.idle exceeds the idle GPUs of its nodes`);
  return `${product}/${memoryMiB}/${driver}`;
}

function checkHeartbeat(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const heartbeat = record(value, path);
  int(heartbeat.sentAtUnixMs, `${path}.sentAtUnixMs`, 0, maxSafe);
  int(heartbeat.pongFor, `${path}.pongFor`, 0, maxSafe);
  const results = list(heartbeat.bandwidthProbeResults, `${path}.bandwidthProbeResults`, limits.maxProbeResults);
  results.forEach((resultValue, i) => {
    const resultPath = `${path}.bandwidthProbeResults[${i}]`;
    const result = record(resultValue, resultPath);
    int(result.probeId, `${resultPath}.probeId`, 1, maxSafe);
    int(result.bytes, `${resultPath}.bytes`, 0, limits.maxProbePayloadBytes);
    int(result.elapsedMs, `${resultPath}.elapsedMs`, 0, limits.maxProbeElapsedMs);
  });
}

function checkAttemptStatus(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const attempt = record(value, path);
  text(attempt.jobUid, `${path}.jobUid`, { maxChars: jobUidMaxChars, pattern: jobUid });
  int(attempt.epoch, `${path}.epoch`, 1, maxSafe);
  enumValue(attempt.phase, `${path}.phase`, attemptPhases);
  finite(attempt.gpuSeconds, `${path}.gpuSeconds`, 0, limits.maxGpuSeconds);
  int(attempt.exitCode, `${path}.exitCode`, int32Min, int32Max);
  text(attempt.reason, `${path}.reason`, { maxChars: limits.maxReasonChars, pattern: machineReason, allowEmpty: true });
  text(attempt.message, `${path}.message`, { maxChars: limits.maxMessageChars, allowEmpty: true });
  const pods = list(attempt.podStates, `${path}.podStates`, limits.maxPodStates);
  const podNames = new Set<string>();
  pods.forEach((podValue, i) => {
    const podPath = `${path}.podStates[${i}]`;
    const pod = record(podValue, podPath);
    const name = text(pod.name, `${podPath}.name`, { maxChars: dns1123SubdomainMaxChars, pattern: dns1123Subdomain });
    if (podNames.has(name)) throw invalid('duplicate', `${podPath}.name appears twice`);
    podNames.add(name);
    // Empty while the pod is not yet bound to a node.
    text(pod.nodeName, `${podPath}.nodeName`, { maxChars: dns1123SubdomainMaxChars, pattern: dns1123Subdomain, allowEmpty: true });
    enumValue(pod.phase, `${podPath}.phase`, podPhases);
    bool(pod.ready, `${podPath}.ready`);
    int(pod.restartCount, `${podPath}.restartCount`, 0, limits.maxRestartCount);
    text(pod.reason, `${podPath}.reason`, { maxChars: limits.maxReasonChars, pattern: machineReason, allowEmpty: true });
    int(pod.exitCode, `${podPath}.exitCode`, int32Min, int32Max);
  });
}

function checkUsageReceipt(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const receipt = record(value, path);
  text(receipt.jobUid, `${path}.jobUid`, { maxChars: jobUidMaxChars, pattern: jobUid });
  int(receipt.epoch, `${path}.epoch`, 1, maxSafe);
  finite(receipt.gpuSeconds, `${path}.gpuSeconds`, 0, limits.maxGpuSeconds);
  decimal(receipt.pricePerGpuHour, `${path}.pricePerGpuHour`);
  decimal(receipt.amount, `${path}.amount`);
  text(receipt.signature, `${path}.signature`, { maxChars: 132, pattern: hexSignature });
  walletAddress(receipt.providerWallet, `${path}.providerWallet`);
  text(receipt.usageHash, `${path}.usageHash`, { maxChars: 66, pattern: hexBytes32 });
}

const sha256Bytes = 32;

function checkBandwidthProbeData(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const data = record(value, path);
  int(data.probeId, `${path}.probeId`, 1, maxSafe);
  const payload = bytes(data.payload, `${path}.payload`, limits.maxProbePayloadBytes);
  // Absent on the wire from agents older than the digest: decoding gives empty bytes.
  const digest = bytes(data.payloadSha256, `${path}.payloadSha256`, sha256Bytes);
  if (digest.byteLength === 0) return;
  if (digest.byteLength !== sha256Bytes) throw invalid('bad_format', `${path}.payloadSha256 must be ${sha256Bytes} bytes (a SHA-256)`);
  if (payload.byteLength > 0) throw invalid('inconsistent', `${path} sets both payload and payloadSha256; send one`);
}

/** A pool's egress profile (core/egress.ts); the detail names the field, never the peer's value. */
function checkEgress(value: unknown, path: Path): void {
  const egress = record(value, path);
  text(egress.mode, `${path}.mode`, { maxChars: 16 });
  list(egress.destinations, `${path}.destinations`, 64).forEach((d, i) => {
    const destination = record(d, `${path}.destinations[${i}]`);
    text(destination.cidr, `${path}.destinations[${i}].cidr`, { maxChars: 64 });
    list(destination.ports, `${path}.destinations[${i}].ports`, 64);
  });
  if (invalidEgress(egress as unknown as EgressProfile, path) !== undefined) {
    throw invalid('bad_format', `${path} is not an egress profile (mode none, dns, cidrs or internet; CIDRs and ports 1-65535)`);
  }
}

// Relayed provider Events: bounded in count and size, one of two types. The text is still the
// provider's; the hub makes it one printable line before it records anything (protocol/event-text).
function checkPodEvents(value: unknown, path: Path, limits: Readonly<EdgeLimits>): void {
  const batch = record(value, path);
  const events = list(batch.events, `${path}.events`, limits.maxPodEventsPerMessage);
  events.forEach((eventValue, i) => {
    const eventPath = `${path}.events[${i}]`;
    const event = record(eventValue, eventPath);
    text(event.jobUid, `${eventPath}.jobUid`, { maxChars: jobUidMaxChars, pattern: jobUid });
    int(event.epoch, `${eventPath}.epoch`, 1, maxSafe);
    int(event.replica, `${eventPath}.replica`, 0, limits.maxPodStates - 1);
    const type = text(event.type, `${eventPath}.type`, { maxChars: 7 });
    if (type !== 'Warning' && type !== 'Normal') throw invalid('bad_format', `${eventPath}.type must be Warning or Normal`);
    text(event.reason, `${eventPath}.reason`, { maxChars: limits.maxReasonChars, pattern: machineReason });
    text(event.message, `${eventPath}.message`, { maxChars: limits.maxMessageChars, allowEmpty: true });
    int(event.count, `${eventPath}.count`, 0, uint32Max);
  });
}
