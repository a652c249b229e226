import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCa, issueCert } from './certs.js';
import { writePemPair } from './write-pem.js';

const serverAuth = '1.3.6.1.5.5.7.3.1';
const clientAuth = '1.3.6.1.5.5.7.3.2';

describe('createCa', () => {
  it('creates a self-signed P-256 CA certificate', async () => {
    const ca = await createCa('fedgpu test CA');
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=fedgpu test CA');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // The key is PKCS#8 and matches the certificate.
    expect(ca.keyPem).toContain('BEGIN PRIVATE KEY');
    const publicFromKey = createPublicKey(createPrivateKey(ca.keyPem)).export({ format: 'der', type: 'spki' });
    expect(Buffer.compare(publicFromKey, cert.publicKey.export({ format: 'der', type: 'spki' }))).toBe(0);
  });
});

describe('issueCert', () => {
  it('issues a server+client certificate that verifies against its CA', async () => {
    const ca = await createCa('fedgpu test CA');
    const leaf = await issueCert(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '::1'],
      usages: ['server', 'client'],
      days: 30,
    });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(expect.arrayContaining([serverAuth, clientAuth]));
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const lifetimeDays = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(lifetimeDays).toBeGreaterThan(29.9);
    expect(lifetimeDays).toBeLessThan(30.1);
  });

  it('puts organizations in the subject for Kubernetes groups', async () => {
    const ca = await createCa('fedgpu test CA');
    const admin = await issueCert(ca, { commonName: 'admin', organizations: ['system:masters'], usages: ['client'] });
    const cert = new X509Certificate(admin.certPem);
    expect(cert.subject.split('\n')).toEqual(['O=system:masters', 'CN=admin']);
    expect(cert.keyUsage).toEqual([clientAuth]);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
  });

  it('does not verify against another CA', async () => {
    const ca = await createCa('ca one');
    const other = await createCa('ca two');
    const leaf = await issueCert(ca, { commonName: 'agent', usages: ['client'] });
    const cert = new X509Certificate(leaf.certPem);
    const otherCert = new X509Certificate(other.certPem);
    expect(cert.checkIssued(otherCert)).toBe(false);
    expect(cert.verify(otherCert.publicKey)).toBe(false);
  });

  it('refuses a certificate with no usage or a non-positive lifetime', async () => {
    const ca = await createCa('fedgpu test CA');
    await expect(issueCert(ca, { commonName: 'x', usages: [] })).rejects.toThrow(/usage/);
    await expect(issueCert(ca, { commonName: 'x', usages: ['server'], days: 0 })).rejects.toThrow(/days/);
  });
});

describe('writePemPair', () => {
  it('writes the certificate and an owner-only key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedgpu-tls-'));
    try {
      const ca = await createCa('fedgpu test CA');
      const paths = await writePemPair(join(dir, 'pki'), 'ca', ca);
      expect(await readFile(paths.certFile, 'utf8')).toBe(ca.certPem);
      expect(await readFile(paths.keyFile, 'utf8')).toBe(ca.keyPem);
      expect((await stat(paths.keyFile)).mode & 0o777).toBe(0o600);
      await expect(writePemPair(dir, '../escape', ca)).rejects.toThrow(/unsafe/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
