// A tiny certificate authority for the hub's mTLS and the test bed's kube-apiservers.
// ECDSA P-256 with SHA-256 via Node's webcrypto; everything crosses the API as PEM strings so a CA
// can be written to disk by one process and used to issue certificates by another.
import { webcrypto } from 'node:crypto';
import './reflect-metadata-shim.js';
import * as x509 from '@peculiar/x509';

// Passed explicitly to every @peculiar/x509 call rather than installed as its global provider.
const crypto = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const keyAlgorithm: webcrypto.EcKeyImportParams & webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const dayMs = 86_400_000;
// Backdate so a peer whose clock runs a little behind still accepts a freshly issued certificate.
const clockSkewMs = 5 * 60_000;

/** A CA as PEM strings. `keyPem` is PKCS#8 and must be kept secret. */
export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

/** A leaf certificate and its PKCS#8 private key, both PEM. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

/** serverAuth and/or clientAuth extended key usage. */
export type CertUsage = 'server' | 'client';

export interface IssueCertOptions {
  commonName: string;
  /** Subject O attributes. Kubernetes reads these as the user's groups, e.g. `system:masters`. */
  organizations?: readonly string[];
  dnsNames?: readonly string[];
  /** IPv4 or IPv6 literals, e.g. `127.0.0.1`. */
  ipAddresses?: readonly string[];
  usages: readonly CertUsage[];
  /** Validity in days (default 365). */
  days?: number;
}

export interface CreateCaOptions {
  organizations?: readonly string[];
  /** Validity in days (default 3650). */
  days?: number;
}

/** Creates a self-signed CA that may sign leaf certificates only (path length 0). */
export async function createCa(commonName: string, options: CreateCaOptions = {}): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validity(options.days ?? 3650);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: subjectName(commonName, options.organizations ?? []),
      notBefore,
      notAfter,
      signingAlgorithm,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Issues a leaf certificate signed by `ca`. */
export async function issueCert(ca: CertificateAuthority, options: IssueCertOptions): Promise<IssuedCertificate> {
  if (options.usages.length === 0) throw new Error('issueCert: at least one usage (server or client) is required');
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validity(options.days ?? 365);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(options.usages.map(extendedKeyUsage), false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
  ];
  const altNames = subjectAltNames(options);
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));

  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: subjectName(options.commonName, options.organizations ?? []),
      issuer: caCert.subjectName,
      notBefore,
      notAfter,
      signingAlgorithm,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions,
    },
    crypto,
  );
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

function extendedKeyUsage(usage: CertUsage): x509.ExtendedKeyUsage {
  return usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth;
}

function subjectAltNames(options: IssueCertOptions): x509.JsonGeneralName[] {
  return [
    ...(options.dnsNames ?? []).map((value): x509.JsonGeneralName => ({ type: 'dns', value })),
    ...(options.ipAddresses ?? []).map((value): x509.JsonGeneralName => ({ type: 'ip', value })),
  ];
}

// One RDN per attribute (O first, CN last, as Kubernetes' own tooling writes them); a JSON name
// rather than a string so commas or colons in a value need no escaping.
function subjectName(commonName: string, organizations: readonly string[]): x509.JsonName {
  return [...organizations.map((o) => ({ O: [o] })), { CN: [commonName] }];
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) throw new Error(`certificate validity must be a positive number of days, got ${days}`);
  const now = Date.now();
  return { notBefore: new Date(now - clockSkewMs), notAfter: new Date(now + days * dayMs) };
}

// 16 random bytes with the top bit clear: a positive serial of at most 20 octets (RFC 5280 4.1.2.2).
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01;
  return Buffer.from(bytes).toString('hex');
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (!der) throw new Error('CA key PEM holds no key');
  return crypto.subtle.importKey('pkcs8', der, keyAlgorithm, false, ['sign']);
}
