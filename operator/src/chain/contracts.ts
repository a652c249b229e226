import { Contract, ContractFactory, type ContractRunner, type Signer } from 'ethers';
import { ComputeCreditAbi, ComputeCreditBytecode, GpuMarketAbi, GpuMarketBytecode } from '../gen/contracts/index.js';
import type { TypedContract } from './abi-types.js';

// Deploys and attaches fedgpu's contracts as typed ethers Contracts. ABIs and bytecode come from
// operator/src/gen/contracts (make generate-contracts).

export type ComputeCreditContract = TypedContract<typeof ComputeCreditAbi>;
export type GpuMarketContract = TypedContract<typeof GpuMarketAbi>;

/** GpuMarket.EscrowState, as the contract returns it. */
export const EscrowState = { None: 0n, Open: 1n, Settled: 2n, Refunded: 3n } as const;
export type EscrowState = (typeof EscrowState)[keyof typeof EscrowState];

export function attachComputeCredit(address: string, runner: ContractRunner | null): ComputeCreditContract {
  return new Contract(address, ComputeCreditAbi, runner) as unknown as ComputeCreditContract;
}

export function attachGpuMarket(address: string, runner: ContractRunner | null): GpuMarketContract {
  return new Contract(address, GpuMarketAbi, runner) as unknown as GpuMarketContract;
}

export async function deployComputeCredit(deployer: Signer, owner?: string): Promise<ComputeCreditContract> {
  const factory = new ContractFactory(ComputeCreditAbi, ComputeCreditBytecode, deployer);
  const contract = await factory.deploy(owner ?? (await deployer.getAddress()));
  await contract.waitForDeployment();
  return attachComputeCredit(await contract.getAddress(), deployer);
}

export interface GpuMarketParams {
  tokenAddress: string;
  /** Seconds a provider waits between requestUnstake and withdrawStake. */
  unbondingDelaySeconds: bigint | number;
  /** Admin that proposes and revokes settlers; the deployer by default. */
  owner?: string;
  /** Most one slash takes, and the stake each open escrow locks from its provider (token units, default 0). */
  slashBond?: bigint;
  /** Settlers active from deployment (later ones wait out SETTLER_DELAY). */
  settlers?: string[];
}

export async function deployGpuMarket(deployer: Signer, params: GpuMarketParams): Promise<GpuMarketContract> {
  const factory = new ContractFactory(GpuMarketAbi, GpuMarketBytecode, deployer);
  const owner = params.owner ?? (await deployer.getAddress());
  const contract = await factory.deploy(params.tokenAddress, params.unbondingDelaySeconds, owner, params.slashBond ?? 0n, params.settlers ?? []);
  await contract.waitForDeployment();
  return attachGpuMarket(await contract.getAddress(), deployer);
}

export interface MarketDeployment {
  token: ComputeCreditContract;
  market: GpuMarketContract;
  tokenAddress: string;
  marketAddress: string;
}

/** Deploys a fresh token and market owned by the deployer, with its first settlers. */
export async function deployMarket(
  deployer: Signer,
  params: { unbondingDelaySeconds: bigint | number; settlers?: string[]; slashBond?: bigint },
): Promise<MarketDeployment> {
  const token = await deployComputeCredit(deployer);
  const tokenAddress = await token.getAddress();
  const market = await deployGpuMarket(deployer, { tokenAddress, ...params });
  return { token, market, tokenAddress, marketAddress: await market.getAddress() };
}
