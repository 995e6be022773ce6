import type { Clock, Logger, Random } from '@ztwim/core';
import { join } from 'node:path';
import type { ServerConfig } from '../config/server-config.ts';
import type { DataStore } from '../datastore/datastore.ts';
import { DiskKeyManager } from '../keymanager/disk.ts';
import type { KeyManager } from '../keymanager/key-manager.ts';
import { MemoryKeyManager } from '../keymanager/memory.ts';
import { Journal, LEGACY_JOURNAL_FILE } from './journal.ts';
import { CaManager } from './manager.ts';
import type { UpstreamAuthority } from './x509-ca.ts';
import type { CaBundle } from './manager.ts';

export type { CaBundle } from './manager.ts';
/** What the composition root holds: the started manager. */
export type CaManagerHandle = CaManager;

export interface CreateCaManagerDeps {
  readonly config: Pick<
    ServerConfig,
    'trustDomain' | 'dataDir' | 'caSubject' | 'caKeyType' | 'jwtKeyType' | 'caTtlMs' | 'x509SvidTtlMs' | 'jwtSvidTtlMs' | 'jwtIssuer' | 'keyManager'
  >;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly keyManager?: KeyManager;
  readonly upstream?: UpstreamAuthority;
  /** Where the CA journal lives. */
  readonly dataStore: Pick<DataStore, 'getCaJournal' | 'setCaJournal'>;
  /** Stores the CA's keys in the shared bundle (BundlePublisher.publish). */
  readonly publishBundle?: (bundle: CaBundle) => Promise<void>;
  /** How long a prepared key is published before it signs (ms); default activationDelayFor(ca_ttl). */
  readonly activationDelayMs?: number;
}

/**
 * The default time a prepared key stays in the stored bundle before it signs: the bundle refresh
 * interval of the other servers (BUNDLE_REFRESH_MS), plus an agent's sync interval (5s), plus
 * margin; capped at a quarter of the preparation-to-activation gap (⅓ of the CA TTL), so a very
 * short ca_ttl (tests) still rotates on time. See docs/ha.md.
 */
export const CA_ACTIVATION_DELAY_MS = 30_000;

export const activationDelayFor = (caTtlMs: number): number => Math.min(CA_ACTIVATION_DELAY_MS, Math.floor(caTtlMs / 12));

/** Builds the key manager named by the server config and starts a CA manager on it. */
export async function createCaManager(deps: CreateCaManagerDeps): Promise<CaManagerHandle> {
  const cfg = deps.config;
  const keyManager =
    deps.keyManager ?? (cfg.keyManager.type === 'disk' ? new DiskKeyManager({ path: cfg.keyManager.path, log: deps.log }) : new MemoryKeyManager());
  const subject = cfg.caSubject;
  const manager = new CaManager({
    ca: {
      trustDomain: cfg.trustDomain,
      caSubject: {
        country: [...subject.country],
        organization: [...subject.organization],
        ...(subject.commonName === '' ? {} : { commonName: subject.commonName }),
      },
      caKeyType: cfg.caKeyType,
      jwtKeyType: cfg.jwtKeyType,
      caTtlMs: cfg.caTtlMs,
      x509SvidTtlMs: cfg.x509SvidTtlMs,
      jwtSvidTtlMs: cfg.jwtSvidTtlMs,
      // the server config already restricts the issuer to http(s) URLs, as the operator does
      allowInsecureIssuer: true,
      ...(cfg.jwtIssuer === undefined ? {} : { jwtIssuer: cfg.jwtIssuer }),
    },
    keyManager,
    clock: deps.clock,
    random: deps.random,
    logger: deps.log,
    journal: new Journal({ store: deps.dataStore, legacyFile: join(cfg.dataDir, LEGACY_JOURNAL_FILE) }),
    activationDelayMs: deps.activationDelayMs ?? activationDelayFor(cfg.caTtlMs),
    ...(deps.publishBundle === undefined ? {} : { publishBundle: deps.publishBundle }),
    ...(deps.upstream ? { upstream: deps.upstream } : {}),
  });
  await manager.start();
  return manager;
}
