import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HDNodeWallet } from 'ethers';
import { pidFileLine } from './processes.js';

// A local EVM chain for tests, benches and the sandbox: anvil from the @foundry-rs/anvil npm package,
// on a kernel-chosen port of 127.0.0.1, with the well-known dev mnemonic so accounts are deterministic.
// Every anvil started here is stopped by its own pid: by stop(), or by the exit/signal handlers
// below when a test fails or the run is interrupted. Given a `dir`, it also leaves `anvil.pid` there
// in the test bed's format (`<pid> <binary>`, removed when anvil exits), so that `reapPidDir` and
// `reapStaleRuns` find it after the runner was killed too hard to run those handlers.

export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk';
export const ANVIL_CHAIN_ID = 31337;

export interface AnvilAccount {
  address: string;
  privateKey: string;
}

export interface Anvil {
  rpcUrl: string;
  chainId: bigint;
  pid: number;
  accounts: AnvilAccount[];
  /** Last lines anvil printed (for error messages). */
  output(): string;
  /** Stops this anvil (SIGTERM, then SIGKILL after a grace period) and waits until it has exited. */
  stop(): Promise<void>;
}

export interface StartAnvilOptions {
  /** Dev accounts to fund and return (default 10). */
  accounts?: number;
  /** Interval mining in seconds; by default every transaction is mined at once (automine). */
  blockTime?: number;
  chainId?: number;
  mnemonic?: string;
  /** Bound on the whole start-up, process launch to first eth_chainId answer (default 30 s). */
  startupTimeoutMs?: number;
  /** Directory for `anvil.pid` (created if missing); without one, no pid file is written. */
  dir?: string;
}

const live = new Set<{ child: ChildProcess; pidFile?: string }>();
let exitHandlersInstalled = false;

/** Path of the anvil binary shipped by the platform package (its postinstall may not have run). */
export function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil');
}

export async function startAnvil(options: StartAnvilOptions = {}): Promise<Anvil> {
  const accountCount = options.accounts ?? 10;
  const chainId = options.chainId ?? ANVIL_CHAIN_ID;
  const mnemonic = options.mnemonic ?? ANVIL_MNEMONIC;
  const deadline = Date.now() + (options.startupTimeoutMs ?? 30_000);
  const args = [
    '--host', '127.0.0.1',
    '--port', '0', // anvil binds a free port and prints it: no race with another process
    '--accounts', String(accountCount),
    '--mnemonic', mnemonic,
    '--chain-id', String(chainId),
  ];
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));

  installExitHandlers();
  const binary = anvilBinary();
  const pidFile = options.dir === undefined ? undefined : path.join(options.dir, 'anvil.pid');
  if (options.dir !== undefined) mkdirSync(options.dir, { recursive: true });
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start anvil');
  const pid = child.pid;
  if (pidFile) writeFileSync(pidFile, pidFileLine(pid, binary));
  const entry = { child, pidFile };
  live.add(entry);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(entry);
      if (pidFile) rmSync(pidFile, { force: true });
      resolve();
    }),
  );

  // Keep draining output for anvil's whole life (a full pipe would block it); remember the tail.
  let tail = '';
  const remember = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-8_192);
  };
  child.stdout.on('data', remember);
  child.stderr.on('data', remember);

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(escalate);
  };

  try {
    const port = await listeningPort(child, () => tail, deadline);
    const rpcUrl = `http://127.0.0.1:${port}`;
    const answeredChainId = await waitForChainId(rpcUrl, child, deadline);
    if (answeredChainId !== BigInt(chainId)) {
      throw new Error(`anvil answered chain id ${answeredChainId}, expected ${chainId}`);
    }
    const accounts = deriveAccounts(mnemonic, accountCount);
    await checkAccounts(rpcUrl, accounts);
    return { rpcUrl, chainId: answeredChainId, pid, accounts, output: () => tail, stop };
  } catch (err) {
    await stop();
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`anvil did not start: ${message}\n--- anvil output ---\n${tail}`);
  }
}

/** Waits for anvil's "Listening on 127.0.0.1:PORT" line. */
async function listeningPort(child: ChildProcess, output: () => string, deadline: number): Promise<number> {
  for (let attempt = 0; Date.now() < deadline && attempt < 600; attempt++) {
    const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(output());
    if (match?.[1] !== undefined) return Number(match[1]);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('anvil exited during start-up');
    await sleep(50);
  }
  throw new Error('anvil never printed its listening address');
}

/** Bounded retries of eth_chainId until anvil answers. */
async function waitForChainId(rpcUrl: string, child: ChildProcess, deadline: number): Promise<bigint> {
  let lastError: unknown;
  for (let attempt = 0; Date.now() < deadline && attempt < 200; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('anvil exited during start-up');
    try {
      return BigInt(String(await rpc(rpcUrl, 'eth_chainId', [])));
    } catch (err) {
      lastError = err;
      await sleep(100);
    }
  }
  throw new Error(`no answer to eth_chainId: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

function deriveAccounts(mnemonic: string, count: number): AnvilAccount[] {
  // Derive the parent once: each fromPhrase() call re-runs the 2048-round seed derivation.
  const parent = HDNodeWallet.fromPhrase(mnemonic, undefined, "m/44'/60'/0'/0");
  return Array.from({ length: count }, (_, i) => {
    const wallet = parent.deriveChild(i);
    return { address: wallet.address, privateKey: wallet.privateKey };
  });
}

/** The derivation must agree with anvil's own, or every signature in a test would be wrong. */
async function checkAccounts(rpcUrl: string, accounts: AnvilAccount[]): Promise<void> {
  const remote = (await rpc(rpcUrl, 'eth_accounts', [])) as string[];
  const local = accounts.map((a) => a.address.toLowerCase());
  if (remote.map((a) => a.toLowerCase()).join() !== local.join()) {
    throw new Error(`anvil accounts ${remote.join()} differ from the derived ${local.join()}`);
  }
}

async function rpc(rpcUrl: string, method: string, params: unknown[]): Promise<unknown> {
  const response = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(2_000),
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Installed once: kills every live anvil by pid when this process exits or is interrupted. */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once('exit', killAllNow);
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(signal, () => {
      killAllNow();
      // Keep the default meaning of the signal unless someone else also handles it.
      if (process.listenerCount(signal) === 0) process.exit(128 + number);
    });
  }
}

function killAllNow(): void {
  for (const { child, pidFile } of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
    if (pidFile) rmSync(pidFile, { force: true });
  }
  live.clear();
}
