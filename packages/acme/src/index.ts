export { loadServingCert, CertFileWatcher } from './serving-cert.ts';
export type { ServingCert, CertFileWatcherOptions } from './serving-cert.ts';
export { AcmeCertManager } from './acme.ts';
export type { AcmeCertManagerOptions, AcmeChallengeType, TlsAlpnServerOptions } from './acme.ts';
