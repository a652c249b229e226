import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCredits } from '../chain/credits.js';
import { CliError } from './errors.js';
import { settlementOptionsOf, type SettlementFlags } from './settlement-flags.js';

const defaults: SettlementFlags = {
  confirmations: '1', minStake: '100', slashAmount: '10', defaultHold: '100', receiptTimeout: '10m', driftInterval: '30s', chainStatusInterval: '10s', marketFromBlock: '0',
};
const KEY = '0x' + '42'.repeat(32);
const MARKET = '0x' + 'cd'.repeat(20);

describe('settlementOptionsOf', () => {
  it('is off when no chain setting is given at all', () => {
    expect(settlementOptionsOf({ ...defaults }, {})).toBeUndefined();
    expect(settlementOptionsOf({ ...defaults }, { FEDGPU_CHAIN_RPC_URL: '  ' })).toBeUndefined();
  });

  it('refuses a partial chain configuration, naming what is missing', () => {
    // The chart's chain Secret without its RPC URL: market address and key, no endpoint.
    expect(() => settlementOptionsOf({ ...defaults, marketAddress: MARKET }, { FEDGPU_SETTLER_KEY: KEY, FEDGPU_CHAIN_RPC_URL: '' })).toThrow(
      'partial chain configuration: --market-address, --settler-key-file (or FEDGPU_SETTLER_KEY) given but --chain-rpc (or FEDGPU_CHAIN_RPC_URL) missing; settle with all three, or run without a chain by giving none',
    );
    expect(() => settlementOptionsOf({ ...defaults, marketAddress: MARKET }, {})).toThrow(/--market-address given but --chain-rpc \(or FEDGPU_CHAIN_RPC_URL\) and --settler-key-file \(or FEDGPU_SETTLER_KEY\) missing/);
    expect(() => settlementOptionsOf({ ...defaults, chainRpc: 'http://rpc' }, { FEDGPU_SETTLER_KEY: KEY })).toThrow(/given but --market-address missing/);
    expect(() => settlementOptionsOf({ ...defaults, settlerKeyFile: '/k' }, {})).toThrow(/partial chain configuration/);
  });

  it('reads the flags, or the env the chart sets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedgpu-'));
    writeFileSync(join(dir, 'settler.key'), `${KEY}\n`);
    expect(settlementOptionsOf({ ...defaults, chainRpc: 'http://rpc', marketAddress: MARKET, settlerKeyFile: join(dir, 'settler.key'), slashAmount: '2.5' }, {})).toMatchObject({
      rpcUrl: 'http://rpc', settlerKey: KEY, slashAmount: parseCredits('2.5'), minStake: parseCredits('100'), receiptTimeoutMs: 600_000, confirmations: 1,
    });
    expect(settlementOptionsOf({ ...defaults, marketAddress: MARKET }, { FEDGPU_CHAIN_RPC_URL: 'http://env', FEDGPU_SETTLER_KEY: KEY })).toMatchObject({ rpcUrl: 'http://env', settlerKey: KEY });
  });

  it('takes the chain id to expect, a whole number', () => {
    const flags = { ...defaults, marketAddress: MARKET };
    const env = { FEDGPU_CHAIN_RPC_URL: 'http://env', FEDGPU_SETTLER_KEY: KEY };
    expect(settlementOptionsOf({ ...flags, chainId: '31337' }, env)).toMatchObject({ chainId: 31337 });
    expect(settlementOptionsOf(flags, env)?.chainId).toBeUndefined();
    expect(() => settlementOptionsOf({ ...flags, chainId: '1.5' }, env)).toThrow('--chain-id must be a whole number ≥ 1');
  });

  it('refuses what cannot work, in one line', () => {
    const bad = (flags: Partial<SettlementFlags>, env: NodeJS.ProcessEnv = {}) => () => settlementOptionsOf({ ...defaults, chainRpc: 'http://rpc', marketAddress: MARKET, ...flags }, env);
    expect(bad({ marketAddress: 'nope' }, { FEDGPU_SETTLER_KEY: KEY })).toThrow(/--market-address nope is not an address/);
    expect(bad({})).toThrow(/--settler-key-file \(or FEDGPU_SETTLER_KEY\) missing/);
    expect(bad({}, { FEDGPU_SETTLER_KEY: '0x12' })).toThrow(/not a valid private key/);
    expect(bad({ slashAmount: '-1' }, { FEDGPU_SETTLER_KEY: KEY })).toThrow(CliError);
    expect(bad({ receiptTimeout: '10 minutes' }, { FEDGPU_SETTLER_KEY: KEY })).toThrow(/not a duration/);
  });
});
