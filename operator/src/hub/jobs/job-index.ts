// Which cached jobs a GpuProvider change can concern, kept up to date from the GpuJob informer's
// events, so a provider update costs the jobs it can affect, not a scan of every job: at 10,000
// Running jobs and 1,000 providers each updating about once a minute, the scan was most of the
// hub's work at rest.
//   waiting: not finished and needing a placement (any market change may let them fit)
//   liveOn:  provider name → jobs whose current attempt is live there (its loss concerns them)

export interface JobFacts {
  finished: boolean;
  needsPlacement: boolean;
  /** The provider of the job's live current attempt, if any. */
  liveOn?: string;
}

export class JobIndex {
  private readonly waitingKeys = new Set<string>();
  private readonly live = new Map<string, Set<string>>();
  private readonly liveOfKey = new Map<string, string>();

  /** The job at `key` is now as `facts` say (from an add or update event). */
  set(key: string, facts: JobFacts): void {
    if (!facts.finished && facts.needsPlacement) this.waitingKeys.add(key);
    else this.waitingKeys.delete(key);
    const provider = facts.finished ? undefined : facts.liveOn;
    const before = this.liveOfKey.get(key);
    if (before === provider) return;
    if (before !== undefined) this.removeLive(before, key);
    if (provider === undefined) return;
    this.liveOfKey.set(key, provider);
    let keys = this.live.get(provider);
    if (!keys) this.live.set(provider, (keys = new Set()));
    keys.add(key);
  }

  delete(key: string): void {
    this.waitingKeys.delete(key);
    const before = this.liveOfKey.get(key);
    if (before !== undefined) this.removeLive(before, key);
  }

  waiting(): readonly string[] {
    return [...this.waitingKeys];
  }

  liveOn(provider: string): readonly string[] {
    return [...(this.live.get(provider) ?? [])];
  }

  private removeLive(provider: string, key: string): void {
    this.liveOfKey.delete(key);
    const keys = this.live.get(provider);
    keys?.delete(key);
    if (keys?.size === 0) this.live.delete(provider);
  }
}
