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

/**
 * The validated SDK ID of a wire ID. A missing or malformed one is an ERR_INVALID_ARGUMENT
 * naming the cause (SPIRE's messages), prefixed with `what` when given ("invalid parent ID: ...").
 */
export function spiffeIdFromWire(id: WireSpiffeId | undefined, what?: string): SpiffeId {
  const fail = (msg: string, cause?: unknown): Error =>
    invalidArgument(what === undefined ? msg : `${what}: ${msg}`, cause === undefined ? undefined : { cause });
  if (id === undefined) throw fail('request must specify SPIFFE ID');
  if (id.trustDomain === '') throw fail('trust domain is missing');
  try {
    return SpiffeId.fromPath(TrustDomain.parse(id.trustDomain), id.path);
  } catch (e) {
    throw fail((e as Error).message, e);
  }
}

/** The wire form of an SDK ID (or of an ID string, parsed: a malformed one throws the SDK's error). */
export function spiffeIdToWire(id: SpiffeId | string): WireSpiffeId {
  const s = typeof id === 'string' ? SpiffeId.parse(id) : id;
  return { trustDomain: s.trustDomain.name, path: s.path };
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
