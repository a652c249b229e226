export { createCa, issueCert } from './certs.js';
export type { CertificateAuthority, CertUsage, CreateCaOptions, IssueCertOptions, IssuedCertificate } from './certs.js';
export { writePemPair } from './write-pem.js';
export type { PemPair, PemPaths } from './write-pem.js';
