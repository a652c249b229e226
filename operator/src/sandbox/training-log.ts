// What a demo job "prints" in the sandbox: kwok serves this file as every job pod's log on a
// provider cluster, in the CRI log format it parses.
import { criLogLines } from '../testbed/kwok/access.js';

export function trainingLog(provider: string, steps = 50): string {
  const lines = [`[${provider}] torchrun: world_size=1 rank=0 master=localhost:29500`, `[${provider}] loading dataset shards 0-7`];
  let loss = 2.9;
  for (let step = 1; step <= steps; step++) {
    loss = Math.max(0.05, loss * 0.955);
    lines.push(`[${provider}] epoch ${Math.floor((step - 1) / 10)} step ${step} loss ${loss.toFixed(4)} lr 3.0e-4 tokens/s 41250`);
    if (step % 10 === 0) lines.push(`[${provider}] checkpoint saved to $FEDGPU_CHECKPOINT_DIR/step-${step}`);
  }
  return criLogLines(lines);
}
