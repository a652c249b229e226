import { KubeConfig } from '@kubernetes/client-node';
import { reuseConnections } from '../runtime/connections.js';
import { CliError, ExitCode } from './errors.js';

/** A KubeConfig like kubectl finds one: --kubeconfig, else $KUBECONFIG/~/.kube/config, else in-cluster. */
export function loadKubeConfig(opts: { kubeconfig?: string; context?: string }): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new CliError(`cannot read kubeconfig ${opts.kubeconfig ?? '(default)'}: ${(err as Error).message}; pass --kubeconfig`, ExitCode.Usage);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new CliError(`no context ${opts.context} in the kubeconfig`, ExitCode.Usage);
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) throw new CliError('the kubeconfig names no cluster; pass --kubeconfig or --context', ExitCode.Usage);
  return reuseConnections(kc);
}
