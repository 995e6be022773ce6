import type { TrustDomain } from '../id/trust-domain.ts';
import type { X509Bundle } from './x509-bundle.ts';
import type { JwtBundle } from './jwt-bundle.ts';

/** Supplies X.509 bundles by trust domain. Throws SpiffeError(ERR_BUNDLE_NOT_FOUND) when absent. */
export interface X509BundleSource {
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle;
}

/** Supplies JWT bundles by trust domain. Throws SpiffeError(ERR_BUNDLE_NOT_FOUND) when absent. */
export interface JwtBundleSource {
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle;
}
