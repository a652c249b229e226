// Text that crosses from a provider's cluster to a consumer (relayed pod Events): one printable
// line, bounded, and a reason the hub can use as an Event reason. Applied by the agent before it
// sends (so a kubelet message with a newline never trips the hub's edge checks) and by the hub
// again before it records anything: the provider may be hostile.

// C0/C1 controls, DEL, zero-width characters and bidi overrides (text that could hide or reorder
// what a terminal shows). Newlines and tabs become spaces too: `kubectl describe` shows one line.
const unsafe = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]+/g;
const pascalCase = /^[A-Z][A-Za-z0-9]{0,63}$/;

/** Untrusted text as one printable line of at most `maxChars` characters. */
export function oneLine(text: string, maxChars: number): string {
  const clean = text.replace(unsafe, ' ').replace(/ {2,}/g, ' ').trim();
  if (clean.length <= maxChars) return clean;
  // Never end on half a surrogate pair.
  return `${clean.slice(0, Math.max(0, maxChars - 1)).replace(/[\ud800-\udbff]$/, '')}…`;
}

/** The reason when it is a PascalCase word (what Events use); `fallback` otherwise. */
export function eventReason(reason: string, fallback = 'ProviderEvent'): string {
  return pascalCase.test(reason) ? reason : fallback;
}

/** Longest relayed event message, in characters (the hub prefixes replica and provider). */
export const maxRelayedMessageChars = 512;
