import type {
  AddressLike,
  BaseContract,
  BigNumberish,
  BytesLike,
  ContractRunner,
  ContractTransaction,
  ContractTransactionResponse,
  Overrides,
} from 'ethers';

// Types for an ethers Contract derived from an `as const` ABI (operator/src/gen/contracts), so a
// wrong method name, argument count or argument type is a compile error rather than a runtime one.
// Covers what our contracts use: integers, address, bool, bytes/bytesN, string, tuples and arrays.
// Overloaded function names are not supported (our contracts have none).

interface AbiParam {
  readonly name: string;
  readonly type: string;
  readonly components?: readonly AbiParam[];
}

interface AbiFunction {
  readonly type: 'function';
  readonly name: string;
  readonly inputs: readonly AbiParam[];
  readonly outputs: readonly AbiParam[];
  readonly stateMutability: 'pure' | 'view' | 'nonpayable' | 'payable';
}

/** What ethers accepts for a Solidity type. */
type InputType<T extends string, C> = T extends `${infer Inner}[${string}]`
  ? readonly InputType<Inner, C>[]
  : T extends 'tuple'
    ? C extends readonly AbiParam[]
      ? { [P in C[number] as P['name']]: InputType<P['type'], P['components']> }
      : never
    : T extends `uint${string}` | `int${string}`
      ? BigNumberish
      : T extends 'address'
        ? AddressLike
        : T extends 'bool'
          ? boolean
          : T extends `bytes${string}`
            ? BytesLike
            : T extends 'string'
              ? string
              : unknown;

/** What ethers returns for a Solidity type (tuples come back as a Result: positional and named). */
type OutputType<T extends string, C> = T extends `${infer Inner}[${string}]`
  ? OutputType<Inner, C>[]
  : T extends 'tuple'
    ? C extends readonly AbiParam[]
      ? OutputTuple<C>
      : never
    : T extends `uint${string}` | `int${string}`
      ? bigint
      : T extends 'address' | 'string' | `bytes${string}`
        ? string
        : T extends 'bool'
          ? boolean
          : unknown;

type OutputTuple<Ps extends readonly AbiParam[]> = {
  -readonly [K in keyof Ps]: Ps[K] extends AbiParam ? OutputType<Ps[K]['type'], Ps[K]['components']> : never;
} & { [P in Ps[number] as P['name']]: OutputType<P['type'], P['components']> };

type InputTuple<Ps extends readonly AbiParam[]> = {
  -readonly [K in keyof Ps]: Ps[K] extends AbiParam ? InputType<Ps[K]['type'], Ps[K]['components']> : never;
};

type Outputs<F extends AbiFunction> = F['outputs'] extends readonly []
  ? void
  : F['outputs'] extends readonly [infer Only extends AbiParam]
    ? OutputType<Only['type'], Only['components']>
    : OutputTuple<F['outputs']>;

type Args<F extends AbiFunction> = [...InputTuple<F['inputs']>, Overrides?];

/** A contract method as ethers exposes it: call/send plus the usual helpers. */
export interface TypedMethod<F extends AbiFunction> {
  (...args: Args<F>): Promise<F['stateMutability'] extends 'view' | 'pure' ? Outputs<F> : ContractTransactionResponse>;
  staticCall(...args: Args<F>): Promise<Outputs<F>>;
  estimateGas(...args: Args<F>): Promise<bigint>;
  populateTransaction(...args: Args<F>): Promise<ContractTransaction>;
}

type FunctionsOf<Abi extends readonly unknown[]> = Extract<Abi[number], AbiFunction>;

/** An ethers Contract whose methods are typed from `Abi`. */
export type TypedContract<Abi extends readonly unknown[]> = Omit<BaseContract, 'connect'> & {
  [F in FunctionsOf<Abi> as F['name']]: TypedMethod<F>;
} & {
  connect(runner: ContractRunner | null): TypedContract<Abi>;
};
