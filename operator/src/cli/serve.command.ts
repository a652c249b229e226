import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { Wallet } from 'ethers';
import { pino } from 'pino';
import { parse } from 'yaml';
import { Agent } from '../agent/agent.js';
import type { ProviderSettings } from '../agent/inventory.js';
import { startHub } from '../hub/hub.js';
import { CliError, ExitCode } from './errors.js';
import { loadKubeConfig } from './kubeconfig.js';

// `fedgpu hub` and `fedgpu agent`: the two long-running modes of the chart's container.

type Globals = { kubeconfig?: string; context?: string };

const read = (path: string, what: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} ${path}: ${(err as Error).message}`, ExitCode.Usage);
  }
};

const durationMs = (text: string): number => {
  const m = /^(\d+)(ms|s|m)$/.exec(text);
  if (!m) throw new CliError(`bad duration ${text}: use e.g. 500ms, 15s or 2m`, ExitCode.Usage);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
};

/** Runs until SIGINT/SIGTERM, then stops `stop` (stop taking work, finish in-flight writes). */
async function untilSignalled(stop: () => Promise<void>, log: pino.Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve());
  });
  log.info('shutting down');
  await stop();
}

export function hubCommand(globals: () => Globals): Command {
  return new Command('hub')
    .description('run the hub: marketplace gRPC server and controllers')
    .requiredOption('--tls-ca <file>', 'CA certificate that signs agent client certificates')
    .requiredOption('--tls-cert <file>', "the hub's serving certificate")
    .requiredOption('--tls-key <file>', "the hub's serving key")
    .option('--grpc-host <host>', 'listen address', '127.0.0.1')
    .option('--grpc-port <port>', 'listen port (0 picks a free one)', '8443')
    .option('--audience <name>', 'hub identity signed into registration proofs', 'fedgpu-hub')
    .option('--provider-lost-after <duration>', 'heartbeat silence after which a provider is lost', '15s')
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o) => {
      const logger = pino({ level: o.logLevel, base: { component: 'hub' } });
      const hub = await startHub({
        kubeConfig: loadKubeConfig(globals()),
        tls: { caPem: read(o.tlsCa, 'CA'), certPem: read(o.tlsCert, 'certificate'), keyPem: read(o.tlsKey, 'key') },
        logger,
        audience: o.audience,
        host: o.grpcHost,
        port: Number(o.grpcPort),
        providerLostAfterMs: durationMs(o.providerLostAfter),
      });
      console.log(JSON.stringify({ msg: 'hub ready', grpcPort: hub.port }));
      await untilSignalled(() => hub.stop(), logger);
    });
}

export function agentCommand(globals: () => Globals): Command {
  return new Command('agent')
    .description("run a provider's agent against its own cluster")
    .requiredOption('--hub-address <host:port>', 'the hub marketplace address')
    .requiredOption('--tls-ca <file>', "the hub's CA certificate")
    .requiredOption('--tls-cert <file>', "this provider's client certificate")
    .requiredOption('--tls-key <file>', "this provider's client key")
    .requiredOption('--wallet-key-file <file>', "file holding the provider wallet's private key (hex)")
    .requiredOption('--settings <file>', 'YAML: pricePerGpuHour, electricity, availability')
    .option('--hub-server-name <name>', 'name to verify in the hub certificate')
    .option('--job-namespace <ns>', 'namespace job pods are created in', 'fedgpu-jobs')
    .option('--heartbeat-interval <duration>', 'heartbeat interval', '2s')
    .option('--simulated-latency <duration>', 'test bed only: answer hub pings this much later, to emulate distance', '0ms')
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o) => {
      const logger = pino({ level: o.logLevel, base: { component: 'agent' } });
      let wallet: Wallet;
      try {
        wallet = new Wallet(read(o.walletKeyFile, 'wallet key').trim());
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw new CliError(`the wallet key in ${o.walletKeyFile} is not a valid private key`, ExitCode.Usage);
      }
      const settings = parse(read(o.settings, 'settings')) as ProviderSettings;
      if (!settings?.pricePerGpuHour) throw new CliError(`${o.settings} has no pricePerGpuHour map`, ExitCode.Usage);
      const agent = new Agent({
        kubeConfig: loadKubeConfig(globals()),
        settings,
        jobNamespace: o.jobNamespace,
        hubAddress: o.hubAddress,
        tls: {
          caPem: read(o.tlsCa, 'CA'),
          certPem: read(o.tlsCert, 'certificate'),
          keyPem: read(o.tlsKey, 'key'),
          ...(o.hubServerName ? { serverName: o.hubServerName } : {}),
        },
        wallet,
        logger,
        heartbeatIntervalMs: durationMs(o.heartbeatInterval),
        simulatedLatencyMs: durationMs(o.simulatedLatency),
      });
      await agent.start();
      logger.info({ wallet: wallet.address, hub: o.hubAddress }, 'agent started');
      await untilSignalled(() => agent.stop(), logger);
    });
}
