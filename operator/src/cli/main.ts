#!/usr/bin/env node
// The fedgpu command. Also runs as a kubectl plugin: `kubectl fedgpu …` finds `kubectl-fedgpu`.
import { Command, Option } from 'commander';
import { balanceCommand, depositCommand, reputationCommand, stakeCommand, unstakeCommand } from './chain.command.js';
import { authorizationsCommand, authorizeCommand, revokeCommand } from './consent.command.js';
import { allowSettlerCommand, disallowSettlerCommand } from './provider-consent.command.js';
import { claimCommand, earningsCommand } from './earnings.command.js';
import { CliError, ExitCode } from './errors.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';
import { marketCommands } from './market.command.js';
import { sandboxCommand } from './sandbox.command.js';
import { agentCommand, hubCommand } from './serve.command.js';
import { execCommand, logsCommand, portForwardCommand } from './access/commands.js';
import { estimateCommand } from './estimate/command.js';

const program = new Command('fedgpu')
  .description('fedgpu: a marketplace of idle GPUs across many Kubernetes clusters')
  .version('0.1.0')
  .option('--kubeconfig <path>', 'kubeconfig of the hub cluster (default: $KUBECONFIG or ~/.kube/config)')
  .option('--context <name>', 'kubeconfig context to use')
  .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
  .showHelpAfterError();

const output = () => program.opts<{ output: OutputFormat }>().output;
const globals = () => program.opts<{ kubeconfig?: string; context?: string }>();
program.addCommand(sandboxCommand(output));
for (const c of marketCommands(() => program.opts())) program.addCommand(c);
program.addCommand(estimateCommand(() => program.opts()));
program.addCommand(hubCommand(globals));
program.addCommand(agentCommand(globals));
program.addCommand(logsCommand(globals));
program.addCommand(execCommand(globals));
program.addCommand(portForwardCommand(globals));
program.addCommand(stakeCommand(output));
program.addCommand(unstakeCommand(output));
program.addCommand(allowSettlerCommand(output));
program.addCommand(disallowSettlerCommand(output));
program.addCommand(depositCommand(output));
program.addCommand(authorizeCommand(output, globals));
program.addCommand(authorizationsCommand(output, globals));
program.addCommand(revokeCommand(output, globals));
program.addCommand(earningsCommand(output));
program.addCommand(claimCommand(output));
program.addCommand(balanceCommand(output));
program.addCommand(reputationCommand(output));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CliError) {
    console.error(`error: ${err.message}`);
    process.exit(err.exitCode);
  }
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(ExitCode.Failure);
}
