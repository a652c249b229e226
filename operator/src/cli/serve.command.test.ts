import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { ephemeralStorageOf } from './serve.command.js';

describe('the agent ephemeral-storage flags', () => {
  it('takes two quantities, the default no more than the max', () => {
    expect(ephemeralStorageOf('20Gi', '200Gi')).toEqual({ default: '20Gi', max: '200Gi' });
    expect(ephemeralStorageOf(' 500Mi ', '1Ti')).toEqual({ default: '500Mi', max: '1Ti' });
  });

  it('refuses, naming the flag: not a quantity, under 1Mi, a default above the max', () => {
    const problem = (d: string, m: string) => {
      try {
        ephemeralStorageOf(d, m);
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        return (err as Error).message;
      }
      return undefined;
    };
    expect(problem('20 GB', '200Gi')).toMatch(/^--default-ephemeral-storage: "20 GB" is not a quantity/);
    expect(problem('20Gi', '-1')).toMatch(/^--max-ephemeral-storage: "-1" is not a quantity/);
    expect(problem('1k', '200Gi')).toMatch(/^--default-ephemeral-storage: 1k is less than 1Mi/);
    expect(problem('300Gi', '200Gi')).toBe('--default-ephemeral-storage 300Gi is more than --max-ephemeral-storage 200Gi');
  });
});
