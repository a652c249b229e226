import { describe, expect, it } from 'vitest';
import { eventReason, oneLine } from './event-text.js';

describe('oneLine', () => {
  it('makes one printable line: controls, newlines, zero-width and bidi characters become one space', () => {
    expect(oneLine('pod p:\n  exited\twith\u0007code 1', 100)).toBe('pod p: exited with code 1');
    expect(oneLine('a\u200bb\u202ec\ufeffd', 100)).toBe('a b c d');
  });

  it('cuts to the bound, marked, never splitting a surrogate pair', () => {
    expect(oneLine('x'.repeat(20), 10)).toBe(`${'x'.repeat(9)}…`);
    const cut = oneLine(`${'x'.repeat(8)}😀😀`, 10);
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut).toBe(`${'x'.repeat(8)}…`);
  });

  it('leaves short clean text as it is', () => {
    expect(oneLine('Back-off pulling image "train:v1"', 512)).toBe('Back-off pulling image "train:v1"');
  });
});

describe('eventReason', () => {
  it('keeps a PascalCase word and replaces anything else', () => {
    expect(eventReason('FailedScheduling')).toBe('FailedScheduling');
    expect(eventReason('not a reason')).toBe('ProviderEvent');
    expect(eventReason('X'.repeat(65), 'Other')).toBe('Other');
  });
});
