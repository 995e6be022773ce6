/**
 * SPIFFE IDs between the wire (the server API's `spire.api.types.SPIFFEID`: trust domain name
 * and path) and the SDK's `SpiffeId`, as SPIRE's `pkg/server/api/id.go` (`IDFromProto`,
 * `ProtoFromID`). The types here are structural so that this layer needs no generated code:
 * a proto `SPIFFEID` message is a `WireSpiffeId`.
 */
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { invalidArgument } from '../errors.ts';

/** `spire.api.types.SPIFFEID`: a trust domain name (no scheme) and a path (`/...` or empty). */
export interface WireSpiffeId {
  readonly trustDomain: string;
  readonly path: string;
}

/** The validated SDK ID of a wire ID; a missing or malformed one is an ERR_INVALID_ARGUMENT naming the cause. */
export function spiffeIdFromWire(id: WireSpiffeId | undefined): SpiffeId {
  if (id === undefined) throw invalidArgument('request must specify SPIFFE ID');
  try {
    return SpiffeId.fromPath(TrustDomain.parse(id.trustDomain), id.path);
  } catch (e) {
    throw invalidArgument(`invalid SPIFFE ID: ${(e as Error).message}`, { cause: e });
  }
}

/** The wire form of an SDK ID. */
export function spiffeIdToWire(id: SpiffeId): WireSpiffeId {
  return { trustDomain: id.trustDomain.name, path: id.path };
}

/**
 * The `spiffe://` string of a wire ID as received, unvalidated (what SPIRE's CLI prints for an
 * ID it got from the server); '' when absent.
 */
export function wireSpiffeIdString(id: WireSpiffeId | undefined): string {
  return id === undefined ? '' : `spiffe://${id.trustDomain}${id.path}`;
}

/** `spiffe://<name>`: the ID of a trust domain given by its (already validated) name, the key of Workload API bundle maps. */
export function trustDomainIdString(name: string): string {
  return `spiffe://${name}`;
}
