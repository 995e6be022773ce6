// Test helper (tests only): the recorded kubelet pod list, the same list before the blog
// container has started, and a driver for attestations that poll on a FakeClock.
import { readFileSync } from 'node:fs';

import type { FakeClock } from '@ztwim/testkit';

/** The kubelet `/pods` body recorded on the test node (containerd). */
export const PODS = readFileSync(new URL('./k8s/pods-containerd.json', import.meta.url), 'utf8');

/** The recorded list with the blog container not started yet (no containerID in its status). */
export function withoutBlogContainer(): string {
  const doc = JSON.parse(PODS) as { items: Array<{ status: { containerStatuses?: Array<{ name: string; containerID?: string }> } }> };
  for (const cs of doc.items[0]?.status.containerStatuses ?? []) if (cs.name === 'blog') delete cs.containerID;
  return JSON.stringify(doc);
}

/** Runs an attestation that polls: advances the fake clock one retry interval each time it waits. */
export async function drive<T>(clock: FakeClock, p: Promise<T>, stepMs = 500): Promise<T> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  while (!settled) {
    await Promise.race([clock.waitForTimers(1), watched.catch(() => undefined)]);
    if (!settled) clock.advance(stepMs);
  }
  return watched;
}
