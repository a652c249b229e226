import { keccak256, toUtf8Bytes } from 'ethers';
import { describe, expect, it } from 'vitest';
import { tenantIdOf } from './tenant.js';

const UID = '3f1c2a9e-6b0d-4c47-9a51-0e2d8b7c6f10';

describe('tenantIdOf', () => {
  it('is keccak256 of "<hub id>/<namespace>/<uid>", distinct per hub, per namespace and per namespace instance', () => {
    expect(tenantIdOf('fedgpu', 'default', UID)).toBe(keccak256(toUtf8Bytes(`fedgpu/default/${UID}`)));
    expect(tenantIdOf('fedgpu', 'a', UID)).not.toBe(tenantIdOf('other', 'a', UID));
    expect(tenantIdOf('fedgpu', 'a', UID)).not.toBe(tenantIdOf('fedgpu', 'b', UID));
    // The same name made again gets a new uid: the old consent does not carry over.
    expect(tenantIdOf('fedgpu', 'a', UID)).not.toBe(tenantIdOf('fedgpu', 'a', '8d1e4c55-0000-4000-8000-000000000001'));
  });

  it('refuses an empty or ambiguous hub id, namespace or uid', () => {
    expect(() => tenantIdOf('', 'a', UID)).toThrow(/hub id/);
    expect(() => tenantIdOf('a/b', 'c', UID)).toThrow(/hub id/); // "a/b"+"c" would collide with "a"+"b/c"
    expect(() => tenantIdOf('fedgpu', '', UID)).toThrow(/namespace/);
    expect(() => tenantIdOf('fedgpu', 'a/b', UID)).toThrow(/namespace/);
    expect(() => tenantIdOf('fedgpu', 'a', '')).toThrow(/uid/);
  });
});
