import { keccak256, toUtf8Bytes } from 'ethers';
import { describe, expect, it } from 'vitest';
import { tenantIdOf } from './tenant.js';

describe('tenantIdOf', () => {
  it('is keccak256 of "<hub id>/<namespace>", distinct per hub and per namespace', () => {
    expect(tenantIdOf('fedgpu', 'default')).toBe(keccak256(toUtf8Bytes('fedgpu/default')));
    expect(tenantIdOf('fedgpu', 'a')).not.toBe(tenantIdOf('other', 'a'));
    expect(tenantIdOf('fedgpu', 'a')).not.toBe(tenantIdOf('fedgpu', 'b'));
  });

  it('refuses an empty or ambiguous hub id and an empty namespace', () => {
    expect(() => tenantIdOf('', 'a')).toThrow(/hub id/);
    expect(() => tenantIdOf('a/b', 'c')).toThrow(/hub id/); // "a/b"+"c" would collide with "a"+"b/c"
    expect(() => tenantIdOf('fedgpu', '')).toThrow(/namespace/);
  });
});
