import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { allowlistTemplate } from '../../operator/src/core/isolation/allowlist.js';
import { generousTemplate, HOSTILE_GPUS_PER_REPLICA, HOSTILE_TEMPLATES } from '../../operator/src/core/isolation/testing/hostile-templates.js';
import { runKubectl } from '../../operator/src/testbed/kubectl.js';
import { repoRoot } from '../../operator/src/testbed/tools.js';

// The hub's admission refuses every hostile template of the shared table at `kubectl apply`
// (strict field validation for fields outside the allowlist, CEL rules for dangerous values), with
// a message naming the field; nothing is stored. The agent refuses the same table again
// (test/integration/isolation-agent.test.ts).

const kubeconfig = inject('kubeconfig');
const kubectl = (args: string[], stdin?: string) => runKubectl(kubeconfig, args, stdin);
const NS = 'isolation-admission';

const job = (name: string, template: unknown) => ({
  apiVersion: 'fedgpu.io/v1alpha1',
  kind: 'GpuJob',
  metadata: { name, namespace: NS },
  spec: { template, gpusPerReplica: HOSTILE_GPUS_PER_REPLICA, budget: { maxPricePerGpuHour: '3' } },
});

let started = 0;
beforeAll(async () => {
  const crds = join(repoRoot, 'crds');
  const applied = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crds]);
  expect(applied.code, applied.stderr).toBe(0);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  expect(established.code, established.stderr).toBe(0);
  await kubectl(['create', 'namespace', NS]);
  started = Date.now();
});

afterAll(async () => {
  console.log(`hub admission: ${HOSTILE_TEMPLATES.length} hostile templates refused in ${Date.now() - started} ms (one kubectl create each)`);
  await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
});

describe('hub admission refuses hostile templates, naming the field', () => {
  it('has at least 30 hostile templates', () => expect(HOSTILE_TEMPLATES.length).toBeGreaterThanOrEqual(30));

  it.each(HOSTILE_TEMPLATES.map((h, i) => [h.name, h, i] as const))('%s', async (_name, hostile, i) => {
    const name = `hostile-${i}`;
    const res = await kubectl(['create', '-f', '-'], stringify(job(name, hostile.template)));
    expect(res.code, res.stdout).not.toBe(0);
    expect(res.stderr).toContain(`spec.template.${hostile.hubPath ?? hostile.path}`);
    const get = await kubectl(['get', 'gpujob', name, '-n', NS, '--ignore-not-found', '-o', 'name']);
    expect(get.stdout.trim()).toBe('');
  });
});

describe('hub admission accepts what the allowlist allows', () => {
  it('a template using every allowed field', async () => {
    expect(allowlistTemplate(generousTemplate(), { gpusPerReplica: HOSTILE_GPUS_PER_REPLICA }).ok).toBe(true);
    const res = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(job('generous', generousTemplate())));
    expect(res.code, res.stderr).toBe(0);
  });

  it.each(readdirSync(join(repoRoot, 'examples')).filter((f) => f.startsWith('gpujob')))('the example %s', async (file) => {
    const obj = parse(readFileSync(join(repoRoot, 'examples', file), 'utf8'));
    obj.metadata.namespace = NS;
    const res = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(obj));
    expect(res.code, res.stderr).toBe(0);
    expect(allowlistTemplate(obj.spec.template, { gpusPerReplica: obj.spec.gpusPerReplica ?? 1 })).toMatchObject({ ok: true });
  });
});
