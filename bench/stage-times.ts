// Where the time of each job goes between create and Running, read from the hub's and the agents'
// own info logs ("assigned", "assignment received", "created job pod"), so the bench can say which
// leg is slow without extra instrumentation in the product. Wall-clock times: the processes share
// this machine's clock.
import { readFileSync } from 'node:fs';
import { summarize, type Summary } from './support.js';

interface LogLine {
  time?: number;
  msg?: string;
  job?: string;
  uid?: string;
  epoch?: number;
  namespaceMs?: number;
  writeMs?: number;
  podMs?: number;
  staleQuotaWaits?: number;
}

function* lines(path: string): Iterable<LogLine> {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      yield JSON.parse(line) as LogLine;
    } catch {
      // a torn last line
    }
  }
}

export interface StageTimes {
  /** create → the hub sent the Assign (informer, the finalizer write where no admission policy put it on, the status write). */
  hub: Summary;
  /** the hub sent it → the agent received it. */
  wire: Summary;
  /** received → the agent created the pod (tenant namespace, quota, attempt objects, pod). */
  agent: Summary;
  /** pod created → Running seen here (the provider's scheduler, kwok, the report, the hub's write, the watch). */
  running: Summary;
  /** Inside the hub's leg: the status write that lands before the Assign is sent. */
  hubWrite: Summary;
  /** Inside the agent's leg: the tenant namespace made ready (its quota raised), and the pod create itself when not refused first. */
  namespace: Summary;
  pod: Summary;
  /** Attempts whose pod the quota admission refused at first, judging by the bound before the one just raised. */
  staleQuotaRefusals: number;
}

/**
 * Stage times of epoch 1 of the named jobs. `createdWallMs` and `runningWallMs` are this process's
 * wall-clock times of the create call and of the first Running it saw, by job name.
 */
export function stageTimes(hubLog: string, agentLogs: string[], namespace: string, createdWallMs: Map<string, number>, runningWallMs: Map<string, number>): StageTimes {
  const assigned = new Map<string, { at: number; uid: string; writeMs?: number }>();
  for (const l of lines(hubLog)) {
    if (l.msg !== 'assigned' || l.epoch !== 1 || !l.job?.startsWith(`${namespace}/`) || !l.uid || l.time === undefined) continue;
    const name = l.job.slice(namespace.length + 1);
    if (createdWallMs.has(name) && !assigned.has(name)) assigned.set(name, { at: l.time, uid: l.uid, ...(l.writeMs !== undefined ? { writeMs: l.writeMs } : {}) });
  }
  const received = new Map<string, number>();
  const podCreated = new Map<string, LogLine & { time: number }>();
  for (const path of agentLogs) {
    for (const l of lines(path)) {
      if (l.epoch !== 1 || !l.job || l.time === undefined) continue;
      if (l.msg === 'assignment received' && !received.has(l.job)) received.set(l.job, l.time);
      if (l.msg === 'created job pod' && !podCreated.has(l.job)) podCreated.set(l.job, l as LogLine & { time: number });
    }
  }
  const hubWrites: number[] = [];
  const namespaceParts: number[] = [];
  const podParts: number[] = [];
  let staleQuotaRefusals = 0;
  const hub: number[] = [];
  const wire: number[] = [];
  const agent: number[] = [];
  const running: number[] = [];
  for (const [name, a] of assigned) {
    const created = createdWallMs.get(name)!;
    const got = received.get(a.uid);
    const podLine = podCreated.get(a.uid);
    const pod = podLine?.time;
    if (podLine?.namespaceMs !== undefined) namespaceParts.push(podLine.namespaceMs);
    if (podLine?.podMs !== undefined && !podLine.staleQuotaWaits) podParts.push(podLine.podMs);
    if (podLine?.staleQuotaWaits) staleQuotaRefusals++;
    const run = runningWallMs.get(name);
    hub.push(a.at - created);
    if (a.writeMs !== undefined) hubWrites.push(a.writeMs);
    if (got !== undefined) wire.push(got - a.at);
    if (got !== undefined && pod !== undefined) agent.push(pod - got);
    if (pod !== undefined && run !== undefined) running.push(run - pod);
  }
  return { hub: summarize(hub), wire: summarize(wire), agent: summarize(agent), running: summarize(running), hubWrite: summarize(hubWrites), namespace: summarize(namespaceParts), pod: summarize(podParts), staleQuotaRefusals };
}
