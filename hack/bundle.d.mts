// Types of hack/bundle.mjs for the TypeScript that imports it (the test bed, the benches).
import type { BuildOptions } from 'esbuild';

export function bundleOptions(outfile: string): BuildOptions;
/** Builds the fedgpu binary into `outfile` (default dist/fedgpu.mjs); returns its absolute path. */
export function bundle(outfile?: string): string;
