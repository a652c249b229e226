// `fedgpu estimate -f job.yaml [--for 2h]`: where a GpuJob would go on the live market and what it
// would cost, creating nothing. The hub cluster's apiserver validates and defaults the job with a
// server-side dry run (the CRD's schema, CEL rules and admission policies, unknown fields refused,
// nothing stored), then the hub's own scheduler runs here on the GpuProviders it lists.

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, GPUJOB_PLURAL, GROUP, VERSION, type GpuJob } from '../../api/types.js';
import { CliError, ExitCode } from '../errors.js';
import { call, hubClients, type Globals } from '../market.command.js';
import { render } from '../output.js';
import { estimateJob, formatEstimate, parseForDuration } from './estimate.js';

export function estimateCommand(globals: () => Globals): Command {
  return new Command('estimate')
    .description('where a GpuJob would be placed on the live market now, and what it would cost; creates nothing')
    .requiredOption('-f, --filename <file>', 'the GpuJob, YAML or JSON (- reads stdin)')
    .option('--for <duration>', 'also price this run time, e.g. 2h, 90m, 1h30m, 3d (GPUs × hours × price)')
    .option('-n, --namespace <ns>', "namespace (default: the file's, else default)")
    .action(async (o: { filename: string; for?: string; namespace?: string }) => {
      const g = globals();
      let forSeconds: number | undefined;
      try {
        forSeconds = o.for === undefined ? undefined : parseForDuration(o.for);
      } catch (err) {
        throw new CliError((err as Error).message, ExitCode.Usage);
      }
      const job = readJob(o.filename, o.namespace);
      const { api, providers, server } = hubClients(g);
      const validated = await dryRun(api, job, o.filename, server);
      // The dry run named the object from generateName; the estimate speaks of the file's name.
      validated.metadata.name = job.metadata.name ?? '(unnamed)';
      const market = (await call('gpuproviders', server, () => providers.list())).items;
      const estimate = estimateJob(validated, market, Date.now(), forSeconds);
      process.stdout.write(g.output === 'table' ? formatEstimate(estimate) : render(g.output, estimate, () => []));
    });
}

/** One GpuJob from the file, with the namespace settled; usage errors name what is wrong. */
export function parseJobDocument(text: string, source: string, namespace: string | undefined): GpuJob {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) throw new CliError(`${source}: expected one GpuJob, found ${docs.length} documents`, ExitCode.Usage);
  const doc = docs[0]!;
  if (doc.errors.length > 0) throw new CliError(`${source}: not YAML: ${doc.errors[0]!.message}`, ExitCode.Usage);
  const job = doc.toJS() as Partial<GpuJob> | null;
  if (job === null || typeof job !== 'object' || Array.isArray(job)) throw new CliError(`${source}: not a GpuJob object`, ExitCode.Usage);
  if (job.apiVersion !== API_VERSION) throw new CliError(`${source}: apiVersion must be ${API_VERSION}, got ${JSON.stringify(job.apiVersion)}`, ExitCode.Usage);
  if (job.kind !== 'GpuJob') throw new CliError(`${source}: kind must be GpuJob, got ${JSON.stringify(job.kind)}`, ExitCode.Usage);
  const metadata = job.metadata ?? {};
  if (namespace && metadata.namespace && namespace !== metadata.namespace) {
    throw new CliError(`${source}: the namespace in the file (${metadata.namespace}) does not match --namespace ${namespace}`, ExitCode.Usage);
  }
  return { ...job, metadata: { ...metadata, namespace: namespace ?? metadata.namespace ?? 'default' } } as GpuJob;
}

function readJob(file: string, namespace: string | undefined): GpuJob {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.Usage);
  }
  return parseJobDocument(text, file, namespace);
}

/** The apiserver's verdict on the job as a create would get it, defaults applied; nothing is stored. */
async function dryRun(api: ReturnType<typeof hubClients>['api'], job: GpuJob, source: string, server: string | undefined): Promise<GpuJob> {
  const { name, resourceVersion: _rv, uid: _uid, ...metadata } = job.metadata;
  // generateName: an estimate of a job that already exists under that name still validates.
  const body = { ...job, metadata: { ...metadata, generateName: `${name ?? 'estimate'}-` } };
  const namespace = job.metadata.namespace!;
  try {
    return (await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: GPUJOB_PLURAL, namespace, body, dryRun: 'All', fieldValidation: 'Strict' })) as GpuJob;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = withFileName(statusMessage((err as { body?: unknown }).body), name ?? 'estimate');
    if (code === 422 || code === 400) throw new CliError(`${source}: the hub refuses this GpuJob: ${message}`, ExitCode.Usage);
    if (code === 403) {
      throw new CliError(`the hub refused the dry run (HTTP 403): estimate validates the job as a create would, so it needs create on gpujobs in ${namespace} (nothing is created): ${message}`);
    }
    if (code === 404) throw new CliError(`namespace ${namespace} or the GpuJob API is not on the hub at ${server ?? '?'}: ${message}`, ExitCode.NotFound);
    return call('gpujobs', server, () => Promise.reject(err));
  }
}

/** The apiserver names the object by its generated name ("trainer-x7k2p"); the user wrote "trainer". */
export function withFileName(message: string, name: string): string {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return message.replace(new RegExp(`"${escaped}-[a-z0-9]{5}"`, 'g'), `"${name}"`);
}

function statusMessage(body: unknown): string {
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return (body as { message?: string } | undefined)?.message ?? 'no detail';
}
