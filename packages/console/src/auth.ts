// Console logins and sessions: a login token (admin or read-only) exchanged for a session cookie
// (HttpOnly, SameSite=Strict, Secure on https) and a CSRF token every state change must echo in
// the X-CSRF-Token header. Sessions live in memory: restarting the console logs everyone out.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@ztwim/core';

export type Role = 'admin' | 'viewer';

export interface Session {
  readonly id: string;
  readonly role: Role;
  readonly csrf: string;
  lastSeen: number;
  /** The session ends then, however busy (the console's `session_lifetime` after login). */
  readonly expiresAt: number;
  /** An OIDC login: who logged in, and the ID token for the provider's logout. */
  readonly oidc?: { readonly name: string; readonly idToken: string };
}

export const SESSION_COOKIE = 'ztwim_console_session';
/** A session unused this long is forgotten. */
export const SESSION_IDLE_MS = 12 * 3600_000;
/** A session ends this long after its login unless configured otherwise (`session_lifetime`). */
export const DEFAULT_SESSION_LIFETIME_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of two secrets of any length. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function newToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export interface LoginTokens {
  readonly admin: string;
  /** Empty: no read-only login. */
  readonly viewer: string;
}

export class Sessions {
  readonly #tokens: LoginTokens;
  readonly #clock: Clock;
  readonly #lifetimeMs: number;
  readonly #byId = new Map<string, Session>();

  /** `tokens` undefined: login tokens are turned off (OIDC logins only). */
  constructor(tokens: LoginTokens | undefined, clock: Clock, lifetimeMs = DEFAULT_SESSION_LIFETIME_MS) {
    this.#tokens = tokens ?? { admin: '', viewer: '' };
    this.#clock = clock;
    this.#lifetimeMs = lifetimeMs;
  }

  /** Whether a login token can log in at all. */
  get tokenLogin(): boolean {
    return this.#tokens.admin !== '';
  }

  /** The role a login token grants, or undefined. */
  roleOf(token: string): Role | undefined {
    if (token === '' || this.#tokens.admin === '') return undefined;
    if (sameSecret(token, this.#tokens.admin)) return 'admin';
    if (this.#tokens.viewer !== '' && sameSecret(token, this.#tokens.viewer)) return 'viewer';
    return undefined;
  }

  open(role: Role, oidc?: Session['oidc']): Session {
    this.#prune();
    if (this.#byId.size >= MAX_SESSIONS) {
      // Forget the least recently used one rather than refuse a login.
      let oldest: Session | undefined;
      for (const s of this.#byId.values()) if (oldest === undefined || s.lastSeen < oldest.lastSeen) oldest = s;
      if (oldest !== undefined) this.#byId.delete(oldest.id);
    }
    const now = this.#clock.nowMs();
    const s: Session = {
      id: newToken(32),
      role,
      csrf: newToken(24),
      lastSeen: now,
      expiresAt: now + this.#lifetimeMs,
      ...(oidc === undefined ? {} : { oidc }),
    };
    this.#byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined || id === '') return undefined;
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    const now = this.#clock.nowMs();
    if (Sessions.#over(s, now)) {
      this.#byId.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  close(id: string): void {
    this.#byId.delete(id);
  }

  #prune(): void {
    const now = this.#clock.nowMs();
    for (const [id, s] of this.#byId) if (Sessions.#over(s, now)) this.#byId.delete(id);
  }

  static #over(s: Session, now: number): boolean {
    return now - s.lastSeen > SESSION_IDLE_MS || now >= s.expiresAt;
  }
}

/** The value of one cookie from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
