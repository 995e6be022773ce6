// The OIDC provider's key source when it runs in the same process as the server (`ztwim up`):
// the server's trust bundle, read every second and published when its sequence number moves.
import { every, systemClock, type Clock, type Logger } from '@ztwim/core';
import { StaticJwksSource, jwksOfServerBundle, type JwksSource } from '@ztwim/oidc';
import type { RunningServer } from '@ztwim/server';

export const SERVER_BUNDLE_POLL_MS = 1000;

/** A key source whose run() polls the server's bundle; the OIDC provider runs it as one of its tasks. */
export function serverBundleJwksSource(
  server: Pick<RunningServer, 'bundle'>,
  log?: Logger,
  clock: Clock = systemClock,
): JwksSource & { run(signal: AbortSignal): Promise<void>; close(): void } {
  const keys = new StaticJwksSource(undefined, { clock });
  let seq = -1n;
  const poll = async (): Promise<void> => {
    const b = await server.bundle();
    if (b.sequenceNumber === seq) return;
    seq = b.sequenceNumber;
    keys.set(jwksOfServerBundle(b));
  };
  const onError = (e: unknown): void => log?.warn({ error: (e as Error).message }, 'Cannot read the trust bundle for the OIDC provider');
  const loop = every(clock, SERVER_BUNDLE_POLL_MS, poll, { name: 'oidc_server_bundle_poll', onError });
  const stopping = new AbortController();
  return {
    current: () => keys.current(),
    onChange: (listener) => keys.onChange(listener),
    run: (signal) => loop(AbortSignal.any([signal, stopping.signal])),
    close: () => stopping.abort(),
  };
}
