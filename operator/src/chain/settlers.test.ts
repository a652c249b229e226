import { describe, expect, it } from 'vitest';
import { settlersFromEvents } from './settlers.js';

const A = '0x00000000000000000000000000000000000000aA';
const B = '0x00000000000000000000000000000000000000bB';

describe('settlersFromEvents', () => {
  it('keeps the accounts whose last event enabled them', () => {
    expect(settlersFromEvents([])).toEqual([]);
    expect(settlersFromEvents([{ account: A, enabled: true }])).toEqual([A]);
    expect(settlersFromEvents([{ account: A, enabled: true }, { account: B, enabled: true }, { account: A, enabled: false }])).toEqual([B]);
  });

  it('lets a later enable undo a removal', () => {
    expect(settlersFromEvents([{ account: A, enabled: true }, { account: A, enabled: false }, { account: A, enabled: true }])).toEqual([A]);
  });
});
