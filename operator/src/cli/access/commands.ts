// `fedgpu logs`, `fedgpu exec` and `fedgpu port-forward`: a GpuJob's pods on whichever provider runs
// them, through the hub's tunnel (docs/access.md). Flags follow kubectl's.
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { sandboxDir } from '../../sandbox/state.js';
import { encodeFrame, FrameDecoder, STATUS, STDERR, STDIN, STDOUT } from '../../hub/access/frames.js';
import { CliError, ExitCode } from '../errors.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { durationMs } from '../operability.js';
import { accessPath, openLog, openUpgrade } from './client.js';
import { rawWhileSession } from './terminal.js';

type Globals = { kubeconfig?: string; context?: string };

/** Like the market commands: --kubeconfig, else $KUBECONFIG, else the local sandbox's hub, else ~/.kube/config. */
function hubKubeConfig(g: Globals) {
  const sandboxHub = join(sandboxDir, 'hub.kubeconfig');
  const kubeconfig = g.kubeconfig ?? (!process.env.KUBECONFIG && existsSync(sandboxHub) ? sandboxHub : undefined);
  return loadKubeConfig({ kubeconfig, ...(g.context ? { context: g.context } : {}) });
}

const nonNegativeInt = (flag: string) => (text: string) => {
  if (!/^\d+$/.test(text)) throw new CliError(`${flag} must be a non-negative integer, got ${JSON.stringify(text)}`, ExitCode.Usage);
  return Number(text);
};

export function logsCommand(globals: () => Globals): Command {
  return new Command('logs')
    .description("print a GpuJob replica's log from the provider that runs (or ran) it")
    .argument('<job>', 'GpuJob name')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-f, --follow', 'keep streaming new lines')
    .option('--replica <n>', 'replica index', nonNegativeInt('--replica'), 0)
    .option('--attempt <n>', 'attempt epoch (default: the latest; ended attempts keep a log tail)', nonNegativeInt('--attempt'))
    .option('-c, --container <name>', 'container (default: the main one)')
    .option('--tail <lines>', 'only the last N lines (-1: all)', '-1')
    .option('--since <duration>', 'only lines newer than this, e.g. 5m')
    .option('--timestamps', 'prefix lines with their timestamp')
    .action(async (job: string, o) => {
      const query = new URLSearchParams({ replica: String(o.replica) });
      if (o.attempt !== undefined) query.set('attempt', String(o.attempt));
      if (o.container) query.set('container', o.container);
      if (o.follow) query.set('follow', 'true');
      if (!/^-?\d+$/.test(o.tail)) throw new CliError(`--tail must be an integer, got ${JSON.stringify(o.tail)}`, ExitCode.Usage);
      if (Number(o.tail) >= 0) query.set('tailLines', o.tail);
      if (o.since) query.set('sinceSeconds', String(Math.max(1, Math.ceil(durationMs(o.since) / 1000))));
      if (o.timestamps) query.set('timestamps', 'true');
      const res = await openLog(hubKubeConfig(globals()), accessPath(o.namespace, job, 'log', query));
      res.pipe(process.stdout);
      await new Promise<void>((resolve, reject) => {
        res.on('end', resolve);
        res.on('error', reject);
      });
    });
}

export function execCommand(globals: () => Globals): Command {
  return new Command('exec')
    .description('run a command in a GpuJob replica on its provider; exits with the command\'s code')
    .argument('<job>', 'GpuJob name')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--replica <n>', 'replica index', nonNegativeInt('--replica'), 0)
    .option('-c, --container <name>', 'container (default: the main one)')
    .option('-i, --stdin', 'pass stdin to the command')
    .option('-t, --tty', 'allocate a terminal')
    .action(async (job: string, command: string[], o) => {
      const query = new URLSearchParams({ replica: String(o.replica) });
      for (const c of command) query.append('command', c);
      if (o.container) query.set('container', o.container);
      if (o.stdin) query.set('stdin', 'true');
      if (o.tty) query.set('tty', 'true');
      const socket = await openUpgrade(hubKubeConfig(globals()), accessPath(o.namespace, job, 'exec', query));
      const decoder = new FrameDecoder();
      let status: { exitCode?: number; error?: string } | undefined;
      socket.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          if (f.channel === STDOUT) process.stdout.write(f.payload);
          else if (f.channel === STDERR) process.stderr.write(f.payload);
          else if (f.channel === STATUS) status = JSON.parse(f.payload.toString('utf8')) as typeof status;
        }
      });
      const restoreTerminal = rawWhileSession(process.stdin, { tty: Boolean(o.tty), stdin: Boolean(o.stdin) });
      if (o.stdin) {
        process.stdin.on('data', (chunk: Buffer) => socket.write(encodeFrame(STDIN, chunk)));
        process.stdin.on('end', () => socket.write(encodeFrame(STDIN, Buffer.alloc(0))));
      }
      try {
        await new Promise<void>((resolve) => socket.on('close', () => resolve()));
      } finally {
        restoreTerminal();
      }
      if (o.stdin) process.stdin.destroy();
      if (!status) throw new CliError('the session ended without a status', ExitCode.Failure);
      if (status.error) throw new CliError(status.error, ExitCode.Failure);
      process.exitCode = status.exitCode ?? 0;
    });
}

export function portForwardCommand(globals: () => Globals): Command {
  return new Command('port-forward')
    .description('forward local ports to a GpuJob replica on its provider ([LOCAL:]REMOTE, several allowed)')
    .argument('<job>', 'GpuJob name')
    .argument('<ports...>', '[LOCAL:]REMOTE; LOCAL 0 or omitted picks a free port')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--replica <n>', 'replica index', nonNegativeInt('--replica'), 0)
    .option('--address <ip>', 'local address to listen on', '127.0.0.1')
    .action(async (job: string, specs: string[], o) => {
      const kc = hubKubeConfig(globals());
      const pairs = specs.map(parsePortSpec);
      const servers: Server[] = [];
      for (const { local, remote } of pairs) {
        const query = new URLSearchParams({ replica: String(o.replica), port: String(remote) });
        const path = accessPath(o.namespace, job, 'portforward', query);
        // One tunnel session per accepted connection, as kubectl does one stream pair per connection.
        const server = createServer((conn) => {
          conn.pause();
          openUpgrade(kc, path).then(
            (remoteSocket) => {
              conn.pipe(remoteSocket).pipe(conn);
              conn.resume();
              const end = () => {
                conn.destroy();
                remoteSocket.destroy();
              };
              conn.on('error', end);
              remoteSocket.on('error', end);
            },
            (error: unknown) => {
              console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
              conn.destroy();
            },
          );
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', (e) => reject(new CliError(`cannot listen on ${o.address}:${local}: ${e.message}`, ExitCode.Usage)));
          server.listen(local, o.address, () => resolve());
        });
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : local;
        console.log(`Forwarding from ${o.address}:${port} -> ${remote}`);
        servers.push(server);
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      for (const s of servers) s.close();
    });
}

export function parsePortSpec(spec: string): { local: number; remote: number } {
  const m = /^(?:(\d{1,5}):)?(\d{1,5})$/.exec(spec);
  const local = m?.[1] === undefined ? undefined : Number(m[1]);
  const remote = m ? Number(m[2]) : NaN;
  if (!m || !(remote >= 1 && remote <= 65535) || (local !== undefined && local > 65535)) {
    throw new CliError(`port ${JSON.stringify(spec)} must be [LOCAL:]REMOTE with ports 1-65535 (LOCAL 0 picks a free port)`, ExitCode.Usage);
  }
  return { local: local ?? remote, remote };
}
