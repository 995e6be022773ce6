import { SpiffeError } from '../errors.ts';
import { SpiffeId } from './spiffe-id.ts';

/** Maximum trust domain length in bytes (SPIFFE-ID.md §2.2). */
export const MAX_TRUST_DOMAIN_LENGTH = 255;

const SCHEME = 'spiffe://';

export function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

function tdError(message: string): SpiffeError {
  return new SpiffeError('ERR_TRUST_DOMAIN_INVALID', `trustdomain: ${message}`);
}

/** A validated SPIFFE trust domain name, e.g. `example.org`. Immutable. */
export class TrustDomain {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** @internal used by SpiffeId, which has already validated the name. */
  static fromValidated(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /**
   * Parses a trust domain name (`example.org`) or takes the trust domain of a
   * SPIFFE ID (`spiffe://example.org/any/path`), as go-spiffe's TrustDomainFromString does.
   */
  static parse(s: string): TrustDomain {
    if (s === '') throw tdError('trust domain is missing');
    if (s.includes(':/')) return SpiffeId.parse(s).trustDomain;
    for (let i = 0; i < s.length; i++) {
      if (!isTrustDomainChar(s.charCodeAt(i))) {
        throw tdError('trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores');
      }
    }
    if (s.length > MAX_TRUST_DOMAIN_LENGTH) {
      throw tdError(`trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`);
    }
    return new TrustDomain(s);
  }

  /** `spiffe://<name>`: the trust domain's own SPIFFE ID string. */
  idString(): string {
    return SCHEME + this.name;
  }

  /** The SPIFFE ID of the trust domain itself (no path). */
  id(): SpiffeId {
    return SpiffeId.parse(this.idString());
  }

  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }
}
