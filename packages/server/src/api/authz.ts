import { X509Certificate } from 'node:crypto';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { permissionDeniedError, PermissionDeniedDetails_Reason } from '@ztwim/proto';
import { unixSeconds, type Clock, type Logger } from '@ztwim/core';
import type { SpiffeId } from '@ztwim/spiffe';
import type { DataStore } from '../datastore/datastore.ts';
import { callerKey, transportKey, type Caller } from './caller.ts';

type Role = 'local' | 'admin' | 'agent' | 'any' | 'downstream';

/** SPIRE's authorization policy (spire-api-wire.md §3): method → who may call it. */
const POLICY: Readonly<Record<string, readonly Role[]>> = {
  'spire.api.server.agent.v1.Agent/AttestAgent': ['any'],
  'spire.api.server.bundle.v1.Bundle/GetBundle': ['any'],
  'spire.api.server.agent.v1.Agent/RenewAgent': ['agent'],
  'spire.api.server.entry.v1.Entry/GetAuthorizedEntries': ['agent'],
  'spire.api.server.entry.v1.Entry/SyncAuthorizedEntries': ['agent'],
  // ztwim's own (not SPIRE's): entry-change hints for the calling agent.
  'ztwim.agent.v1.AgentHints/Watch': ['agent'],
  'spire.api.server.svid.v1.SVID/BatchNewX509SVID': ['agent'],
  'spire.api.server.svid.v1.SVID/NewJWTSVID': ['agent'],
  'spire.api.server.bundle.v1.Bundle/GetFederatedBundle': ['local', 'admin', 'agent'],
  'spire.api.server.svid.v1.SVID/NewDownstreamX509CA': ['downstream'],
  'spire.api.server.bundle.v1.Bundle/PublishJWTAuthority': ['downstream'],
  'spire.api.server.debug.v1.Debug/GetInfo': ['local'],
  'grpc.health.v1.Health/Check': ['local'],
  'grpc.health.v1.Health/Watch': ['local'],
  'spire.api.server.agent.v1.Agent/PostStatus': [],
};
const DEFAULT_ROLES: readonly Role[] = ['local', 'admin'];

export function rolesFor(fullMethod: string): readonly Role[] {
  return POLICY[fullMethod] ?? DEFAULT_ROLES;
}

export interface AuthzDeps {
  readonly dataStore: DataStore;
  readonly clock: Clock;
  readonly adminIds: readonly SpiffeId[];
  /** Verifies a client chain against the trust bundle; returns its SPIFFE ID or throws. */
  readonly verifyPeer: (chain: readonly Uint8Array[]) => SpiffeId | Promise<SpiffeId>;
  readonly isAgentPath: (id: SpiffeId) => boolean;
  /** Where refused agents are logged (the caller only sees the generic denial). */
  readonly log?: Logger;
}

/** Builds the Caller for a request and enforces the policy; the one place access is decided. */
export function authorizationInterceptor(deps: AuthzDeps): Interceptor {
  return (next) => async (req) => {
    const fullMethod = `${req.service.typeName}/${req.method.name}`;
    const roles = rolesFor(fullMethod);
    const transport = req.contextValues.get(transportKey);
    let caller: Caller;
    if (transport.kind === 'local') {
      caller = { local: true, admin: true, remoteAddress: 'unix' };
    } else {
      let id: SpiffeId | undefined;
      let serial: string | undefined;
      if (transport.peerChain.length > 0) {
        try {
          id = await deps.verifyPeer(transport.peerChain);
        } catch (e) {
          throw new ConnectError(`client certificate is not trusted: ${(e as Error).message}`, Code.Unauthenticated);
        }
        serial = serialOf(transport.peerChain[0] as Uint8Array);
      }
      // The entry lookup only runs for methods an admin may call (not on every agent RPC).
      const admin =
        id !== undefined && roles.includes('admin') && (deps.adminIds.some((a) => a.equals(id)) || (await hasEntryFlag(deps.dataStore, id, 'admin')));
      caller = {
        local: false,
        admin,
        remoteAddress: transport.remoteAddress,
        ...(id === undefined ? {} : { id }),
        ...(serial === undefined ? {} : { agentSerial: serial }),
      };
    }
    if (roles.includes('any')) return next(withCaller(req, caller));
    if (roles.includes('local') && caller.local) return next(withCaller(req, caller));
    if (roles.includes('admin') && caller.admin) return next(withCaller(req, caller));
    if (roles.includes('downstream') && caller.id !== undefined && (await hasEntryFlag(deps.dataStore, caller.id, 'downstream'))) {
      return next(withCaller(req, caller));
    }
    if (roles.includes('agent') && caller.id !== undefined && caller.agentSerial !== undefined && deps.isAgentPath(caller.id)) {
      const denied = await checkAgent(deps, caller.id, caller.agentSerial);
      if (denied !== undefined) {
        // As SPIRE: the caller gets the generic denial plus the reason; the log says why.
        deps.log?.warn({ agent_id: caller.id.toString(), caller_addr: caller.remoteAddress, method: fullMethod, ...denied.fields }, denied.log);
        throw permissionDeniedError(`authorization denied for method /${fullMethod}`, denied.reason);
      }
      return next(withCaller(req, { ...caller, agentId: caller.id }));
    }
    throw new ConnectError(`authorization denied for method /${fullMethod}`, Code.PermissionDenied);
  };
}

/** Decimal serial of a DER certificate; remembered per buffer (endpoints reuse a connection's chain). */
const serials = new WeakMap<Uint8Array, string>();
function serialOf(der: Uint8Array): string {
  let s = serials.get(der);
  if (s === undefined) serials.set(der, (s = BigInt('0x' + new X509Certificate(der).serialNumber).toString(10)));
  return s;
}

function withCaller<T extends { contextValues: { set: (k: typeof callerKey, v: Caller) => unknown } }>(req: T, c: Caller): T {
  req.contextValues.set(callerKey, c);
  return req;
}

/**
 * True when an entry for this SPIFFE ID has the flag set (admin=true / downstream=true entries).
 * Every entry of the ID is read, as SPIRE's authorization does: a page would miss a flagged entry
 * behind many unflagged ones for the same ID.
 */
async function hasEntryFlag(ds: DataStore, id: SpiffeId, flag: 'admin' | 'downstream'): Promise<boolean> {
  const r = await ds.listEntries({ bySpiffeId: id.toString() });
  return r.entries.some((e) => e[flag]);
}

/**
 * How long a node read for the per-call agent check may be reused (see
 * DataStore.getCachedAttestedNode): writes in this process are seen at once, writes by another
 * server sharing the database within this time.
 */
export const NODE_CACHE_MAX_AGE_MS = 1000;

function nodeExpired(expiresAt: number, clock: Clock): boolean {
  return expiresAt !== 0 && expiresAt < unixSeconds(clock.now());
}

interface AgentDenial {
  readonly reason: PermissionDeniedDetails_Reason;
  readonly log: string;
  readonly fields?: Record<string, string>;
}

/**
 * SPIRE's agent check (§2.5): node attested and not banned, SVID serial = the node's current one
 * (or the new one, which is then promoted). Returns why the agent is refused, or undefined. An
 * expired SVID never gets here: verifyPeer refuses it first.
 */
async function checkAgent(deps: AuthzDeps, id: SpiffeId, serial: string): Promise<AgentDenial | undefined> {
  const get = deps.dataStore.getCachedAttestedNode;
  if (get !== undefined) {
    // Only the plain accept (current serial, not banned, not expired) is taken from memory; the
    // store drops a node on every write to it, so a ban, eviction, renewal or re-attestation in
    // this process is seen at once. Every other outcome is decided on a fresh read below.
    const cached = await get.call(deps.dataStore, id.toString(), NODE_CACHE_MAX_AGE_MS);
    if (cached !== null && cached.serialNumber !== '' && cached.serialNumber === serial && !nodeExpired(cached.expiresAt, deps.clock)) {
      return undefined;
    }
  }
  const node = await deps.dataStore.getAttestedNode(id.toString());
  if (node === null) return { reason: PermissionDeniedDetails_Reason.AGENT_NOT_ATTESTED, log: 'Agent is not attested' };
  if (node.serialNumber === '') return { reason: PermissionDeniedDetails_Reason.AGENT_BANNED, log: 'Agent is banned' };
  if (node.serialNumber === serial) {
    if (nodeExpired(node.expiresAt, deps.clock)) {
      return { reason: PermissionDeniedDetails_Reason.AGENT_EXPIRED, log: 'Agent SVID is expired' };
    }
    return undefined;
  }
  if (node.newSerialNumber !== '' && node.newSerialNumber === serial) {
    await deps.dataStore.updateAttestedNode(id.toString(), {
      serialNumber: node.newSerialNumber,
      expiresAt: node.newExpiresAt,
      newSerialNumber: '',
      newExpiresAt: 0,
    });
    return undefined;
  }
  return {
    reason: PermissionDeniedDetails_Reason.AGENT_NOT_ACTIVE,
    log: 'Agent SVID is not active',
    fields: { svid_serial_number: serial, serial_number: node.serialNumber },
  };
}
