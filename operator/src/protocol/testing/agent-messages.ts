// Generators of valid and certainly-invalid AgentMessages for fuzz tests (unit and over the wire).
// Every "malformed" message breaks at least one rule the validator enforces, by construction.
import { getAddress, isAddress } from 'ethers';
import {
  AttemptPhase,
  NotOfferedReason,
  PodPhase,
  type AgentMessage,
  type GpuPool,
} from '../../gen/proto/fedgpu/v1/market.js';
import type { AgentMessageBody } from '../framing.js';
import { defaultEdgeLimits } from '../limits.js';
import { agentMessageKinds } from '../validate.js';
import type { SeededRandom } from './seeded-random.js';

export { agentMessageKinds };

export type Kind = (typeof agentMessageKinds)[number];

export function randomWallet(rng: SeededRandom): string {
  return getAddress(`0x${rng.hex(40)}`);
}

function uuid(rng: SeededRandom): string {
  return `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`;
}

function price(rng: SeededRandom): string {
  return `${rng.int(0, 99)}.${String(rng.int(0, 99)).padStart(2, '0')}`;
}

function pool(rng: SeededRandom, index: number): GpuPool {
  const nodes = Array.from({ length: rng.int(1, 4) }, (_, n) => {
    const totalGpus = rng.pick([1, 2, 4, 8]);
    return { name: `gpu-${index}-${n}.example`, totalGpus, idleGpus: rng.int(0, totalGpus), ready: rng.chance(0.9), cordoned: rng.chance(0.1) };
  });
  const total = nodes.reduce((sum, node) => sum + node.totalGpus, 0);
  const idleOnNodes = nodes.reduce((sum, node) => sum + node.idleGpus, 0);
  const allocatable = rng.int(idleOnNodes, total);
  const offered = rng.chance(0.7);
  return {
    gpuProduct: rng.pick(['NVIDIA-H100-80GB-HBM3', 'NVIDIA-A100-SXM4-40GB', 'NVIDIA-GeForce-RTX-4090'].map((p) => `${p}-${index}`)),
    memoryMib: rng.pick([24_576, 40_960, 81_920]),
    cudaDriverMajor: rng.int(0, 13),
    nodes,
    total,
    allocatable,
    idle: rng.int(0, idleOnNodes),
    pricePerGpuHour: offered || rng.chance(0.5) ? price(rng) : '',
    breakEvenPricePerGpuHour: rng.chance(0.8) ? price(rng) : '',
    offered,
    notOfferedReason: offered ? NotOfferedReason.NOT_OFFERED_REASON_UNSPECIFIED : rng.int(1, 5),
    runtimeClassName: '', cpuMilliPerGpu: 0, memoryMibPerGpu: 0,
  };
}

export function validBody(rng: SeededRandom, kind: Kind, wallet = randomWallet(rng)): AgentMessageBody {
  switch (kind) {
    case 'hello':
      return { $case: 'hello', value: { walletAddress: wallet, agentVersion: rng.pick(['0.1.0', 'v1.2.3-rc.1+g1a2b']), protocolVersion: 1 } };
    case 'registerProof':
      return { $case: 'registerProof', value: { nonce: rng.hex(64), signature: `0x${rng.hex(130)}` } };
    case 'inventory':
      return { $case: 'inventory', value: { pools: Array.from({ length: rng.int(0, 3) }, (_, i) => pool(rng, i)), unisolatedNamespaces: [] } };
    case 'heartbeat':
      return {
        $case: 'heartbeat',
        value: {
          sentAtUnixMs: 1_700_000_000_000 + rng.int(0, 1e9),
          pongFor: rng.int(0, 100),
          bandwidthProbeResults: Array.from({ length: rng.int(0, 2) }, () => ({ probeId: rng.int(1, 9), bytes: rng.int(0, 262_144), elapsedMs: rng.int(0, 5000) })),
        },
      };
    case 'attemptStatus':
      return {
        $case: 'attemptStatus',
        value: {
          jobUid: uuid(rng),
          epoch: rng.int(1, 10),
          phase: rng.int(AttemptPhase.ATTEMPT_PHASE_PENDING, AttemptPhase.ATTEMPT_PHASE_CANCELLED),
          gpuSeconds: rng.next() * 1e6,
          exitCode: rng.int(-2, 137),
          reason: rng.pick(['', 'OOMKilled', 'Evicted', 'OwnerReclaim']),
          message: rng.pick(['', 'container exited\nsee logs', 'ok']),
          podStates: Array.from({ length: rng.int(0, 3) }, (_, i) => ({
            name: `job-${i}`,
            nodeName: rng.chance(0.2) ? '' : `gpu-0-${i}`,
            phase: rng.int(PodPhase.POD_PHASE_PENDING, PodPhase.POD_PHASE_UNKNOWN),
            ready: rng.chance(0.5),
            restartCount: rng.int(0, 3),
            reason: rng.pick(['', 'Completed', 'Error']),
            exitCode: rng.int(0, 2),
          })),
        },
      };
    case 'usageReceipt':
      return {
        $case: 'usageReceipt',
        value: {
          jobUid: uuid(rng),
          epoch: rng.int(1, 10),
          gpuSeconds: rng.int(0, 1e6),
          pricePerGpuHour: price(rng),
          amount: `${rng.int(0, 1e6)}.${rng.hex(0)}${rng.int(0, 9)}`,
          signature: `0x${rng.hex(130)}`,
          providerWallet: wallet,
          usageHash: `0x${rng.hex(64)}`,
        },
      };
    case 'bandwidthProbeData':
      // Today's agents answer with a digest; older ones echo the payload.
      return rng.int(0, 1) === 0
        ? { $case: 'bandwidthProbeData', value: { probeId: rng.int(1, 1000), payload: Buffer.alloc(0), payloadSha256: Buffer.from(rng.bytes(32)) } }
        : { $case: 'bandwidthProbeData', value: { probeId: rng.int(1, 1000), payload: Buffer.from(rng.bytes(rng.int(0, 64))), payloadSha256: Buffer.alloc(0) } };
    case 'podEvents':
      return {
        $case: 'podEvents',
        value: {
          events: Array.from({ length: rng.int(0, 3) }, () => ({
            jobUid: uuid(rng),
            epoch: rng.int(1, 10),
            replica: rng.int(0, 7),
            type: rng.pick(['Warning', 'Normal']),
            reason: rng.pick(['FailedScheduling', 'Failed', 'BackOff', 'OOMKilling', 'Evicted']),
            message: rng.pick(['', 'Back-off pulling image "nope"', '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.']),
            count: rng.int(0, 100),
          })),
        },
      };
  }
}

export function validAgentMessage(rng: SeededRandom, seq: number, kind: Kind = rng.pick(agentMessageKinds), wallet?: string): AgentMessage {
  return { seq, body: validBody(rng, kind, wallet) };
}

export interface Malformed {
  /** What was broken, for a failing test's message. */
  mutation: string;
  input: unknown;
}

const overLongString = 'a'.repeat(5000);
const overLongList = 2000;
// Numbers no numeric field accepts: not finite, or beyond every bound in either direction.
const badNumbers = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300, -1e300];
const wrongTypes: unknown[] = [null, undefined, 'x', 7, true, [], {}, 10n, Symbol('s'), () => 1];

interface Leaf {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  value: unknown;
  path: string;
}

/** Every mutable position in a message tree (objects, arrays and scalars), depth-first. */
function leaves(node: unknown, path: string, out: Leaf[], depth = 0): Leaf[] {
  if (depth > 8 || typeof node !== 'object' || node === null || node instanceof Uint8Array) return out;
  const entries: [string | number, unknown][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
  for (const [key, value] of entries) {
    out.push({ parent: node as Record<string, unknown>, key, value, path: `${path}.${key}` });
    leaves(value, `${path}.${key}`, out, depth + 1);
  }
  return out;
}

function set(leaf: Leaf, value: unknown): void {
  (leaf.parent as Record<string | number, unknown>)[leaf.key] = value;
}

function sameType(a: unknown, b: unknown): boolean {
  if (a === null || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b);
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array;
  return typeof a === typeof b;
}

/** Breaks one position of `message` in a way its type can never accept. */
function mutateLeaf(rng: SeededRandom, message: AgentMessage): Malformed {
  const all = leaves(message, 'message', []);
  const leaf = rng.pick(all);
  const { value } = leaf;
  const roll = rng.int(0, 3);
  if (roll === 0) {
    const replacement = rng.pick(wrongTypes.filter((w) => !sameType(w, value)));
    set(leaf, replacement);
    return { mutation: `${leaf.path} -> wrong type`, input: message };
  }
  if (roll === 1 && !Array.isArray(leaf.parent)) {
    delete (leaf.parent as Record<string, unknown>)[leaf.key as string];
    return { mutation: `${leaf.path} deleted`, input: message };
  }
  if (typeof value === 'string') {
    set(leaf, rng.chance(0.5) ? overLongString : `${value.slice(0, 3)}\u0001${value.slice(3)}`);
    return { mutation: `${leaf.path} -> over-long or control character`, input: message };
  }
  if (typeof value === 'number') {
    set(leaf, rng.pick(badNumbers));
    return { mutation: `${leaf.path} -> out-of-range number`, input: message };
  }
  if (Array.isArray(value)) {
    set(leaf, Array.from({ length: overLongList }, () => value[0] ?? {}));
    return { mutation: `${leaf.path} -> too many items`, input: message };
  }
  if (value instanceof Uint8Array) {
    set(leaf, new Uint8Array(defaultEdgeLimits.maxProbePayloadBytes + 1));
    return { mutation: `${leaf.path} -> over-long bytes`, input: message };
  }
  set(leaf, rng.pick([null, 42, 'text', [value]]));
  return { mutation: `${leaf.path} -> not a message`, input: message };
}

type Targeted = (rng: SeededRandom, lastSeq: number) => Malformed;

function withBody(rng: SeededRandom, lastSeq: number, kind: Kind, edit: (value: any) => void, mutation: string): Malformed {
  const message = validAgentMessage(rng, lastSeq + 1, kind);
  edit(message.body?.value);
  return { mutation, input: message };
}

// Rules a type-blind mutation would rarely hit: formats, enums, cross-field consistency, seq order.
const targeted: Targeted[] = [
  (rng, lastSeq) => ({ mutation: 'seq not increasing', input: validAgentMessage(rng, rng.int(0, lastSeq)) }),
  (rng, lastSeq) => ({ mutation: 'seq fractional', input: validAgentMessage(rng, lastSeq + 1.5) }),
  (rng, lastSeq) => ({ mutation: 'seq beyond 2^53', input: validAgentMessage(rng, 2 ** 53 + 2) }),
  (rng, lastSeq) => ({ mutation: 'no body', input: { seq: lastSeq + 1 } }),
  (rng, lastSeq) => ({ mutation: 'unknown body kind', input: { seq: lastSeq + 1, body: { $case: rng.string(8), value: {} } } }),
  (rng, lastSeq) => {
    const message = validAgentMessage(rng, lastSeq + 1);
    const other = rng.pick(agentMessageKinds.filter((k) => k !== message.body?.$case));
    return { mutation: 'value of another kind', input: { seq: message.seq, body: { $case: other, value: message.body?.value } } };
  },
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'hello', (v) => { v.walletAddress = flipChecksum(v.walletAddress); }, 'wallet with a bad checksum'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'hello', (v) => { v.walletAddress = rng.pick(['0x1234', 'abc', `0x${rng.hex(40)}00`, `0X${rng.hex(40)}`]); }, 'wallet malformed'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'hello', (v) => { v.protocolVersion = rng.pick([0, 2, 99]); }, 'unsupported protocol'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'hello', (v) => { v.agentVersion = rng.pick(['', ' 1.0', '1.0;rm', '-x']); }, 'agent version format'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'registerProof', (v) => { v.signature = rng.pick(['0x', `0x${rng.hex(128)}`, `${rng.hex(130)}`, `0x${rng.hex(129)}z`]); }, 'signature malformed'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'registerProof', (v) => { v.nonce = rng.pick(['', rng.hex(63), rng.hex(64).toUpperCase().replace(/[0-9]/g, 'A')]); }, 'nonce malformed'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.nodes[0].name = rng.pick(['Upper', '-lead', 'trail-', 'sp ace', 'a..b', 'x'.repeat(254), 'node_1']); }, 'node name not DNS-1123'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.nodes[0].idleGpus = p.nodes[0].totalGpus + 1; }, 'node idle > total'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.idle = p.allocatable + 1; }, 'pool idle > allocatable'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.allocatable = p.total + 1; }, 'pool allocatable > total'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.total += 1; p.allocatable = p.idle; }, 'pool total > node GPUs'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.nodes.push({ ...p.nodes[0] }); }, 'duplicate node'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p, inv) => { inv.pools.push({ ...p, nodes: [] , total: 0, allocatable: 0, idle: 0 }); }, 'duplicate pool'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.offered = true; p.notOfferedReason = 2; }, 'offered with a reason'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.offered = false; p.notOfferedReason = 0; }, 'not offered without a reason'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.offered = true; p.notOfferedReason = 0; p.pricePerGpuHour = ''; }, 'offered without a price'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.pricePerGpuHour = rng.pick(badDecimals); p.offered = true; p.notOfferedReason = 0; }, 'price not decimal'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.breakEvenPricePerGpuHour = rng.pick(badDecimals); }, 'break-even not decimal'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.notOfferedReason = rng.pick([6, 99, -1]); }, 'not-offered reason out of range'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.gpuProduct = rng.pick(['', 'has space', 'x'.repeat(64), '-lead']); }, 'gpu product format'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.nodes[0].totalGpus = 65; p.nodes[0].idleGpus = 0; }, 'node GPUs above bound'),
  (rng, lastSeq) => withInventory(rng, lastSeq, (p) => { p.memoryMib = 4 * 1024 * 1024 + 1; }, 'memory above bound'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.phase = rng.pick([0, 7, 99, -1]); }, 'attempt phase out of range'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.epoch = 0; }, 'epoch zero'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.gpuSeconds = rng.pick([-1, 1e13]); }, 'gpu seconds out of range'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.exitCode = rng.pick([2 ** 31, -(2 ** 31) - 1, 0.5]); }, 'exit code not int32'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.jobUid = rng.pick(['', 'UPPER', 'a'.repeat(65), '../etc']); }, 'job uid format'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.reason = rng.pick(['has space', '1Leading', 'semi;colon']); }, 'reason format'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'attemptStatus', (v) => { v.podStates = [validPod(), { ...validPod(), phase: rng.pick([0, 6, 42]) }]; }, 'pod phase out of range'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'attemptStatus', (v) => { v.podStates = [validPod(), validPod()]; }, 'duplicate pod'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'usageReceipt', (v) => { v.amount = rng.pick(badDecimals); }, 'amount not decimal'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'usageReceipt', (v) => { v.pricePerGpuHour = ''; }, 'receipt without price'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'usageReceipt', (v) => { v.providerWallet = flipChecksum(v.providerWallet); }, 'receipt wallet checksum'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'heartbeat', (v) => { v.pongFor = -1; }, 'negative pong id'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'heartbeat', (v) => { v.bandwidthProbeResults = [{ probeId: 0, bytes: 1, elapsedMs: 1 }]; }, 'probe result id zero'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'bandwidthProbeData', (v) => { v.probeId = 0; }, 'probe id zero'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'bandwidthProbeData', (v) => { v.payload = Buffer.alloc(0); v.payloadSha256 = Buffer.from(rng.bytes(rng.pick([1, 31, 33]))); }, 'probe digest not 32 bytes'),
  (rng, lastSeq) =>
    withBody(rng, lastSeq, 'bandwidthProbeData', (v) => { v.payload = Buffer.from(rng.bytes(rng.int(1, 64))); v.payloadSha256 = Buffer.from(rng.bytes(32)); }, 'probe payload and digest both'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = [podEvent({ type: rng.pick(['warning', 'Error', '']) })]; }, 'pod event type'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = [podEvent({ message: rng.pick(['a\u0000b', 'x'.repeat(1025), 'esc\u001b[2J']) })]; }, 'pod event message control chars or too long'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = [podEvent({ reason: rng.pick(['', 'has space', 'x'.repeat(129)]) })]; }, 'pod event reason format'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = Array.from({ length: 33 }, () => podEvent({})); }, 'too many pod events'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = [podEvent({ epoch: 0 })]; }, 'pod event epoch zero'),
  (rng, lastSeq) => withBody(rng, lastSeq, 'podEvents', (v) => { v.events = [podEvent({ replica: 256 })]; }, 'pod event replica out of range'),
  (rng, lastSeq) => {
    const message = validAgentMessage(rng, lastSeq + 1);
    const trap = new Proxy({}, { get: () => { throw new Error('boom'); } });
    return { mutation: 'throwing getter', input: rng.chance(0.5) ? trap : { seq: message.seq, body: { $case: message.body?.$case, value: trap } } };
  },
];

const badDecimals = ['1e5', '-1', '01.5', '.5', '1.', '1,5', 'NaN', ' 1', '1.0000000000000000001', '1234567890123', '0x10', '１'];

function podEvent(over: Record<string, unknown>) {
  return { jobUid: 'job-a', epoch: 1, replica: 0, type: 'Warning', reason: 'Failed', message: 'ErrImagePull', count: 1, ...over };
}

function validPod() {
  return { name: 'pod-a', nodeName: 'node-a', phase: PodPhase.POD_PHASE_RUNNING, ready: true, restartCount: 0, reason: '', exitCode: 0 };
}

function withInventory(rng: SeededRandom, lastSeq: number, edit: (pool: any, inventory: any) => void, mutation: string): Malformed {
  const message = validAgentMessage(rng, lastSeq + 1, 'inventory');
  const inventory = message.body?.value as { pools: GpuPool[] };
  if (inventory.pools.length === 0) inventory.pools.push(pool(rng, 0));
  edit(inventory.pools[0], inventory);
  return { mutation, input: message };
}

/** Flips the case of one hex letter so the EIP-55 checksum no longer holds. */
function flipChecksum(address: string): string {
  const body = address.slice(2);
  const i = body.search(/[a-fA-F]/);
  if (i < 0) return `${address.slice(0, 41)}G`; // all digits: make it plainly non-hex instead
  const c = body[i] as string;
  const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
  const candidate = `0x${body.slice(0, i)}${flipped}${body.slice(i + 1)}`;
  // If the flip happened to leave the letters all one case, the address is unchecksummed and
  // valid again; fall back to something plainly not an address.
  return isAddress(candidate) ? `0x${'g'.repeat(40)}` : candidate;
}

/** Garbage that is not shaped like a message at all. */
function junk(rng: SeededRandom, depth = 0): unknown {
  const roll = rng.int(0, depth > 3 ? 5 : 8);
  switch (roll) {
    case 0: return null;
    case 1: return undefined;
    case 2: return rng.pick(badNumbers.concat([0, -1, 3.14]));
    case 3: return rng.string(rng.int(0, 20), 'abc\u0000\u202e$\n{}');
    case 4: return rng.chance(0.5);
    case 5: return rng.bytes(rng.int(0, 16));
    case 6: return Array.from({ length: rng.int(0, 4) }, () => junk(rng, depth + 1));
    default: {
      // Keys never include `seq`, so the result can never be a valid message.
      const out: Record<string, unknown> = {};
      for (let i = rng.int(0, 4); i > 0; i--) out[rng.pick(['body', '$case', 'value', '__proto__', 'constructor', rng.string(4)])] = junk(rng, depth + 1);
      return out;
    }
  }
}

/**
 * One certainly-invalid message for a stream whose last accepted seq is `lastSeq`: a type-blind
 * break of a random position, a targeted rule break, or shapeless junk.
 */
export function malformedAgentMessage(rng: SeededRandom, lastSeq: number): Malformed {
  const roll = rng.next();
  if (roll < 0.45) return mutateLeaf(rng, validAgentMessage(rng, lastSeq + 1));
  if (roll < 0.9) return rng.pick(targeted)(rng, lastSeq);
  return { mutation: 'junk', input: junk(rng) };
}
