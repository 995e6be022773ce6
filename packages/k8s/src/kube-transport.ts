// The one request path to the apiserver that every @ztwim/k8s client (KubeClient, ResourceClient,
// informers, leader election) sends through; built by createKubeTransport (client-node.ts).
import type { IncomingMessage } from 'node:http';

/** Default deadline of one apiserver call (watches excluded: they have their own timers). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TransportRequest {
  readonly method: HttpMethod;
  /** Path and query under the server URL, e.g. `/api/v1/namespaces/a/pods?limit=500`. */
  readonly path: string;
  readonly body?: string;
  /** Content-Type of the body (default application/json). */
  readonly contentType?: string;
  /** Deadline of this call (default: the transport's, 30 s unless configured). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface KubeTransport {
  /** Names the cluster in messages: `cluster "<name>" (<server URL>)`. */
  readonly description: string;
  /** One call; any HTTP status resolves, no answer (refused, reset, timed out) rejects with the transport's error. */
  request(req: TransportRequest): Promise<{ status: number; text: string }>;
  /**
   * A streaming GET (watch): resolves once the headers arrived (within the request timeout);
   * the body ends when the server ends it, or when the signal aborts.
   */
  stream(path: string, signal: AbortSignal): Promise<IncomingMessage>;
  /** Closes kept-alive connections. */
  close(): void;
}
