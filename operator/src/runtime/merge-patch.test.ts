import { describe, expect, it } from 'vitest';
import { type Json, jsonEqual, mergePatchBetween, toJson } from './merge-patch.js';

/** RFC 7386 MergePatch, to check that the computed patch really produces the target. */
function applyMergePatch(target: Json, patch: Json): Json {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: { [k: string]: Json } =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k] ?? null, v);
  }
  return out;
}

describe('jsonEqual', () => {
  it('compares deeply, ignoring key order and undefined-valued keys', () => {
    expect(jsonEqual(toJson({ a: 1, b: [1, { c: 'x' }] }), toJson({ b: [1, { c: 'x' }], a: 1 }))).toBe(true);
    expect(jsonEqual(toJson({ a: 1, gone: undefined }), toJson({ a: 1 }))).toBe(true);
    expect(jsonEqual(toJson({ a: [1, 2] }), toJson({ a: [2, 1] }))).toBe(false);
    expect(jsonEqual(toJson({ a: null }), toJson({}))).toBe(false);
    expect(jsonEqual(toJson({ a: '1' }), toJson({ a: 1 }))).toBe(false);
  });
});

describe('mergePatchBetween', () => {
  const cases: [string, { [k: string]: Json } | undefined, { [k: string]: Json }][] = [
    ['from nothing', undefined, { phase: 'Pending', conditions: [] }],
    ['scalar change', { phase: 'Pending', runningJobs: 1 }, { phase: 'Running', runningJobs: 1 }],
    ['nested change', { cost: { gpuSeconds: 1, amount: '2' } }, { cost: { gpuSeconds: 5, amount: '2' } }],
    ['removed key', { phase: 'Pending', message: 'x' }, { phase: 'Pending' }],
    ['array replaced whole', { conditions: [{ type: 'A' }, { type: 'B' }] }, { conditions: [{ type: 'B' }] }],
    ['object to scalar', { placement: { provider: 'p' } }, { placement: 'none' }],
  ];
  it.each(cases)('%s: applying the patch yields the target', (_name, from, to) => {
    const patch = mergePatchBetween(from, to);
    expect(patch).toBeDefined();
    expect(applyMergePatch(from ?? {}, patch!)).toEqual(to);
  });

  it('carries only what changed', () => {
    expect(mergePatchBetween({ phase: 'Pending', cost: { gpuSeconds: 1, amount: '2' } }, { phase: 'Pending', cost: { gpuSeconds: 3, amount: '2' } }))
      .toEqual({ cost: { gpuSeconds: 3 } });
  });

  it('is undefined when nothing differs', () => {
    expect(mergePatchBetween({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBeUndefined();
  });
});
