import { X509Certificate } from 'node:crypto';
import {
  cryptoRandom,
  failedPrecondition,
  randomAlnum,
  silentLogger,
  systemClock,
  type Cancel,
  type Clock,
  type Logger,
  type Random,
} from '@ztwim/core';
import { certificateValidity } from '@ztwim/spiffe';
import type { KeyManager, ManagedKey } from '../keymanager/key-manager.ts';
import { resolveCaConfig, type CaConfig, type ResolvedCaConfig } from './config.ts';
import { Journal, type JournalState, type JwtSlotRecord, type SlotName, type X509SlotRecord } from './journal.ts';
import { JwtSigner, publicJwk, jwtAlgFor, type PublishedJwtKey, type JwtSvidResult, type SignJwtSvidParams } from './jwt-signer.ts';
import { createCaCertificate, X509Ca, type SignX509SvidParams, type UpstreamAuthority, type X509SvidResult } from './x509-ca.ts';

/** The trust domain's public keys as the CA manager publishes them. */
export interface CaBundle {
  readonly x509Authorities: Uint8Array[];
  readonly jwtAuthorities: PublishedJwtKey[];
  /** Increases on every change. */
  readonly sequence: number;
}

export type BundleListener = (bundle: CaBundle) => void;

export interface CaManagerConfig {
  readonly ca: CaConfig;
  readonly keyManager: KeyManager;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
  /** Where the journal lives; without it nothing survives a restart. */
  readonly dataDir?: string;
  readonly upstream?: UpstreamAuthority;
  /** How often the rotator checks the slots (SPIRE: 10s). */
  readonly rotationIntervalMs?: number;
}

interface X509Slot {
  readonly slot: SlotName;
  readonly keyId: string;
  readonly ca: X509Ca;
}

interface JwtSlot {
  readonly slot: SlotName;
  readonly keyId: string;
  readonly signer: JwtSigner;
  readonly issuedAt: Date;
}

interface Expiring<T> {
  readonly value: T;
  readonly expiresAt: Date;
}

const X509_KEY_ID: Record<SlotName, string> = { A: 'x509-CA-A', B: 'x509-CA-B' };
const JWT_KEY_ID: Record<SlotName, string> = { A: 'JWT-Signer-A', B: 'JWT-Signer-B' };
const other = (s: SlotName | undefined): SlotName => (s === 'A' ? 'B' : 'A');
const DAY = 86_400_000;

/** Rotation thresholds (SPIRE pkg/server/ca/manager): prepare at ½ life, activate at ⅚ life. */
export function prepareAt(notBefore: Date, notAfter: Date): number {
  const life = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - Math.min(life / 2, 30 * DAY);
}
export function activateAt(notBefore: Date, notAfter: Date): number {
  const life = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - Math.min(life / 6, 7 * DAY);
}

/**
 * Owns the trust domain's X.509 CA and JWT signing key, each with a current and a next slot.
 * New keys are published in the bundle when prepared, used when activated, and dropped from the
 * bundle once expired. State is journaled so a restart with a persistent key manager keeps the CA.
 */
export class CaManager {
  readonly config: ResolvedCaConfig;
  private readonly km: KeyManager;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly journal: Journal | undefined;
  private readonly upstream: UpstreamAuthority | undefined;
  private readonly intervalMs: number;
  private x509Current: X509Slot | undefined;
  private x509Next: X509Slot | undefined;
  private jwtCurrent: JwtSlot | undefined;
  private jwtNext: JwtSlot | undefined;
  private x509Bundle: Array<Expiring<Uint8Array>> = [];
  private jwtBundle: Array<Expiring<PublishedJwtKey>> = [];
  private sequence = 0;
  private listeners = new Set<BundleListener>();
  private activateListeners = new Set<(ca: X509Ca) => void>();
  private queue: Promise<void> = Promise.resolve();
  private loaded = false;
  private cancelTimer: Cancel | undefined;

  constructor(config: CaManagerConfig) {
    this.config = resolveCaConfig(config.ca);
    this.km = config.keyManager;
    this.clock = config.clock ?? systemClock;
    this.random = config.random ?? cryptoRandom;
    this.log = (config.logger ?? silentLogger()).child({ subsystem: 'ca_manager' });
    this.journal = config.dataDir === undefined ? undefined : new Journal({ dataDir: config.dataDir });
    this.upstream = config.upstream;
    this.intervalMs = config.rotationIntervalMs ?? 10_000;
  }

  /** Loads the journal, makes sure current CA and JWT key exist, and starts the rotation timer. */
  async start(): Promise<void> {
    await this.tick();
    this.arm();
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  /** One rotation pass (load on first use, prepare, activate, prune); passes never overlap. */
  tick(): Promise<void> {
    const run = this.queue.then(() => this.rotate());
    this.queue = run.catch(() => undefined);
    return run;
  }

  onBundleUpdate(listener: BundleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when a different X.509 CA starts signing (not for the first one at start-up). */
  onActivate(listener: (ca: X509Ca) => void): () => void {
    this.activateListeners.add(listener);
    return () => this.activateListeners.delete(listener);
  }

  bundle(): CaBundle {
    return {
      x509Authorities: this.x509Bundle.map((e) => e.value),
      jwtAuthorities: this.jwtBundle.map((e) => e.value),
      sequence: this.sequence,
    };
  }

  /** The CA that signs X509-SVIDs now. */
  x509Ca(): X509Ca {
    if (!this.x509Current) throw failedPrecondition('ca: no active X509 CA');
    return this.x509Current.ca;
  }

  /** The prepared (published, not yet used) X.509 CA, if any. */
  nextX509Ca(): X509Ca | undefined {
    return this.x509Next?.ca;
  }

  jwtSigner(): JwtSigner {
    if (!this.jwtCurrent) throw failedPrecondition('ca: no active JWT key');
    return this.jwtCurrent.signer;
  }

  nextJwtSigner(): JwtSigner | undefined {
    return this.jwtNext?.signer;
  }

  signX509Svid(params: SignX509SvidParams): X509SvidResult {
    return this.x509Ca().signX509Svid(params);
  }

  signJwtSvid(params: SignJwtSvidParams): Promise<JwtSvidResult> {
    return this.jwtSigner().signJwtSvid(params);
  }

  private arm(): void {
    this.cancelTimer = this.clock.setTimer(this.intervalMs, () => {
      this.tick()
        .catch((err: unknown) => this.log.error({ err }, 'CA rotation failed'))
        .finally(() => {
          if (this.cancelTimer) this.arm();
        });
    });
  }

  private async rotate(): Promise<void> {
    if (!this.loaded) {
      await this.restore();
      this.loaded = true;
    }
    const now = this.clock.nowMs();
    const signingBefore = this.x509Current?.ca;
    let changed = false;
    let dirty = false;

    // X.509 CA
    if (this.x509Current && now >= this.x509Current.ca.notAfter.getTime()) this.x509Current = undefined;
    if (this.x509Next && now >= this.x509Next.ca.notAfter.getTime()) this.x509Next = undefined;
    if (!this.x509Current) {
      if (this.x509Next) {
        this.x509Current = this.x509Next;
        this.x509Next = undefined;
      } else {
        this.x509Current = await this.prepareX509('A');
        changed = true;
      }
      dirty = true;
      this.log.info({ slot: this.x509Current.slot, notAfter: this.x509Current.ca.notAfter }, 'X509 CA activated');
    }
    const cur = this.x509Current.ca;
    if (!this.x509Next && now > prepareAt(cur.notBefore, cur.notAfter)) {
      this.x509Next = await this.prepareX509(other(this.x509Current.slot));
      changed = dirty = true;
      this.log.info({ slot: this.x509Next.slot, notAfter: this.x509Next.ca.notAfter }, 'X509 CA prepared');
    }
    if (this.x509Next && now > activateAt(cur.notBefore, cur.notAfter)) {
      this.x509Current = this.x509Next;
      this.x509Next = undefined;
      dirty = true;
      this.log.info({ slot: this.x509Current.slot, notAfter: this.x509Current.ca.notAfter }, 'X509 CA activated');
    }

    // JWT key
    if (this.jwtCurrent && now >= this.jwtCurrent.signer.notAfter.getTime()) this.jwtCurrent = undefined;
    if (this.jwtNext && now >= this.jwtNext.signer.notAfter.getTime()) this.jwtNext = undefined;
    if (!this.jwtCurrent) {
      if (this.jwtNext) {
        this.jwtCurrent = this.jwtNext;
        this.jwtNext = undefined;
      } else {
        this.jwtCurrent = await this.prepareJwt('A');
        changed = true;
      }
      dirty = true;
      this.log.info({ kid: this.jwtCurrent.signer.kid }, 'JWT key activated');
    }
    const jcur = this.jwtCurrent;
    if (!this.jwtNext && now > prepareAt(jcur.issuedAt, jcur.signer.notAfter)) {
      this.jwtNext = await this.prepareJwt(other(jcur.slot));
      changed = dirty = true;
      this.log.info({ kid: this.jwtNext.signer.kid }, 'JWT key prepared');
    }
    if (this.jwtNext && now > activateAt(jcur.issuedAt, jcur.signer.notAfter)) {
      this.jwtCurrent = this.jwtNext;
      this.jwtNext = undefined;
      dirty = true;
      this.log.info({ kid: this.jwtCurrent.signer.kid }, 'JWT key activated');
    }

    // prune expired authorities
    const x509Before = this.x509Bundle.length;
    const jwtBefore = this.jwtBundle.length;
    this.x509Bundle = this.x509Bundle.filter((e) => e.expiresAt.getTime() > now);
    this.jwtBundle = this.jwtBundle.filter((e) => e.expiresAt.getTime() > now);
    if (this.x509Bundle.length !== x509Before || this.jwtBundle.length !== jwtBefore) {
      changed = dirty = true;
      this.log.info({ x509: x509Before - this.x509Bundle.length, jwt: jwtBefore - this.jwtBundle.length }, 'Pruned expired authorities');
    }

    if (changed) this.sequence++;
    if (dirty) await this.journal?.save(this.snapshot());
    if (changed) this.emit();
    const signing = this.x509Current.ca;
    if (signingBefore !== undefined && signing !== signingBefore) {
      for (const l of this.activateListeners) {
        try {
          l(signing);
        } catch (err) {
          this.log.error({ err }, 'CA activation listener failed');
        }
      }
    }
  }

  private async prepareX509(slot: SlotName): Promise<X509Slot> {
    const key = await this.km.generateKey(X509_KEY_ID[slot], this.config.caKeyType);
    const chain = createCaCertificate({
      trustDomain: this.config.trustDomain,
      key,
      subject: this.config.caSubject,
      ttlMs: this.config.caTtlMs,
      now: this.clock.now(),
      random: this.random,
      ...(this.upstream ? { upstream: this.upstream } : {}),
    });
    const prepared = { slot, keyId: key.id, ca: this.newX509Ca(key, chain) };
    // published before anything is signed with it
    const anchors = this.upstream ? this.upstream.roots : [prepared.ca.certificate];
    for (const der of anchors) this.addX509Authority(der);
    return prepared;
  }

  private async prepareJwt(slot: SlotName): Promise<JwtSlot> {
    const key = await this.km.generateKey(JWT_KEY_ID[slot], this.config.jwtKeyType);
    const issuedAt = this.clock.now();
    const notAfter = new Date(issuedAt.getTime() + this.config.caTtlMs);
    const prepared = { slot, keyId: key.id, issuedAt, signer: this.newJwtSigner(key, randomAlnum(this.random, 32), notAfter) };
    this.jwtBundle.push({ value: prepared.signer.authority, expiresAt: notAfter });
    return prepared;
  }

  private newX509Ca(key: ManagedKey, chain: readonly Uint8Array[]): X509Ca {
    return new X509Ca({
      trustDomain: this.config.trustDomain,
      key,
      chain,
      clock: this.clock,
      random: this.random,
      x509SvidTtlMs: this.config.x509SvidTtlMs,
    });
  }

  private newJwtSigner(key: ManagedKey, kid: string, notAfter: Date): JwtSigner {
    return new JwtSigner({
      trustDomain: this.config.trustDomain,
      kid,
      keyType: key.type,
      privateKey: key.privateKey,
      publicKey: key.publicKey,
      notAfter,
      clock: this.clock,
      random: this.random,
      jwtSvidTtlMs: this.config.jwtSvidTtlMs,
      ...(this.config.jwtIssuer === undefined ? {} : { issuer: this.config.jwtIssuer }),
    });
  }

  private addX509Authority(der: Uint8Array): void {
    if (this.x509Bundle.some((e) => Buffer.from(e.value).equals(der))) return;
    this.x509Bundle.push({ value: der, expiresAt: certificateValidity(der).notAfter });
  }

  private emit(): void {
    const b = this.bundle();
    for (const l of this.listeners) {
      try {
        l(b);
      } catch (err) {
        this.log.error({ err }, 'Bundle listener failed');
      }
    }
  }

  private snapshot(): JournalState {
    const b64 = (d: Uint8Array): string => Buffer.from(d).toString('base64');
    const x = (s: X509Slot | undefined): X509SlotRecord | undefined => s && { slot: s.slot, keyId: s.keyId, chain: s.ca.chain.map(b64) };
    const j = (s: JwtSlot | undefined): JwtSlotRecord | undefined =>
      s && { slot: s.slot, keyId: s.keyId, kid: s.signer.kid, issuedAt: s.issuedAt.toISOString(), notAfter: s.signer.notAfter.toISOString() };
    const x509Current = x(this.x509Current);
    const x509Next = x(this.x509Next);
    const jwtCurrent = j(this.jwtCurrent);
    const jwtNext = j(this.jwtNext);
    return {
      version: 1,
      x509: { ...(x509Current ? { current: x509Current } : {}), ...(x509Next ? { next: x509Next } : {}) },
      jwt: { ...(jwtCurrent ? { current: jwtCurrent } : {}), ...(jwtNext ? { next: jwtNext } : {}) },
      bundle: {
        sequence: this.sequence,
        x509: this.x509Bundle.map((e) => ({ der: b64(e.value), notAfter: e.expiresAt.toISOString() })),
        jwt: this.jwtBundle.map((e) => ({ kid: e.value.kid, jwk: e.value.publicKey, expiresAt: e.expiresAt.toISOString() })),
      },
    };
  }

  /** Restores the bundle, and the slots whose keys still exist in the key manager. */
  private async restore(): Promise<void> {
    const state = await this.journal?.load();
    if (!state) return;
    this.sequence = state.bundle.sequence;
    this.x509Bundle = state.bundle.x509.map((e) => ({ value: new Uint8Array(Buffer.from(e.der, 'base64')), expiresAt: new Date(e.notAfter) }));
    this.jwtBundle = state.bundle.jwt.map((e) => ({
      value: Object.freeze({ kid: e.kid, publicKey: e.jwk, expiresAt: new Date(e.expiresAt) }),
      expiresAt: new Date(e.expiresAt),
    }));
    this.x509Current = await this.restoreX509(state.x509.current);
    this.x509Next = await this.restoreX509(state.x509.next);
    this.jwtCurrent = await this.restoreJwt(state.jwt.current);
    this.jwtNext = await this.restoreJwt(state.jwt.next);
  }

  private async restoreX509(rec: X509SlotRecord | undefined): Promise<X509Slot | undefined> {
    if (!rec) return undefined;
    const key = await this.km.getKey(rec.keyId);
    const chain = rec.chain.map((c) => new Uint8Array(Buffer.from(c, 'base64')));
    const [top] = chain;
    if (!key || !top || !new X509Certificate(top).publicKey.equals(key.publicKey)) {
      this.log.warn({ slot: rec.slot, keyId: rec.keyId }, 'Journaled X509 CA key is gone; a new CA will be prepared');
      return undefined;
    }
    return { slot: rec.slot, keyId: rec.keyId, ca: this.newX509Ca(key, chain) };
  }

  private async restoreJwt(rec: JwtSlotRecord | undefined): Promise<JwtSlot | undefined> {
    if (!rec) return undefined;
    const key = await this.km.getKey(rec.keyId);
    const published = this.jwtBundle.find((e) => e.value.kid === rec.kid)?.value.publicKey;
    const current = key && publicJwk(key.publicKey, rec.kid, jwtAlgFor(key.type));
    if (!key || !published || !current || published.x !== current.x || published.y !== current.y || published.n !== current.n) {
      this.log.warn({ slot: rec.slot, keyId: rec.keyId }, 'Journaled JWT key is gone; a new key will be prepared');
      return undefined;
    }
    return { slot: rec.slot, keyId: rec.keyId, issuedAt: new Date(rec.issuedAt), signer: this.newJwtSigner(key, rec.kid, new Date(rec.notAfter)) };
  }
}
