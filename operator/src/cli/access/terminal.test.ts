import { describe, expect, it } from 'vitest';
import { rawWhileSession, type TerminalInput } from './terminal.js';

function terminal(isTTY = true): TerminalInput & { modes: boolean[] } {
  const modes: boolean[] = [];
  const input: TerminalInput & { modes: boolean[] } = {
    isTTY,
    isRaw: false,
    modes,
    setRawMode(raw: boolean) {
      modes.push(raw);
      input.isRaw = raw;
    },
  };
  return input;
}

describe('rawWhileSession', () => {
  it('puts a terminal in raw mode for exec -it and back once, however often restore is called', () => {
    const input = terminal();
    const restore = rawWhileSession(input, { tty: true, stdin: true });
    expect(input.isRaw).toBe(true);
    restore();
    restore();
    expect(input.modes).toEqual([true, false]);
  });

  it('leaves the terminal alone without -t, without -i, or when stdin is not a terminal', () => {
    for (const [input, options] of [
      [terminal(), { tty: false, stdin: true }],
      [terminal(), { tty: true, stdin: false }],
      [terminal(false), { tty: true, stdin: true }],
    ] as const) {
      rawWhileSession(input, options)();
      expect(input.modes).toEqual([]);
    }
  });
});
