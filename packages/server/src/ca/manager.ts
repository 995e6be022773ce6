import { X509Certificate, type KeyObject } from 'node:crypto';
import {
  cryptoRandom,
  every,
  failedPrecondition,
  internal,
  unavailable,
  randomAlnum,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Random,
  type Task,
} from '@ztwim/core';
import { certificateValidity } from '@ztwim/spiffe';
import type { KeyManager, ManagedKey } from '../keymanager/key-manager.ts';
import { resolveCaConfig, type CaConfig, type ResolvedCaConfig } from './config.ts';
import type { Journal, JournalState, JwtSlotRecord, X509SlotRecord } from './journal.ts';
import { JwtSigner, publicJwk, jwtAlgFor, type PublishedJwtKey, type JwtSvidResult, type SignJwtSvidParams } from './jwt-signer.ts';
import { SlotPair, type Slot, type SlotKind, type SlotName } from './slot.ts';
import { keyIdOf, spkiOf } from './spki.ts';
import { createCaCertificate, upstreamAuthorityIdOf, X509Ca, type SignX509SvidParams, type UpstreamAuthority, type X509SvidResult } from './x509-ca.ts';

export { prepareAt, activateAt } from './slot.ts';

/** The trust domain's public keys as the CA manager publishes them. */
export interface CaBundle {
  readonly x509Authorities: Uint8Array[];
  readonly jwtAuthorities: PublishedJwtKey[];
  /** Increases on every change. */
  readonly sequence: number;
}

export type BundleListener = (bundle: CaBundle) => void;

/** One slot's key in CaManager.status(). */
export interface CaSlotStatus {
  readonly slot: SlotName;
  readonly issued_at: string;
  readonly not_after: string;
}

export interface CaKindStatus {
  readonly active?: CaSlotStatus;
  readonly prepared?: CaSlotStatus;
  readonly kid?: string;
}

/** One key in CaManager.localAuthorities() (SPIRE's LocalAuthority AuthorityState). */
export interface LocalAuthority {
  /** X.509: the CA certificate's subject key ID (hex); JWT: the key ID. */
  readonly authorityId: string;
  readonly expiresAt: Date;
  /** X.509 with an upstream authority: the subject key ID (hex) of the upstream certificate that signed the CA. */
  readonly upstreamAuthorityId?: string;
}

/** The keys of one kind by state: signing now, published but not signing yet, signed before the last activation. */
export interface LocalAuthorityStates {
  readonly active?: LocalAuthority;
  readonly prepared?: LocalAuthority;
  readonly old?: LocalAuthority;
}

/** What CaManager.status() reports (JSON field names: it goes into health bodies). */
export interface CaStatus {
  /** The key ID of the X.509 CA signing now; names this server's journal. */
  readonly x509_authority_id?: string;
  readonly x509: CaKindStatus;
  readonly jwt: CaKindStatus;
  /** Whether the last bundle change has been stored in the datastore. */
  readonly bundle_stored: boolean;
}

export interface CaManagerConfig {
  readonly ca: CaConfig;
  readonly keyManager: KeyManager;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
  /** The CA journal (in the datastore); without it nothing survives a restart. */
  readonly journal?: Journal;
  readonly upstream?: UpstreamAuthority;
  /** How often the rotator checks the slots (SPIRE: 10s). */
  readonly rotationIntervalMs?: number;
  /**
   * Stores the bundle where every server and agent reads it (the datastore's trust domain bundle,
   * merged with the other servers' keys). Awaited in the rotation pass that changed the bundle, and
   * retried by the next passes until it succeeds; a prepared key is activated only once stored.
   */
  readonly publishBundle?: (bundle: CaBundle) => Promise<void>;
  /**
   * How long a prepared key stays published before it may be activated (ms, default 0): at least
   * the time every other server and agent takes to see a bundle change (docs/ha.md). The gap
   * between preparation and activation (⅓ of the CA TTL) is normally far longer.
   */
  readonly activationDelayMs?: number;
}

interface Expiring<T> {
  readonly value: T;
  readonly expiresAt: Date;
}

const X509_KEY_ID: Record<SlotName, string> = { A: 'x509-CA-A', B: 'x509-CA-B' };

/** The key ID (hex SKI) of an X.509 CA key, as SPIRE names authorities; names the server's journal. */
export const authorityIdOf = (key: { readonly publicKey: KeyObject }): string => keyIdOf(spkiOf(key.publicKey)).toString('hex');
const JWT_KEY_ID: Record<SlotName, string> = { A: 'JWT-Signer-A', B: 'JWT-Signer-B' };

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
  private readonly x509: SlotPair<X509Ca, X509SlotRecord>;
  private readonly jwt: SlotPair<JwtSigner, JwtSlotRecord>;
  private x509Bundle: Array<Expiring<Uint8Array>> = [];
  private jwtBundle: Array<Expiring<PublishedJwtKey>> = [];
  private sequence = 0;
  private listeners = new Set<BundleListener>();
  private activateListeners = new Set<(ca: X509Ca) => void>();
  private queue: Promise<void> = Promise.resolve();
  private loaded = false;
  private readonly publishBundle: ((bundle: CaBundle) => Promise<void>) | undefined;
  private readonly activationDelayMs: number;
  /** The bundle has changed since it was last stored by publishBundle. */
  private unpublished = false;
  /** When each key (by key manager ID and public key) was first seen stored in the shared bundle (ms). */
  private readonly publishedAt = new Map<unknown, number>();

  constructor(config: CaManagerConfig) {
    this.config = resolveCaConfig(config.ca);
    this.km = config.keyManager;
    this.clock = config.clock ?? systemClock;
    this.random = config.random ?? cryptoRandom;
    this.log = (config.logger ?? silentLogger()).child({ subsystem: 'ca_manager' });
    this.journal = config.journal;
    this.upstream = config.upstream;
    this.intervalMs = config.rotationIntervalMs ?? 10_000;
    this.publishBundle = config.publishBundle;
    this.activationDelayMs = config.activationDelayMs ?? 0;
    this.x509 = new SlotPair(this.x509Kind(), this.log);
    this.jwt = new SlotPair(this.jwtKind(), this.log);
  }

  /** Loads the journal and makes sure a current CA and JWT key exist (the first rotation pass). */
  async start(): Promise<void> {
    await this.tick();
  }

  /**
   * The rotator (SPIRE's `rotator.Run`): a rotation pass every rotation interval until the signal
   * aborts. A failed pass is logged and the next one runs on time.
   */
  task(): Task {
    return every(this.clock, this.intervalMs, () => this.tick(), {
      name: 'ca_rotation',
      immediate: false,
      onError: (err) => this.log.error({ err }, 'CA rotation failed'),
    });
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

  /** This server's keys, for health details (docs/ha.md): what signs now and what is prepared. */
  status(): CaStatus {
    const slot = (s: Slot<unknown> | undefined): CaSlotStatus | undefined =>
      s === undefined ? undefined : { slot: s.name, issued_at: s.issuedAt.toISOString(), not_after: s.notAfter.toISOString() };
    const pair = (p: SlotPair<unknown, unknown>): CaKindStatus => {
      const active = slot(p.current);
      const prepared = slot(p.next);
      return { ...(active === undefined ? {} : { active }), ...(prepared === undefined ? {} : { prepared }) };
    };
    const x509 = this.x509.current;
    return {
      ...(x509 === undefined ? {} : { x509_authority_id: authorityIdOf(x509.key) }),
      x509: pair(this.x509),
      jwt: { ...pair(this.jwt), ...(this.jwt.current === undefined ? {} : { kid: this.jwt.current.key.kid }) },
      bundle_stored: !this.unpublished,
    };
  }

  /** The X.509 CA and JWT keys by state (active, prepared, old), for the LocalAuthority API. */
  localAuthorities(): { readonly x509: LocalAuthorityStates; readonly jwt: LocalAuthorityStates } {
    const upstreamId = this.upstream === undefined ? undefined : upstreamAuthorityIdOf(this.upstream);
    const x509 = (s: Slot<X509Ca>): LocalAuthority => ({
      authorityId: authorityIdOf(s.key),
      expiresAt: s.notAfter,
      ...(upstreamId === undefined ? {} : { upstreamAuthorityId: upstreamId }),
    });
    const jwt = (s: Slot<JwtSigner>): LocalAuthority => ({ authorityId: s.key.kid, expiresAt: s.notAfter });
    const states = <K>(p: SlotPair<K, unknown>, f: (s: Slot<K>) => LocalAuthority): LocalAuthorityStates => ({
      ...(p.current === undefined ? {} : { active: f(p.current) }),
      ...(p.next === undefined ? {} : { prepared: f(p.next) }),
      ...(p.old === undefined ? {} : { old: f(p.old) }),
    });
    return { x509: states(this.x509, x509), jwt: states(this.jwt, jwt) };
  }

  /**
   * Prepares a new X.509 CA now (SPIRE's PrepareX509CA, the LocalAuthority API): published in the
   * bundle, replacing the old CA or a prepared one in the slot beside the current CA.
   */
  prepareX509Authority(): Promise<LocalAuthority> {
    return this.manually(this.x509, 'prepare', () => this.localAuthorities().x509.prepared);
  }

  /** Makes the prepared X.509 CA sign now (SPIRE's RotateX509CA); the CA that signed so far becomes old. */
  activateX509Authority(): Promise<LocalAuthority> {
    return this.manually(this.x509, 'activate', () => this.localAuthorities().x509.active);
  }

  /** Prepares a new JWT key now (SPIRE's PrepareJWTKey). */
  prepareJwtAuthority(): Promise<LocalAuthority> {
    return this.manually(this.jwt, 'prepare', () => this.localAuthorities().jwt.prepared);
  }

  /** Makes the prepared JWT key sign now (SPIRE's RotateJWTKey); the key that signed so far becomes old. */
  activateJwtAuthority(): Promise<LocalAuthority> {
    return this.manually(this.jwt, 'activate', () => this.localAuthorities().jwt.active);
  }

  /**
   * A manual prepare or activate of one kind, in the rotation queue so it never overlaps a rotation
   * pass; the bundle is stored and the slots journaled as after a pass. The activation delay does
   * not apply: the operator decides (as in SPIRE). Returns the key's new state.
   */
  private manually<K>(pair: SlotPair<K, unknown>, action: 'prepare' | 'activate', result: () => LocalAuthority | undefined): Promise<LocalAuthority> {
    const run = this.queue.then(async () => {
      if (!this.loaded || pair.current === undefined) throw unavailable('server is initializing');
      const now = this.clock.nowMs();
      const signingBefore = this.x509.current?.key;
      if (action === 'prepare') await pair.prepareNext();
      else pair.activateNext();
      await this.commit(now, signingBefore, action === 'prepare', true);
      const state = result();
      if (state === undefined) throw internal(`ca: no authority after ${action}`);
      return state;
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** The CA that signs X509-SVIDs now. */
  x509Ca(): X509Ca {
    const cur = this.x509.current;
    if (cur === undefined) throw failedPrecondition('ca: no active X509 CA');
    return cur.key;
  }

  /** The prepared (published, not yet used) X.509 CA, if any. */
  nextX509Ca(): X509Ca | undefined {
    return this.x509.next?.key;
  }

  jwtSigner(): JwtSigner {
    const cur = this.jwt.current;
    if (cur === undefined) throw failedPrecondition('ca: no active JWT key');
    return cur.key;
  }

  nextJwtSigner(): JwtSigner | undefined {
    return this.jwt.next?.key;
  }

  signX509Svid(params: SignX509SvidParams): X509SvidResult {
    return this.x509Ca().signX509Svid(params);
  }

  signJwtSvid(params: SignJwtSvidParams): Promise<JwtSvidResult> {
    return this.jwtSigner().signJwtSvid(params);
  }

  private async rotate(): Promise<void> {
    if (!this.loaded) {
      await this.restore();
      this.loaded = true;
    }
    const now = this.clock.nowMs();
    const signingBefore = this.x509.current?.key;
    // a restored journal's keys are stored again first (appending is idempotent)
    if (this.unpublished) await this.storeBundle(now);
    let changed = false;
    let dirty = false;
    // A prepared key signs only once it has been in the stored bundle for the activation delay.
    const canActivate = (next: Slot<unknown>): boolean => {
      const at = this.publishedAt.get(next.key);
      return at !== undefined && now - at >= this.activationDelayMs;
    };
    // X.509 CA and JWT key move through the same steps in the same pass (SPIRE's rotator).
    for (const pair of [this.x509, this.jwt] as const) {
      const r = await pair.rotate(now, canActivate);
      changed ||= r.bundleChanged;
      dirty ||= r.slotsChanged;
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

    await this.commit(now, signingBefore, changed, dirty);
  }

  /**
   * After the slots changed: stores a changed bundle, journals the slots, tells the bundle and
   * activation listeners.
   */
  private async commit(now: number, signingBefore: X509Ca | undefined, changed: boolean, dirty: boolean): Promise<void> {
    if (changed) this.sequence++;
    if (changed) this.unpublished = true;
    if (this.unpublished) await this.storeBundle(now);
    const current = this.x509.current;
    if (dirty && current !== undefined) await this.journal?.save(authorityIdOf(current.key), this.snapshot(now));
    if (changed) this.emit();
    const signing = this.x509.current?.key;
    if (signingBefore !== undefined && signing !== undefined && signing !== signingBefore) {
      for (const l of this.activateListeners) {
        try {
          l(signing);
        } catch (err) {
          this.log.error({ err }, 'CA activation listener failed');
        }
      }
    }
  }

  /** The X.509 CA slots: a CA certificate (signed by the upstream authority, if any) per key. */
  private x509Kind(): SlotKind<X509Ca, X509SlotRecord> {
    const slotOf = (name: SlotName, keyId: string, ca: X509Ca): Slot<X509Ca> => ({ name, keyId, key: ca, issuedAt: ca.notBefore, notAfter: ca.notAfter });
    return {
      label: 'X509 CA',
      prepare: async (slot) => {
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
        const ca = this.newX509Ca(key, chain);
        // published before anything is signed with it
        for (const der of this.upstream ? this.upstream.roots : [ca.certificate]) this.addX509Authority(der);
        return slotOf(slot, key.id, ca);
      },
      record: (s) => ({ slot: s.name, keyId: s.keyId, chain: s.key.chain.map((d) => Buffer.from(d).toString('base64')) }),
      restore: async (rec) => {
        const key = await this.km.getKey(rec.keyId);
        const chain = rec.chain.map((c) => new Uint8Array(Buffer.from(c, 'base64')));
        const [top] = chain;
        if (!key || !top || !new X509Certificate(top).publicKey.equals(key.publicKey)) {
          this.log.warn({ slot: rec.slot, key_id: rec.keyId }, 'Journaled X509 CA key is gone; a new CA will be prepared');
          return undefined;
        }
        return slotOf(rec.slot, rec.keyId, this.newX509Ca(key, chain));
      },
      describe: (s) => ({ notAfter: s.notAfter }),
    };
  }

  /** The JWT key slots: a signing key with a random kid, published with its expiry. */
  private jwtKind(): SlotKind<JwtSigner, JwtSlotRecord> {
    return {
      label: 'JWT key',
      prepare: async (slot) => {
        const key = await this.km.generateKey(JWT_KEY_ID[slot], this.config.jwtKeyType);
        const issuedAt = this.clock.now();
        const notAfter = new Date(issuedAt.getTime() + this.config.caTtlMs);
        const signer = this.newJwtSigner(key, randomAlnum(this.random, 32), notAfter);
        this.jwtBundle.push({ value: signer.authority, expiresAt: notAfter });
        return { name: slot, keyId: key.id, key: signer, issuedAt, notAfter };
      },
      record: (s) => ({ slot: s.name, keyId: s.keyId, kid: s.key.kid, issuedAt: s.issuedAt.toISOString(), notAfter: s.notAfter.toISOString() }),
      restore: async (rec) => {
        const key = await this.km.getKey(rec.keyId);
        const published = this.jwtBundle.find((e) => e.value.kid === rec.kid)?.value.publicKey;
        const current = key && publicJwk(key.publicKey, rec.kid, jwtAlgFor(key.type));
        if (!key || !published || !current || published.x !== current.x || published.y !== current.y || published.n !== current.n) {
          this.log.warn({ slot: rec.slot, key_id: rec.keyId }, 'Journaled JWT key is gone; a new key will be prepared');
          return undefined;
        }
        const notAfter = new Date(rec.notAfter);
        return { name: rec.slot, keyId: rec.keyId, key: this.newJwtSigner(key, rec.kid, notAfter), issuedAt: new Date(rec.issuedAt), notAfter };
      },
      describe: (s) => ({ kid: s.key.kid }),
    };
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

  /**
   * Stores the bundle through publishBundle, then counts the activation delay of the keys in the
   * slots from now. Without publishBundle (a lone server, tests), a key counts as stored when made.
   */
  private async storeBundle(now: number): Promise<void> {
    await this.publishBundle?.(this.bundle());
    this.unpublished = false;
    for (const slot of [this.x509.current, this.x509.next, this.jwt.current, this.jwt.next]) {
      if (slot !== undefined && !this.publishedAt.has(slot.key)) this.publishedAt.set(slot.key, now);
    }
    for (const k of this.publishedAt.keys()) {
      if (![this.x509.current, this.x509.next, this.jwt.current, this.jwt.next].some((s) => s?.key === k)) this.publishedAt.delete(k);
    }
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

  private snapshot(now: number): JournalState {
    const b64 = (d: Uint8Array): string => Buffer.from(d).toString('base64');
    return {
      version: 1,
      x509: this.x509.records(),
      jwt: this.jwt.records(),
      bundle: {
        sequence: this.sequence,
        x509: this.x509Bundle.map((e) => ({ der: b64(e.value), notAfter: e.expiresAt.toISOString() })),
        jwt: this.jwtBundle.map((e) => ({ kid: e.value.kid, jwk: e.value.publicKey, expiresAt: e.expiresAt.toISOString() })),
      },
      savedAtMs: now,
    };
  }

  /** Restores the bundle, and the slots whose keys still exist in the key manager. */
  private async restore(): Promise<void> {
    if (this.journal === undefined) return;
    const ids: string[] = [];
    for (const slot of ['A', 'B'] as const) {
      const key = await this.km.getKey(X509_KEY_ID[slot]);
      if (key !== undefined) ids.push(authorityIdOf(key));
    }
    const state = await this.journal.load(ids);
    if (!state) return;
    // stored again (appending is idempotent) before a restored next key may be activated
    this.unpublished = true;
    this.sequence = state.bundle.sequence;
    this.x509Bundle = state.bundle.x509.map((e) => ({ value: new Uint8Array(Buffer.from(e.der, 'base64')), expiresAt: new Date(e.notAfter) }));
    this.jwtBundle = state.bundle.jwt.map((e) => ({
      value: Object.freeze({ kid: e.kid, publicKey: e.jwk, expiresAt: new Date(e.expiresAt) }),
      expiresAt: new Date(e.expiresAt),
    }));
    // the bundle first: a JWT slot is restored only if its key is the one published
    await this.x509.restore(state.x509);
    await this.jwt.restore(state.jwt);
  }
}
