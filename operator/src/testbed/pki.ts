import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Certificates for a test-bed cluster, made with Debian's openssl: a CA, the apiserver's serving
// certificate for 127.0.0.1, an admin client certificate in group system:masters, and the
// service-account signing key. ECDSA P-256 keeps generation fast.

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** The front-proxy (aggregation) CA and the client certificate the apiserver proxies with. */
  frontProxyCaCert: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
}

/** Extensions of a client certificate (an identity the apiserver authenticates). */
const clientAuth = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth'];

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc'];

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Issues `<name>.crt` and `<name>.key` in `dir`, signed by the CA there (`<ca>.crt`, `<ca>.key`). */
export function issue(dir: string, name: string, subject: string, extensions: string[], ca = 'ca'): void {
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(['req', '-new', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
      '-days', '3650', '-out', `${name}.crt`, '-extfile', `${name}.ext`],
    dir,
  );
}

export function createClusterPki(dir: string): ClusterPki {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-new', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650',
    '-subj', '/CN=fedgpu-testbed-ca'], dir);
  issue(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    // 10.0.0.1 is the in-cluster service IP of `kubernetes`; it is a name in the cert, never dialled.
    'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ]);
  issue(dir, 'admin', '/O=system:masters/CN=fedgpu-admin', clientAuth);
  // Aggregation: a separate CA, as Kubernetes requires, for the identity the apiserver forwards.
  openssl(['req', '-x509', '-new', ...ecKey, '-keyout', 'front-proxy-ca.key', '-out', 'front-proxy-ca.crt', '-days', '3650',
    '-subj', '/CN=fedgpu-testbed-front-proxy-ca'], dir);
  issue(dir, 'front-proxy-client', '/CN=front-proxy-client', clientAuth, 'front-proxy-ca');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('apiserver.crt'),
    serverKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
    frontProxyCaCert: p('front-proxy-ca.crt'),
    frontProxyClientCert: p('front-proxy-client.crt'),
    frontProxyClientKey: p('front-proxy-client.key'),
  };
}

/** A client certificate for a test user (CN = user, O = each group), signed by the cluster CA. */
export function issueUserCert(pki: ClusterPki, user: string, groups: string[] = []): { cert: string; key: string } {
  const name = `user-${user.replace(/[^a-z0-9-]/gi, '_')}`;
  const subject = `${groups.map((g) => `/O=${g}`).join('')}/CN=${user}`;
  issue(pki.dir, name, subject, clientAuth);
  return { cert: join(pki.dir, `${name}.crt`), key: join(pki.dir, `${name}.key`) };
}

/** A kubeconfig for a test user of the cluster. */
export function userKubeconfigYaml(name: string, server: string, pki: ClusterPki, user: string, cert: { cert: string; key: string }): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(pki.caCert)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${b64(cert.cert)}`,
    `    client-key-data: ${b64(cert.key)}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${user}`,
    `current-context: ${name}`,
    '',
  ].join('\n');
}

/** A kubeconfig with the certificates embedded, so it works from any directory. */
export function kubeconfigYaml(name: string, server: string, pki: ClusterPki): string {
  return userKubeconfigYaml(name, server, pki, `${name}-admin`, { cert: pki.adminCert, key: pki.adminKey });
}
