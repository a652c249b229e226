// Writes certificates to disk for processes that read files (kube-apiserver flags, kubeconfigs).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface PemPaths {
  certFile: string;
  keyFile: string;
}

/** Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (the key readable by the owner only). */
export async function writePemPair(dir: string, name: string, pair: PemPair): Promise<PemPaths> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`writePemPair: unsafe file name ${JSON.stringify(name)}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, pair.certPem, { mode: 0o644 });
  await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}
