export { spiffeIdFromWire, spiffeIdToWire, wireSpiffeIdString, trustDomainIdString } from './spiffe-id.ts';
export type { WireSpiffeId } from './spiffe-id.ts';
export {
  jwkFromSpki,
  jwkFromKey,
  spkiFromKey,
  jwtAuthorityToWire,
  bundleToWire,
  x509AuthoritiesDer,
  jwtAuthoritiesToJwks,
  jwksDocument,
  x509BundleFromWire,
  jwtBundleFromWire,
  spiffeBundleFromWire,
  spiffeBundleToWire,
} from './bundle.ts';
export type { WireBundle, WireBundleInit, WireX509Authority, WireJwtAuthority, JwtAuthorityKey, JwksOptions } from './bundle.ts';
