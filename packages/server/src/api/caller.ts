import { createContextKey } from '@connectrpc/connect';
import type { SpiffeId } from '@ztwim/spiffe';

/**
 * Who is calling, as seen by the transport: the admin Unix socket (local), or a TCP/TLS peer
 * with the certificate chain it presented (possibly none). Set per request by the endpoint.
 */
export type Transport = { readonly kind: 'local' } | { readonly kind: 'tls'; readonly peerChain: readonly Uint8Array[]; readonly remoteAddress: string };

export const transportKey = createContextKey<Transport>({ kind: 'tls', peerChain: [], remoteAddress: '' });

/** The caller after authentication: filled in by the authorization interceptor. */
export interface Caller {
  readonly local: boolean;
  /** SPIFFE ID from a verified client certificate. */
  readonly id?: SpiffeId;
  readonly admin: boolean;
  /** Set when the caller is an attested, active agent. */
  readonly agentId?: SpiffeId;
  /** Serial of the agent's presented SVID (decimal). */
  readonly agentSerial?: string;
  readonly remoteAddress: string;
}

export const callerKey = createContextKey<Caller>({ local: false, admin: false, remoteAddress: '' });
