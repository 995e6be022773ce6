/**
 * `@ztwim/spiffe/internal`: the SDK's DER/X.509/JWK readers, shared with the other ztwim
 * packages (server, agent, CLI) so that the tree has one certificate parser, as go-spiffe's
 * `internal/x509util` is shared within its module. Internal: not part of the SDK's public API,
 * no compatibility promise; applications use the root export.
 */
export {
  DerError,
  readTlv,
  children,
  expectTag,
  value,
  raw,
  readOid,
  readBoolean,
  readSmallUint,
  readTime,
  TAG_BOOLEAN,
  TAG_INTEGER,
  TAG_BIT_STRING,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_UTC_TIME,
  TAG_GENERALIZED_TIME,
  TAG_SEQUENCE,
  TAG_SET,
} from './der.ts';
export type { Tlv } from './der.ts';
export {
  parseCertificate,
  certificateValidity,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_ENCIPHERMENT,
  KU_KEY_AGREEMENT,
  KU_KEY_CERT_SIGN,
  KU_CRL_SIGN,
  OID_SUBJECT_KEY_ID,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_BASIC_CONSTRAINTS,
  OID_NAME_CONSTRAINTS,
  OID_AUTHORITY_KEY_ID,
  OID_EXT_KEY_USAGE,
} from './x509.ts';
export type { ParsedCertificate, CertExtension, NameConstraints, NameConstraintSubtree } from './x509.ts';
export { publicJwkFromKey, orderJwkMembers } from './jwk.ts';
