import type { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { GpuJob } from '../../api/types.js';
import { MAX_ATTEMPT_SECRET_BYTES } from '../../protocol/limits.js';
import { readJobSecrets } from './secrets.js';

// Secrets as the apiserver returns them (base64 values), from an in-memory map.
const core = (secrets: Record<string, Record<string, string>>) =>
  ({ readNamespacedSecret: async ({ name }: { name: string }) => {
    if (!secrets[name]) throw Object.assign(new Error('not found'), { code: 404 });
    return { data: Object.fromEntries(Object.entries(secrets[name]!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
  } }) as unknown as CoreV1Api;
const job = (names: string[]): GpuJob => ({ metadata: { name: 'j', namespace: 'team-a' }, spec: { secrets: names.map((name) => ({ name, mountPath: `/s/${name}` })) } }) as unknown as GpuJob;

describe('readJobSecrets', () => {
  it('reads what spec.secrets names', async () => {
    const read = await readJobSecrets(core({ a: { token: 'abc' } }), job(['a']));
    expect('secrets' in read && read.secrets.map((s) => [s.name, Buffer.from(s.data.token!).toString()])).toEqual([['a', 'abc']]);
  });

  it('waits, naming the sizes and no value, while the secrets add up past what one attempt may carry (the attack: 16 Secrets of 1 MiB make an Assign that ends the provider stream)', async () => {
    const mib = 'v'.repeat(1024 * 1024 - 8192);
    const names = Array.from({ length: 16 }, (_, i) => `s${i}`);
    const read = await readJobSecrets(core(Object.fromEntries(names.map((n) => [n, { blob: mib }]))), job(names));
    expect(read).toEqual({ waiting: expect.stringMatching(new RegExp(`^waiting for smaller secrets: the 16 Secret\\(s\\) spec.secrets names hold \\d+ bytes, and one attempt may carry at most ${MAX_ATTEMPT_SECRET_BYTES}`)) });
    expect(JSON.stringify(read)).not.toContain('vvvv');
    const one = await readJobSecrets(core({ s0: { blob: mib } }), job(['s0']));
    expect('secrets' in one).toBe(true);
  });
});
