import { describe, expect, it } from 'vitest';
import { UserSessions } from './user-sessions.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('UserSessions', () => {
  it('refuses a user at the cap on one provider, naming the cap, and not on another provider or for another user', () => {
    const sessions = new UserSessions(2);
    sessions.track('p1', 'alice', new Promise(() => {}));
    expect(sessions.refusal('p1', 'alice')).toBeUndefined();
    sessions.track('p1', 'alice', new Promise(() => {}));
    expect(sessions.refusal('p1', 'alice')).toMatch(/^alice already has 2 access sessions open to provider p1/);
    expect(sessions.refusal('p2', 'alice')).toBeUndefined();
    expect(sessions.refusal('p1', 'bob')).toBeUndefined();
  });

  it('gives the place back when a session ends, however it ends', async () => {
    const sessions = new UserSessions(1);
    const first = deferred();
    sessions.track('p1', 'alice', first.promise);
    expect(sessions.refusal('p1', 'alice')).toBeDefined();
    first.resolve();
    await first.promise;
    expect(sessions.count('p1', 'alice')).toBe(0);
    expect(sessions.refusal('p1', 'alice')).toBeUndefined();
    const failing = Promise.reject(new Error('closed'));
    sessions.track('p1', 'alice', failing);
    await failing.catch(() => undefined);
    expect(sessions.count('p1', 'alice')).toBe(0);
  });
});
