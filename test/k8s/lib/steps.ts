// Steps of a sequential k8s test: each is its own `it`, and once one fails the later ones fail at
// once naming it, instead of running against a cluster left half-way.
import assert from 'node:assert/strict';
import { it } from 'node:test';

/** Returns `step(name, fn)`: an `it` that fails at once if an earlier step of the same sequence failed. */
export function stepSequence(): (name: string, fn: () => Promise<void>) => void {
  let failed: string | undefined;
  return (name, fn) => {
    it(name, async () => {
      if (failed !== undefined) assert.fail(`not run: an earlier step failed (${failed})`);
      try {
        await fn();
      } catch (e) {
        failed = name;
        throw e;
      }
    });
  };
}
