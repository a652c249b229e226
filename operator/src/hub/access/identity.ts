// Who is asking: the hub serves an aggregated API, so the hub cluster's kube-apiserver has already
// authenticated the user and forwards the identity in request headers over a TLS connection made
// with its front-proxy client certificate. We trust the headers only from a connection whose client
// certificate chains to the requestheader CA and names an allowed proxy (the Kubernetes rules),
// read from the kube-system/extension-apiserver-authentication ConfigMap the apiserver publishes.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface RequestHeaderConfig {
  caPem: string;
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

export interface UserInfo {
  user: string;
  groups: string[];
  extra: Record<string, string[]>;
}

const jsonList = (text: string | undefined): string[] => {
  if (!text) return [];
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
};

/** Reads the aggregation settings the hub cluster's apiserver publishes. */
export async function loadRequestHeaderConfig(kubeConfig: KubeConfig): Promise<RequestHeaderConfig> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const cm = await core.readNamespacedConfigMap({ namespace: 'kube-system', name: 'extension-apiserver-authentication' });
  const data = cm.data ?? {};
  const caPem = data['requestheader-client-ca-file'];
  if (!caPem) throw new Error('the hub apiserver is not set up for aggregation: extension-apiserver-authentication has no requestheader-client-ca-file');
  return {
    caPem,
    allowedNames: jsonList(data['requestheader-allowed-names']),
    usernameHeaders: jsonList(data['requestheader-username-headers']),
    groupHeaders: jsonList(data['requestheader-group-headers']),
    extraHeaderPrefixes: jsonList(data['requestheader-extra-headers-prefix']),
  };
}

/**
 * The user of an aggregated request, or why it is not trusted. The TLS layer already checked the
 * client certificate against the requestheader CA (rejectUnauthorized is off only so we can answer 401).
 */
export function userOf(req: IncomingMessage, config: RequestHeaderConfig): UserInfo | { error: string } {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return { error: 'requests must come through the hub cluster apiserver (no trusted front-proxy certificate)' };
  const cn = socket.getPeerCertificate()?.subject?.CN;
  const cnText = Array.isArray(cn) ? cn[0] : cn;
  if (config.allowedNames.length > 0 && (!cnText || !config.allowedNames.includes(cnText))) {
    return { error: `front-proxy certificate ${JSON.stringify(cnText)} is not an allowed requestheader name` };
  }
  const header = (name: string): string[] => {
    const v = req.headers[name.toLowerCase()];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  const user = config.usernameHeaders.map(header).find((v) => v.length > 0)?.[0];
  if (!user) return { error: 'no user in the forwarded request' };
  const groups = config.groupHeaders.flatMap(header);
  const extra: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const prefix = config.extraHeaderPrefixes.find((p) => name.startsWith(p.toLowerCase()));
    if (!prefix || value === undefined) continue;
    const key = decodeURIComponent(name.slice(prefix.length));
    extra[key] = [...(extra[key] ?? []), ...(Array.isArray(value) ? value : [value])];
  }
  return { user, groups, extra };
}
