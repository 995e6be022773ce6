import { generateKeyPairSync } from 'node:crypto';
import { every, Wakeup, type Clock, type Logger, type Task } from '@ztwim/core';
import { derToPem, SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import type { TlsMaterial } from '../endpoints/endpoints.ts';
import type { X509Ca } from '../ca/x509-ca.ts';

/** The server's own X509-SVID (spiffe://<td>/spire/server) for its TCP endpoint. */
export interface ServerSvid {
  readonly tls: TlsMaterial;
  readonly certChain: readonly Uint8Array[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface ServerSvidRotatorDeps {
  readonly trustDomain: TrustDomain;
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** The signing CA; onActivate wakes the rotator when a different CA starts signing. */
  readonly ca: { x509Ca(): X509Ca; onActivate(listener: () => void): () => void };
}

/**
 * Mints the server SVID and renews it at half-life, or at once when a new CA activates
 * (SPIRE `pkg/server/svid/rotator.go`). The first SVID is minted by the constructor, since the
 * TCP endpoint needs it before it listens; run() hands each renewed one to `onRotate`.
 */
export class ServerSvidRotator {
  readonly #deps: ServerSvidRotatorDeps;
  #current: ServerSvid;
  /** Fired by a CA activation; subscribed at once, so one before run() starts is not missed. */
  readonly #activated = new Wakeup();
  readonly #unsubscribe: () => void;

  constructor(deps: ServerSvidRotatorDeps) {
    this.#deps = deps;
    this.#current = this.#mint();
    this.#unsubscribe = deps.ca.onActivate(() => this.#activated.fire());
  }

  current(): ServerSvid {
    return this.#current;
  }

  /** The renewal loop: `onRotate` receives each new SVID (to put on the listeners). */
  run(onRotate: (svid: ServerSvid) => void): Task {
    const { clock, log } = this.#deps;
    const untilHalfLife = (): number => {
      const { notBefore, notAfter } = this.#current;
      const half = (notAfter.getTime() - notBefore.getTime()) / 2;
      return Math.max(1000, notBefore.getTime() + half - clock.nowMs());
    };
    const loop = every(
      clock,
      untilHalfLife,
      () => {
        this.#current = this.#mint();
        onRotate(this.#current);
        log.debug({ expires_at: this.#current.notAfter.toISOString() }, 'Rotated server SVID');
      },
      { immediate: false, wakeup: this.#activated, onError: (e) => log.error({ error: (e as Error).message }, 'Failed to rotate the server SVID') },
    );
    return async (signal) => {
      try {
        await loop(signal);
      } finally {
        this.#unsubscribe();
      }
    };
  }

  #mint(): ServerSvid {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const svid = this.#deps.ca
      .x509Ca()
      .signX509Svid({ publicKey, spiffeId: SpiffeId.fromSegments(this.#deps.trustDomain, 'spire', 'server'), ttlMs: this.#deps.ttlMs });
    return {
      tls: { certPem: svid.certChain.map((d) => derToPem(d, 'CERTIFICATE')).join(''), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      certChain: svid.certChain,
      notBefore: svid.notBefore,
      notAfter: svid.notAfter,
    };
  }
}
