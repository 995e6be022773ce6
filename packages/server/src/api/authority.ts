import type { SignJwtSvidParams, JwtSvidResult } from '../ca/jwt-signer.ts';
import type { SignX509SvidParams, X509SvidResult } from '../ca/x509-ca.ts';

/** What the API needs from the CA: sign with whatever key is active right now. */
export interface Authority {
  signX509Svid(params: SignX509SvidParams): Promise<X509SvidResult>;
  signJwtSvid(params: SignJwtSvidParams): Promise<JwtSvidResult>;
}
