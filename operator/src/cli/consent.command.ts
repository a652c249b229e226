import { CoreV1Api } from '@kubernetes/client-node';
import { Command } from 'commander';
import { getAddress } from 'ethers';
import { formatCredits } from '../chain/credits.js';
import { MarketTopics, parseMarketLogs, queryLogs } from '../chain/market-events.js';
import { DEFAULT_HUB_ID, tenantIdOf } from '../chain/tenant.js';
import { type ChainFlags, creditsArg, loadWallet } from './chain-access.js';
import { mined, session, withChainFlags } from './chain.command.js';
import { CliError, ExitCode } from './errors.js';
import { loadKubeConfig } from './kubeconfig.js';
import { render, type OutputFormat } from './output.js';
import { FROM_BLOCK_HELP, SETTLER_HELP, fromBlockArg, requireKnownSettler, settlerArg, settlerFor } from './settler-flag.js';

// `fedgpu authorize | authorizations | revoke`: a consumer's consent on chain. The hub may lock the
// wallet's deposit for a namespace's jobs only up to what the wallet authorized for that namespace
// on that hub (GpuMarket.authorize), never on the namespace label alone. The consent names the
// namespace as it is now (its uid, chain/tenant.ts): one made later under the same name gets none.
// It also names the hub's settler key: another settler of the same market cannot spend it.

interface TenantFlags extends ChainFlags {
  namespace: string;
  namespaceUid?: string;
  hubId: string;
  settler?: string;
  fromBlock: string;
}

type Globals = () => { kubeconfig?: string; context?: string };

const withTenantFlags = (c: Command) =>
  c
    .requiredOption('--namespace <ns>', 'the hub namespace whose jobs may spend')
    .option('--namespace-uid <uid>', "the namespace's uid (default: read from the hub cluster with --kubeconfig/--context)")
    .option('--hub-id <id>', 'the hub (its --hub-id)', DEFAULT_HUB_ID)
    .option('--settler <0x…>', SETTLER_HELP)
    .option('--from-block <n>', FROM_BLOCK_HELP, '0');

const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The namespace's uid: given, or read from the hub cluster (the wallet's holder may have no access: then it is given). */
async function namespaceUidOf(flags: { namespace: string; namespaceUid?: string }, globals: Globals): Promise<string> {
  if (flags.namespaceUid !== undefined) {
    if (!UID.test(flags.namespaceUid)) throw new CliError(`--namespace-uid ${flags.namespaceUid} is not a uid (a UUID such as 3f1c2a9e-6b0d-4c47-9a51-0e2d8b7c6f10)`, ExitCode.Usage);
    return flags.namespaceUid.toLowerCase();
  }
  const hint = `pass --namespace-uid (kubectl get namespace ${flags.namespace} -o jsonpath='{.metadata.uid}', or the uid in the waiting job's status.message)`;
  let uid: string | undefined;
  try {
    const core = loadKubeConfig(globals()).makeApiClient(CoreV1Api);
    uid = (await core.readNamespace({ name: flags.namespace })).metadata?.uid;
  } catch (err) {
    if (err instanceof CliError) throw new CliError(`${err.message}; or ${hint}`, err.exitCode);
    const code = (err as { code?: number }).code;
    if (code === 404) throw new CliError(`namespace ${flags.namespace} does not exist on the hub cluster; ${hint}`, ExitCode.NotFound);
    if (code === 401 || code === 403) throw new CliError(`no permission to get namespace ${flags.namespace} on the hub cluster (HTTP ${code}); ${hint}`, ExitCode.Usage);
    throw new CliError(`cannot reach the hub cluster to read namespace ${flags.namespace} (${String((err as Error).message).split('\n')[0]}); ${hint}`, ExitCode.Unreachable);
  }
  if (!uid) throw new CliError(`namespace ${flags.namespace} has no uid; ${hint}`, ExitCode.Usage);
  return uid;
}

/** `--expires`: an ISO date/time, or a duration from now such as 30d, 12h, 90m. */
export function expiryArg(text: string, nowMs = Date.now()): bigint {
  const duration = /^(\d+)([dhm])$/.exec(text.trim());
  const ms = duration ? nowMs + Number(duration[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[duration[2] as 'd' | 'h' | 'm'] : Date.parse(text);
  if (!Number.isFinite(ms)) throw new CliError(`--expires ${text} is neither a date (2027-01-31) nor a duration (30d, 12h, 90m)`, ExitCode.Usage);
  if (ms <= nowMs) throw new CliError(`--expires ${text} is in the past`, ExitCode.Usage);
  return BigInt(Math.floor(ms / 1000));
}

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

export function authorizeCommand(output: () => OutputFormat, globals: Globals): Command {
  return withTenantFlags(withChainFlags(new Command('authorize'), true))
    .description("let the hub lock up to --cap credits of this wallet's deposit for a namespace's jobs, until --expires (replaces an earlier authorization)")
    .requiredOption('--cap <credits>', 'most credits the hub may lock in escrows for the namespace, in total')
    .requiredOption('--expires <when>', 'a date (2027-01-31) or a duration from now (30d, 12h)')
    .action(async (flags: TenantFlags & { cap: string; expires: string }) => {
      const cap = creditsArg(flags.cap);
      const expiresAt = expiryArg(flags.expires);
      const namespaceUid = await namespaceUidOf(flags, globals);
      const tenant = tenantIdOf(flags.hubId, flags.namespace, namespaceUid);
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const settler = await settlerFor(flags, chain);
        await requireKnownSettler(chain, settler, 'no hub could spend this authorization');
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).authorize(tenant, settler, cap, expiresAt));
        return { wallet: wallet.address, hubId: flags.hubId, namespace: flags.namespace, namespaceUid, settler, tenant, cap: formatCredits(cap), expiresAt: iso(expiresAt), ...tx };
      });
      process.stdout.write(
        render(output(), result, () => [
          [`${result.wallet} authorized namespace ${result.namespace} (uid ${namespaceUid}) on hub ${result.hubId} to lock up to ${result.cap} credits through settler ${result.settler} until ${result.expiresAt} (tx ${result.txHash})`],
        ]),
      );
    });
}

export function revokeCommand(output: () => OutputFormat, globals: Globals): Command {
  return withChainFlags(new Command('revoke'), true)
    .description('withdraw an authorization: no new escrow for the namespace (open ones settle or can be reclaimed after expiry)')
    .option('--namespace <ns>', 'the hub namespace whose authorization to withdraw')
    .option('--namespace-uid <uid>', "the namespace's uid (default: read from the hub cluster with --kubeconfig/--context)")
    .option('--hub-id <id>', 'the hub (its --hub-id)', DEFAULT_HUB_ID)
    .option('--tenant <0x…>', 'a tenant hash as `fedgpu authorizations` lists it, instead of --namespace (a namespace gone, or an authorization given before tenants named the uid)')
    .option('--settler <0x…>', SETTLER_HELP)
    .option('--from-block <n>', FROM_BLOCK_HELP, '0')
    .action(async (flags: ChainFlags & { namespace?: string; namespaceUid?: string; hubId: string; tenant?: string; settler?: string; fromBlock: string }) => {
      if (!flags.tenant === !flags.namespace) throw new CliError('give --namespace (with --namespace-uid, or a kubeconfig to read it) or --tenant, not both', ExitCode.Usage);
      if (flags.tenant !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(flags.tenant)) throw new CliError(`--tenant ${flags.tenant} is not a 32-byte hex hash`, ExitCode.Usage);
      const namespaceUid = flags.namespace ? await namespaceUidOf({ namespace: flags.namespace, ...(flags.namespaceUid !== undefined ? { namespaceUid: flags.namespaceUid } : {}) }, globals) : undefined;
      const tenant = flags.tenant ?? tenantIdOf(flags.hubId, flags.namespace!, namespaceUid!);
      const what = flags.namespace ? `namespace ${flags.namespace} (uid ${namespaceUid}) on hub ${flags.hubId}` : `tenant ${tenant}`;
      const wallet = loadWallet(flags, true);
      const result = await session(flags, async (chain) => {
        const settler = await settlerFor(flags, chain);
        // The contract accepts a revoke of nothing; a wrong uid or settler would then leave the real consent standing.
        const [, expiresAt] = await chain.market.authorizationOf(wallet.address, settler, tenant);
        if (expiresAt === 0n) throw new CliError(`${wallet.address} has no authorization of ${what} for settler ${settler} to revoke (fedgpu authorizations lists them by tenant hash and settler)`, ExitCode.NotFound);
        const tx = await mined(chain.market.connect(wallet.connect(chain.provider)).revoke(tenant, settler));
        return { wallet: wallet.address, hubId: flags.hubId, ...(flags.namespace ? { namespace: flags.namespace, namespaceUid } : {}), settler, tenant, ...tx };
      });
      process.stdout.write(render(output(), result, () => [[`${result.wallet} revoked ${what} for settler ${result.settler} (tx ${result.txHash})`]]));
    });
}

export function authorizationsCommand(output: () => OutputFormat, globals: Globals): Command {
  return withChainFlags(new Command('authorizations'), true)
    .description("the wallet's authorizations on chain: what each tenant may still lock through each settler, and until when")
    .option('--namespace <ns>', 'name this namespace in the listing (tenants are hashes on chain)')
    .option('--namespace-uid <uid>', "the uid of --namespace (default: read from the hub cluster)")
    .option('--hub-id <id>', 'the hub of --namespace', DEFAULT_HUB_ID)
    .option('--settler <0x…>', 'list only the authorizations of this settler')
    .option('--from-block <n>', 'first block to scan (the market deployment block)', '0')
    .action(async (flags: ChainFlags & { namespace?: string; namespaceUid?: string; hubId: string; settler?: string; fromBlock: string }) => {
      const only = flags.settler === undefined ? undefined : settlerArg(flags.settler);
      const fromBlock = fromBlockArg(flags.fromBlock);
      const wallet = loadWallet(flags, true);
      const named: Record<string, string> = {};
      if (flags.namespace) {
        const uid = await namespaceUidOf({ namespace: flags.namespace, ...(flags.namespaceUid ? { namespaceUid: flags.namespaceUid } : {}) }, globals);
        named[tenantIdOf(flags.hubId, flags.namespace, uid)] = `${flags.hubId}/${flags.namespace}`;
      }
      const rows = await session(flags, async (chain) => {
        const to = await chain.provider.getBlockNumber();
        const topic = '0x' + wallet.address.toLowerCase().slice(2).padStart(64, '0');
        const logs = parseMarketLogs(
          await queryLogs(chain.provider, { address: chain.marketAddress, topics: [[MarketTopics.Authorized, MarketTopics.AuthorizationRevoked], topic], fromBlock, toBlock: to }),
          chain.marketAddress,
        );
        // One row per tenant and settler the wallet ever named, with what the chain says now.
        const pairs = new Map<string, { tenant: string; settler: string }>();
        for (const l of logs) {
          const pair = { tenant: String(l.args.tenant), settler: getAddress(String(l.args.settler)) };
          if (only === undefined || pair.settler === only) pairs.set(`${pair.tenant}/${pair.settler}`, pair);
        }
        const now = BigInt(Math.floor(Date.now() / 1000));
        // A consent to a key that is no longer a settler can be spent by no one (until it is one again).
        const live = new Map(await Promise.all([...new Set([...pairs.values()].map((p) => p.settler))].map(async (a) => [a, await chain.market.isSettler(a)] as const)));
        return Promise.all(
          [...pairs.values()].map(async ({ tenant, settler }) => {
            const [remaining, expiresAt] = await chain.market.authorizationOf(wallet.address, settler, tenant);
            const state =
              expiresAt === 0n ? 'revoked' : expiresAt < now ? 'expired' : remaining === 0n ? 'used up' : live.get(settler) ? 'active' : 'settler removed';
            return { tenant, settler, name: named[tenant] ?? '', remaining: formatCredits(remaining), expiresAt: expiresAt === 0n ? '' : iso(expiresAt), state };
          }),
        );
      });
      if (flags.namespace && !rows.some((r) => r.name)) {
        throw new CliError(`${wallet.address} never authorized namespace ${flags.namespace} on hub ${flags.hubId}${only ? ` for settler ${only}` : ''}`, ExitCode.NotFound);
      }
      process.stdout.write(
        render(output(), { wallet: wallet.address, authorizations: rows }, () => [
          ['TENANT', 'NAME', 'SETTLER', 'STATE', 'REMAINING', 'EXPIRES'],
          ...rows.map((r) => [r.tenant, r.name || '-', r.settler, r.state, r.remaining, r.expiresAt || '-']),
        ]),
      );
    });
}
