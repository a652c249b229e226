import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SIM_IMAGE_PULL_ERROR_ANNOTATION } from '../../api/constants.js';
import { kwokStagesYaml } from './stages.js';

interface StageDoc {
  kind: string;
  metadata: { name: string };
  spec: { resourceRef: { kind: string }; selector: { matchExpressions: Array<{ key: string; operator: string; values?: string[] }> }; next: { statusTemplate?: string } };
}

const stages = parseAllDocuments(kwokStagesYaml()).map((doc) => {
  expect(doc.errors).toEqual([]);
  return doc.toJS() as StageDoc;
});
const byName = (name: string): StageDoc => stages.find((s) => s.metadata.name === name)!;

describe('kwok stages', () => {
  it('are one Stage document each, in order', () => {
    expect(stages.map((s) => [s.kind, s.spec.resourceRef.kind, s.metadata.name])).toEqual([
      ['Stage', 'Node', 'node-initialize'],
      ['Stage', 'Node', 'node-heartbeat'],
      ['Stage', 'Node', 'node-down'],
      ['Stage', 'Pod', 'pod-ready'],
      ['Stage', 'Pod', 'pod-succeed'],
      ['Stage', 'Pod', 'pod-fail'],
      ['Stage', 'Pod', 'pod-delete'],
      ['Stage', 'Pod', 'pod-image-pull-error'],
    ]);
  });

  it('send a started pod either to Running or to ErrImagePull, by the annotation', () => {
    const ready = byName('pod-ready').spec.selector.matchExpressions;
    const pullError = byName('pod-image-pull-error').spec.selector.matchExpressions;
    const pullKey = `.metadata.annotations["${SIM_IMAGE_PULL_ERROR_ANNOTATION}"]`;
    expect(ready.slice(0, 3)).toEqual(pullError.slice(0, 3));
    expect(ready[3]).toEqual({ key: pullKey, operator: 'DoesNotExist' });
    expect(pullError[3]).toEqual({ key: pullKey, operator: 'Exists' });
  });

  it('end a pod as Failed with the exit code only where the exit code annotation is set', () => {
    const fail = byName('pod-fail').spec.next.statusTemplate!;
    const succeed = byName('pod-succeed').spec.next.statusTemplate!;
    expect(fail).toMatch(/exitCode: \{\{ index \$\.metadata\.annotations ".+" \}\}\n\s+finishedAt: .+\n\s+reason: Error\n/);
    expect(fail).toMatch(/phase: Failed\n$/);
    expect(succeed).toMatch(/exitCode: 0\n\s+finishedAt: .+\n\s+reason: Completed\n/);
    expect(succeed).toMatch(/phase: Succeeded\n$/);
  });
});
