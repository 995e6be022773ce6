import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Clock, Logger, Task } from '@ztwim/core';
import { every, failedPrecondition } from '@ztwim/core';

/** A certificate chain and key in PEM, checked to belong together. */
export interface ServingCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly context: SecureContext;
  readonly notAfter: Date;
  readonly notBefore: Date;
  readonly fingerprint256: string;
}

/** Builds a TLS context from PEM; throws when the key does not match the certificate. */
export function loadServingCert(certPem: string, keyPem: string): ServingCert {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (e) {
    throw failedPrecondition(`serving certificate: cannot parse certificate: ${(e as Error).message}`);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw failedPrecondition(`serving certificate: ${(e as Error).message}`);
  }
  return {
    certPem,
    keyPem,
    context,
    notAfter: new Date(leaf.validTo),
    notBefore: new Date(leaf.validFrom),
    fingerprint256: leaf.fingerprint256,
  };
}

export interface CertFileWatcherOptions {
  readonly certFilePath: string;
  readonly keyFilePath: string;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onLoad: (cert: ServingCert) => void;
  readonly onError?: (err: Error) => void;
}

/**
 * Re-reads a certificate and key file pair every interval and reports a new pair once both
 * files have changed into a matching pair (a half-written rotation keeps the old pair).
 */
export class CertFileWatcher {
  private readonly o: CertFileWatcherOptions;
  private lastCert: string | undefined;
  private lastKey: string | undefined;
  private readonly stopping = new AbortController();
  private closed = false;

  constructor(options: CertFileWatcherOptions) {
    this.o = options;
  }

  /** Loads the files once (throws if unusable); reloadTask() then watches them. */
  async start(): Promise<ServingCert> {
    const cert = await this.read();
    this.o.onLoad(cert);
    return cert;
  }

  /** Checks the files every interval until the signal aborts or close(). */
  reloadTask(): Task {
    // check() never rejects: a bad read is logged and the current certificate kept.
    const loop = every(this.o.clock, this.o.intervalMs, () => this.check().then(() => undefined), { immediate: false, name: 'serving_cert_reload' });
    return (signal) => loop(AbortSignal.any([signal, this.stopping.signal]));
  }

  /** Checks the files now; resolves to whether a new certificate was loaded. */
  async check(): Promise<boolean> {
    let certPem: string;
    let keyPem: string;
    try {
      [certPem, keyPem] = await this.readPair();
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, 'Cannot read serving certificate files');
      this.o.onError?.(e as Error);
      return false;
    }
    if (certPem === this.lastCert && keyPem === this.lastKey) return false;
    let cert: ServingCert;
    try {
      cert = loadServingCert(certPem, keyPem);
    } catch (e) {
      this.o.logger.warn({ err: (e as Error).message }, 'Serving certificate files not usable; keeping the current one');
      this.o.onError?.(e as Error);
      return false;
    }
    this.lastCert = certPem;
    this.lastKey = keyPem;
    if (this.closed) return false;
    this.o.logger.info({ not_after: cert.notAfter.toISOString(), fingerprint: cert.fingerprint256 }, 'Serving certificate loaded');
    this.o.onLoad(cert);
    return true;
  }

  close(): void {
    this.closed = true;
    this.stopping.abort();
  }

  private readPair(): Promise<[string, string]> {
    return Promise.all([readFile(this.o.certFilePath, 'utf8'), readFile(this.o.keyFilePath, 'utf8')]);
  }

  private async read(): Promise<ServingCert> {
    let certPem: string;
    let keyPem: string;
    try {
      [certPem, keyPem] = await this.readPair();
    } catch (e) {
      throw failedPrecondition(`servingCertFile: cannot read certificate files: ${(e as Error).message}`);
    }
    const cert = loadServingCert(certPem, keyPem);
    this.lastCert = certPem;
    this.lastKey = keyPem;
    return cert;
  }
}
