// For tests: the ConnectError a call failed with.
import assert from 'node:assert/strict';
import { ConnectError } from '@connectrpc/connect';

/** Awaits `p`, which must fail with a ConnectError, and returns that error. */
export async function callFailure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ConnectError, String(e));
    return e;
  }
  assert.fail('the call succeeded');
}
