import { Command } from 'commander';
import { sandboxDown } from '../sandbox/down.js';
import { readStatus, writeStatus } from '../sandbox/state.js';
import { runDemo } from '../sandbox/demo.js';
import { VICTIM_CLUSTER } from '../sandbox/topology.js';
import { nextSteps, sandboxUp } from '../sandbox/up.js';
import { explainJob } from './market.command.js';
import { isAlive } from '../testbed/processes.js';
import { CliError, ExitCode } from './errors.js';
import { render, type OutputFormat } from './output.js';

export function sandboxCommand(output: () => OutputFormat): Command {
  const sandbox = new Command('sandbox').description('run a whole federation on this machine, on loopback');

  sandbox
    .command('up')
    .description('start the hub, three provider clusters, the chain and the demo jobs')
    .option('--once', 'show the demo until it settles, then stop everything and exit')
    .action(async (opts: { once?: boolean }) => {
      const running = await sandboxUp({ once: opts.once });
      let result;
      try {
        result = await runDemo({
          hub: running.hubKubeConfig,
          victim: { name: VICTIM_CLUSTER, agent: running.agents.get(VICTIM_CLUSTER)! },
          log: running.log,
          waitForSettlement: running.status.chain !== undefined,
        });
      } catch (err) {
        await running.stop();
        throw err;
      }
      writeStatus({ ...running.status, demo: { state: 'done', ok: result.ok, problems: result.problems } });
      running.log(result.ok ? 'every demo job reached its expected end' : `the demo did not end as expected:\n  ${result.problems.join('\n  ')}`);
      for (const job of result.jobs) process.stdout.write(`\n${explainJob(job)}`);
      if (opts.once) {
        await running.stop();
        if (!result.ok) throw new CliError('the sandbox demo failed (see above)', ExitCode.Failure);
        return;
      }
      console.log(nextSteps(running.status));
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      });
      console.log('\nstopping the sandbox…');
      await running.stop();
      console.log('sandbox is down');
    });

  sandbox
    .command('down')
    .description('stop everything the sandbox started, by process id')
    .action(async () => {
      await sandboxDown();
    });

  sandbox
    .command('status')
    .description('what the sandbox is running and where')
    .action(() => {
      const status = readStatus();
      if (!status) throw new CliError("no sandbox has run here: start one with 'make sandbox'", ExitCode.NotFound);
      const live = status.state !== 'stopped' && isAlive(status.supervisorPid);
      const value = { ...status, state: live ? status.state : 'stopped' };
      process.stdout.write(
        render(output(), value, () => [
          ['CLUSTER', 'ROLE', 'SERVER', 'KUBECONFIG'],
          ...status.clusters.map((c) => [c.name, c.role, c.server, c.kubeconfig]),
        ]),
      );
      if (output() === 'table') console.log(`\nstate: ${value.state}`);
    });

  return sandbox;
}
