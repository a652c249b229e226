// How many access sessions each user holds open to each provider. An agent's stream carries at most
// 64 sessions (protocol/tunnel/mux.ts), shared by every consumer with a job there; without a share
// per user, one consumer following 64 logs of their own job would leave the others no exec, logs
// or port-forward on that provider for as long as they kept the connections open.

export const DEFAULT_SESSIONS_PER_USER = 16;

export class UserSessions {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerUser = DEFAULT_SESSIONS_PER_USER) {}

  /** Why `user` may not open another session to `provider`, or undefined when they may. */
  refusal(provider: string, user: string): string | undefined {
    const n = this.open.get(key(provider, user)) ?? 0;
    if (n < this.maxPerUser) return undefined;
    return `${user} already has ${n} access sessions open to provider ${provider}, the most one user may; end one (a log follow, exec or port-forward connection) first`;
  }

  /** A session of `user` to `provider` opened; `ended` settles when it closes. */
  track(provider: string, user: string, ended: Promise<unknown>): void {
    const k = key(provider, user);
    this.open.set(k, (this.open.get(k) ?? 0) + 1);
    const release = () => {
      const left = (this.open.get(k) ?? 1) - 1;
      if (left > 0) this.open.set(k, left);
      else this.open.delete(k);
    };
    ended.then(release, release);
  }

  count(provider: string, user: string): number {
    return this.open.get(key(provider, user)) ?? 0;
  }
}

const key = (provider: string, user: string) => `${provider}\n${user}`;
