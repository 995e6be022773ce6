// The agent's own SVID (SPIRE pkg/agent/svid/rotator.go): renewed at half-life, by attesting
// again when the server allows it (reattestable) or by RenewAgent over the current connection.
import { every, isZtwimError, type Clock, type Logger, type Task } from '@ztwim/core';
import type { AgentCredentials } from '../storage/storage.ts';
import type { NodeAttestationData, ServerClient } from '../client/server-client.ts';
import type { ServerCalls } from '../client/server-pool.ts';

export interface AgentSvidRotatorDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** How often the SVID's age is checked (the agent's sync interval). */
  readonly checkIntervalMs: number;
  /** The server(s): RenewAgent on the connection with the current SVID, attesting again on a bootstrap connection. */
  readonly server: ServerCalls;
  readonly attest: (client: ServerClient, data: NodeAttestationData) => Promise<AgentCredentials>;
  readonly renew: (client: ServerClient, reattestable: boolean) => Promise<AgentCredentials>;
  /** The node attestor's data, or undefined when there is none to attest with again. */
  readonly attestationData: () => NodeAttestationData | undefined;
  /** Called with each new SVID (the agent reconnects with it and stores it). */
  readonly onRotated: (creds: AgentCredentials) => void | Promise<void>;
}

export class AgentSvidRotator {
  readonly #d: AgentSvidRotatorDeps;
  #creds: AgentCredentials;
  #notBefore: number;
  #notAfter: number;

  constructor(creds: AgentCredentials, deps: AgentSvidRotatorDeps) {
    this.#d = deps;
    this.#creds = creds;
    this.#notBefore = creds.svid.notBefore().getTime();
    this.#notAfter = creds.svid.expiresAt().getTime();
  }

  get creds(): AgentCredentials {
    return this.#creds;
  }

  /** Half of the SVID's lifetime has passed. */
  due(): boolean {
    return this.#d.clock.nowMs() >= this.#notBefore + (this.#notAfter - this.#notBefore) / 2;
  }

  /**
   * Renews the SVID when due. A failure is logged and retried at the next check, except a
   * PermissionDenied (the agent was banned or evicted), which is thrown: the agent stops.
   */
  async rotateIfDue(): Promise<void> {
    if (!this.due()) return;
    const { log } = this.#d;
    let next: AgentCredentials;
    try {
      const data = this.#d.attestationData();
      if (this.#creds.reattestable && data !== undefined) {
        next = await this.#d.server.call((c) => this.#d.attest(c, data), { bootstrap: true });
      } else {
        const reattestable = this.#creds.reattestable;
        next = await this.#d.server.call((c) => this.#d.renew(c, reattestable));
      }
    } catch (e) {
      if (isZtwimError(e, 'ERR_PERMISSION_DENIED')) throw e;
      log.warn({ err: e }, 'Agent SVID rotation failed');
      return;
    }
    this.#creds = next;
    this.#notBefore = next.svid.notBefore().getTime();
    this.#notAfter = next.svid.expiresAt().getTime();
    log.info({ spiffe_id: next.svid.id.toString() }, 'Agent SVID rotated');
    await this.#d.onRotated(next);
  }

  /** The rotation loop: checks at start and every checkIntervalMs; stops the agent on PermissionDenied. */
  run(): Task {
    return every(this.#d.clock, this.#d.checkIntervalMs, () => this.rotateIfDue(), { stopOnError: true });
  }
}
