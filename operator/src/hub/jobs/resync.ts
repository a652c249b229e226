import { Assign, HubMessage } from '../../gen/proto/fedgpu/v1/market.js';
import { MAX_RESYNC_PARTS } from '../../protocol/limits.js';

// A provider's desired set, as the messages that carry it: one Resync when it fits, otherwise
// ResyncParts sent back to back, the last marked. Each Assign fits a message alone (the template
// and secret bounds, protocol/limits.ts), but many together may not, and a message over the limit
// ends the stream: the agent would reconnect into the same Resync for ever, and before parts the
// hub sent nothing, so Assigns lost while the agent was away never arrived. Pure.

/** Bytes one Assign adds to a message beside its own encoding: the field tag and the length. */
const PER_ASSIGN_FRAMING = 8;
/** The envelope of a part (seq, the oneof tag and lengths, `last`). */
const PART_FRAMING = 32;

export type ResyncMessages = { messages: HubMessage[] } | { tooLarge: Assign } | { tooManyParts: number };

export function resyncMessages(desired: readonly Assign[], maxBytes: number): ResyncMessages {
  const whole: HubMessage = { seq: 0, body: { $case: 'resync', value: { desired: [...desired] } } };
  if (HubMessage.encode(whole).finish().byteLength <= maxBytes) return { messages: [whole] };
  const parts: Assign[][] = [];
  let current: Assign[] = [];
  let bytes = PART_FRAMING;
  for (const assign of desired) {
    let item = assign;
    let size = Assign.encode(item).finish().byteLength + PER_ASSIGN_FRAMING;
    if (PART_FRAMING + size > maxBytes && item.secrets.length > 0) {
      // Too large alone with its secrets: sent without them (the agent keeps a copy it has, and
      // starts nothing without them).
      item = { ...item, secrets: [], secretsWithheld: true };
      size = Assign.encode(item).finish().byteLength + PER_ASSIGN_FRAMING;
    }
    if (PART_FRAMING + size > maxBytes) return { tooLarge: assign };
    if (bytes + size > maxBytes && current.length > 0) {
      parts.push(current);
      current = [];
      bytes = PART_FRAMING;
    }
    current.push(item);
    bytes += size;
  }
  parts.push(current);
  if (parts.length > MAX_RESYNC_PARTS) return { tooManyParts: parts.length };
  return {
    messages: parts.map((part, i) => ({ seq: 0, body: { $case: 'resyncPart', value: { desired: part, last: i === parts.length - 1 } } })),
  };
}
