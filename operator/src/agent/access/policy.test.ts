import { describe, expect, it } from 'vitest';
import { accessSettingsError, describeAccess, poolAccess } from './policy.js';

const H100 = 'NVIDIA-H100-80GB-HBM3';
const RTX = 'NVIDIA-GeForce-RTX-4090';

describe('per-pool access settings', () => {
  it('allows both when the owner says nothing', () => {
    expect(poolAccess({}, H100)).toEqual({ exec: true, portForward: true });
  });

  it('applies the all-pool setting, and per product field by field over it', () => {
    const settings = { access: { exec: false }, accessByProduct: { [RTX]: { exec: true, portForward: false }, [H100]: { portForward: false } } };
    expect(poolAccess(settings, RTX)).toEqual({ exec: true, portForward: false });
    expect(poolAccess(settings, H100)).toEqual({ exec: false, portForward: false });
    expect(poolAccess(settings, 'NVIDIA-A100-SXM4-80GB')).toEqual({ exec: false, portForward: true });
    // A node whose product the agent cannot tell gets the all-pool setting, never a product's.
    expect(poolAccess(settings, undefined)).toEqual({ exec: false, portForward: true });
    expect(poolAccess({ accessByProduct: { ['__proto__']: { exec: false } } }, 'constructor')).toEqual({ exec: true, portForward: true });
  });

  it('refuses malformed settings, naming the field', () => {
    expect(accessSettingsError({})).toBeUndefined();
    expect(accessSettingsError({ access: { exec: false }, accessByProduct: { [H100]: { portForward: true } } })).toBeUndefined();
    expect(accessSettingsError({ access: { exec: 'no' } })).toBe('access.exec must be true or false, got "no"');
    expect(accessSettingsError({ access: { shell: false } })).toBe('access.shell is not a setting (only exec and portForward)');
    expect(accessSettingsError({ access: true })).toBe('access must be a map with exec and portForward (true or false)');
    expect(accessSettingsError({ accessByProduct: [] })).toBe('accessByProduct must be a map of GPU product to {exec, portForward}');
    expect(accessSettingsError({ accessByProduct: { [RTX]: { portForward: 0 } } })).toBe(`accessByProduct.${RTX}.portForward must be true or false, got 0`);
  });

  it('describes the ACCESS column', () => {
    expect(describeAccess(undefined)).toBe('logs,exec,port-forward');
    expect(describeAccess({ exec: false, portForward: true })).toBe('logs,port-forward');
    expect(describeAccess({ exec: false, portForward: false })).toBe('logs');
  });
});
