import { SpiffeError } from '../errors.ts';
import { isTrustDomainChar, MAX_TRUST_DOMAIN_LENGTH, TrustDomain } from './trust-domain.ts';

/** Maximum SPIFFE ID length in bytes that we accept and generate (SPIFFE-ID.md §2.3). */
export const MAX_SPIFFE_ID_LENGTH = 2048;

const SCHEME = 'spiffe://';

function isPathChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e ||
    c === 0x2d ||
    c === 0x5f
  );
}

function idError(message: string): SpiffeError {
  return new SpiffeError('ERR_SPIFFEID_INVALID', `spiffeid: ${message}`);
}

/**
 * Validates a SPIFFE ID path (`""` or `/seg/seg`), checking every rule of SPIFFE-ID.md §2.2
 * in the same order as go-spiffe, so error messages match the reference implementation.
 */
export function validatePath(path: string): void {
  if (path === '') return;
  if (path.charCodeAt(0) !== 0x2f) throw idError('path must have a leading slash');
  let segStart = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x2f) {
      checkSegment(path.slice(segStart, i));
      segStart = i;
      continue;
    }
    if (!isPathChar(c)) {
      throw idError('path segment characters are limited to letters, numbers, dots, dashes, and underscores');
    }
  }
  const last = path.slice(segStart);
  if (last === '/') throw idError('path cannot have a trailing slash');
  checkSegment(last);
}

function checkSegment(seg: string): void {
  // seg includes its leading slash; the first call at index 0 sees "" which is fine.
  if (seg === '') return;
  if (seg === '/') throw idError('path cannot contain empty segments');
  if (seg === '/.' || seg === '/..') throw idError('path cannot contain dot segments');
}

/** A validated SPIFFE ID. Immutable; compare with `equals` or by `toString()`. */
export class SpiffeId {
  readonly trustDomain: TrustDomain;
  /** `""` for the trust domain's own ID, else `/seg/...`. */
  readonly path: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
  }

  /**
   * Parses and validates a SPIFFE ID string. Throws SpiffeError(ERR_SPIFFEID_INVALID)
   * whose message names the rule broken.
   */
  static parse(s: string): SpiffeId {
    if (typeof s !== 'string' || s === '') throw idError('cannot be empty');
    if (!s.startsWith(SCHEME)) throw idError('scheme is missing or invalid');
    let i = SCHEME.length;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x2f) break;
      if (!isTrustDomainChar(c)) {
        throw idError('trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores');
      }
    }
    const td = s.slice(SCHEME.length, i);
    if (td === '') throw idError('trust domain is missing');
    if (td.length > MAX_TRUST_DOMAIN_LENGTH) {
      throw idError(`trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`);
    }
    const path = s.slice(i);
    validatePath(path);
    if (Buffer.byteLength(s) > MAX_SPIFFE_ID_LENGTH) {
      throw idError(`SPIFFE ID is longer than ${MAX_SPIFFE_ID_LENGTH} bytes`);
    }
    return new SpiffeId(TrustDomain.fromValidated(td), path);
  }

  /** Like parse, but returns undefined instead of throwing. */
  static tryParse(s: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(s);
    } catch {
      return undefined;
    }
  }

  /** Builds an ID from a trust domain and a path that must already be in `/a/b` form. */
  static fromPath(td: TrustDomain, path: string): SpiffeId {
    validatePath(path);
    return SpiffeId.parse(SCHEME + td.name + path);
  }

  /** Builds an ID from path segments (`['ns','demo']` → `/ns/demo`). */
  static fromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
    for (const seg of segments) {
      if (seg === '') throw idError('path cannot contain empty segments');
      if (seg === '.' || seg === '..') throw idError('path cannot contain dot segments');
      for (let i = 0; i < seg.length; i++) {
        if (!isPathChar(seg.charCodeAt(i))) {
          throw idError('path segment characters are limited to letters, numbers, dots, dashes, and underscores');
        }
      }
    }
    return SpiffeId.fromPath(td, segments.map((s) => '/' + s).join(''));
  }

  /** True when this ID has no path (it names the trust domain itself). */
  isTrustDomainId(): boolean {
    return this.path === '';
  }

  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }

  equals(other: SpiffeId): boolean {
    return this.path === other.path && this.trustDomain.equals(other.trustDomain);
  }

  toString(): string {
    return SCHEME + this.trustDomain.name + this.path;
  }

  toJSON(): string {
    return this.toString();
  }
}
