// Textual formats accepted at the edge. Anchored, linear-time regular expressions only (no nested
// quantifiers), so a hostile string cannot make matching slow.

/** Kubernetes object names such as nodes and pods: a DNS-1123 subdomain, at most 253 chars. */
export const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const dns1123SubdomainMaxChars = 253;

/** Kubernetes label values (e.g. nvidia.com/gpu.product), at most 63 chars. */
export const labelValue = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
export const labelValueMaxChars = 63;

/** A Kubernetes object UID (a lowercase UUID) or similar lowercase id, at most 64 chars. */
export const jobUid = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const jobUidMaxChars = 64;

/**
 * Money and prices: a non-negative decimal with at most 12 integer and 18 fraction digits, no sign,
 * exponent, leading zeros or bare point. 18 fraction digits match an ERC-20 with 18 decimals.
 */
export const decimalAmount = /^(0|[1-9][0-9]{0,11})(\.[0-9]{1,18})?$/;

/** PascalCase-ish machine reasons such as OOMKilled or Evicted. */
export const machineReason = /^[A-Za-z][A-Za-z0-9]*$/;

/** Agent build versions such as 0.3.1, v1.2.0-rc.1+abc. */
export const agentVersion = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** 0x-prefixed 20-byte hex address (checksum validated separately). */
export const hexAddress = /^0x[0-9a-fA-F]{40}$/;

/** 0x-prefixed 65-byte ECDSA signature (r, s, v). */
export const hexSignature = /^0x[0-9a-fA-F]{130}$/;

/** 0x-prefixed 32-byte hex value, e.g. a keccak256 hash. */
export const hexBytes32 = /^0x[0-9a-fA-F]{64}$/;

/** Challenge nonces: 32 bytes, lowercase hex. */
export const hexNonce = /^[0-9a-f]{64}$/;

/** Control characters other than tab and newline: never allowed in free text. */
// eslint-disable-next-line no-control-regex
export const forbiddenControlChars = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** True when `name` is a valid Kubernetes object name. */
export function isDns1123Subdomain(name: string): boolean {
  return name.length > 0 && name.length <= dns1123SubdomainMaxChars && dns1123Subdomain.test(name);
}
