import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map(); const dt = p.timeDeltas; 
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0));
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}:${n.callFrame.columnNumber}`;
for (const target of process.argv.slice(3)) {
  const agg = new Map();
  for (const [id, us] of self) { const n = byId.get(id); if (n.callFrame.functionName !== target) continue;
    const chain = []; let cur = parent.get(id); for (let d = 0; d < 6 && cur; d++) { chain.push(name(byId.get(cur))); cur = parent.get(cur); }
    const k = chain.join(' < '); agg.set(k, (agg.get(k) ?? 0) + us); }
  console.log('==', target); for (const [k, us] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log((us / 1000).toFixed(0).padStart(6), 'ms', k.slice(0, 600));
}
