// The OIDC provider's key source when it runs in the same process as the server (`ztwim up`):
// the server's trust bundle, read every second and pushed when its sequence number moves.
import { every, systemClock, type Clock, type Logger } from '@ztwim/core';
import { CallbackJwksSource, jwksOfServerBundle } from '@ztwim/oidc';
import type { RunningServer } from '@ztwim/server';

export const SERVER_BUNDLE_POLL_MS = 1000;

export function serverBundleJwksSource(server: Pick<RunningServer, 'bundle'>, log?: Logger, clock: Clock = systemClock): CallbackJwksSource {
  return new CallbackJwksSource(
    (push) => {
      let seq = -1n;
      const poll = async (): Promise<void> => {
        const b = await server.bundle();
        if (b.sequenceNumber === seq) return;
        seq = b.sequenceNumber;
        push(jwksOfServerBundle(b));
      };
      const stopping = new AbortController();
      const onError = (e: unknown): void => log?.warn({ error: (e as Error).message }, 'Cannot read the trust bundle for the OIDC provider');
      void every(clock, SERVER_BUNDLE_POLL_MS, poll, { onError })(stopping.signal);
      return () => stopping.abort();
    },
    { clock },
  );
}
