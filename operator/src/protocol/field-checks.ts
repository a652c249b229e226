// Primitive checks used by the validator. Each takes an untrusted value and a field path, returns
// the value narrowed to its type, or throws an EdgeError naming the path and the rule broken.
// They check the JavaScript type first, so they are safe on any input, not only decoded protobuf.
import { isAddress } from 'ethers';
import { invalid } from './edge-error.js';
import { decimalAmount, forbiddenControlChars, hexAddress } from './patterns.js';

export type Path = string;

export function record(value: unknown, path: Path): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw invalid('bad_type', `${path} must be a message`);
  }
  return value as Record<string, unknown>;
}

export function bool(value: unknown, path: Path): boolean {
  if (typeof value !== 'boolean') throw invalid('bad_type', `${path} must be a boolean`);
  return value;
}

/** A safe integer in [min, max]. */
export function int(value: unknown, path: Path, min: number, max: number): number {
  if (typeof value !== 'number') throw invalid('bad_type', `${path} must be a number`);
  if (!Number.isSafeInteger(value)) throw invalid('out_of_range', `${path} must be an integer`);
  if (value < min || value > max) throw invalid('out_of_range', `${path} must be within [${min}, ${max}]`);
  return value;
}

/** A finite number in [min, max]. */
export function finite(value: unknown, path: Path, min: number, max: number): number {
  if (typeof value !== 'number') throw invalid('bad_type', `${path} must be a number`);
  if (!Number.isFinite(value)) throw invalid('out_of_range', `${path} must be finite`);
  if (value < min || value > max) throw invalid('out_of_range', `${path} must be within [${min}, ${max}]`);
  return value;
}

export interface TextRule {
  maxChars: number;
  /** Tested only after the length check, so a long input never reaches the regular expression. */
  pattern?: RegExp;
  allowEmpty?: boolean;
}

/** A string within `maxChars`, matching `pattern` when given, with no control characters. */
export function text(value: unknown, path: Path, rule: TextRule): string {
  if (typeof value !== 'string') throw invalid('bad_type', `${path} must be a string`);
  if (value.length === 0) {
    if (rule.allowEmpty) return value;
    throw invalid('bad_format', `${path} must not be empty`);
  }
  if (value.length > rule.maxChars) throw invalid('too_long', `${path} exceeds ${rule.maxChars} characters`);
  if (forbiddenControlChars.test(value)) throw invalid('bad_format', `${path} contains control characters`);
  if (rule.pattern && !rule.pattern.test(value)) throw invalid('bad_format', `${path} has an invalid format`);
  return value;
}

/** A decimal amount such as "2.45" (see patterns.decimalAmount). */
export function decimal(value: unknown, path: Path, allowEmpty = false): string {
  return text(value, path, { maxChars: 31, pattern: decimalAmount, allowEmpty });
}

/** A 0x address with a valid EIP-55 checksum when mixed-case. */
export function walletAddress(value: unknown, path: Path): string {
  const address = text(value, path, { maxChars: 42, pattern: hexAddress });
  if (!isAddress(address)) throw invalid('bad_format', `${path} has an invalid address checksum`);
  return address;
}

export function list(value: unknown, path: Path, maxItems: number): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid('bad_type', `${path} must be a list`);
  if (value.length > maxItems) throw invalid('too_many_items', `${path} exceeds ${maxItems} items`);
  return value;
}

export function bytes(value: unknown, path: Path, maxBytes: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid('bad_type', `${path} must be bytes`);
  if (value.byteLength > maxBytes) throw invalid('too_long', `${path} exceeds ${maxBytes} bytes`);
  return value;
}

/** A value of a generated ts-proto enum from `allowed` (UNSPECIFIED and UNRECOGNIZED excluded by the caller). */
export function enumValue(value: unknown, path: Path, allowed: ReadonlySet<number>): number {
  if (typeof value !== 'number') throw invalid('bad_type', `${path} must be an enum number`);
  if (!allowed.has(value)) throw invalid('bad_enum', `${path} is not a known value`);
  return value;
}

/** Numeric members of a ts-proto enum, minus UNRECOGNIZED (-1) and, unless asked, UNSPECIFIED (0). */
export function enumMembers(enumObject: Record<string, string | number>, includeUnspecified = false): ReadonlySet<number> {
  const values = Object.values(enumObject).filter((v): v is number => typeof v === 'number' && v >= (includeUnspecified ? 0 : 1));
  return new Set(values);
}
