// The bundle an agent trusts before its first attestation: the configured file, inline text or URL
// (PEM, or a SPIFFE bundle), as spire-agent's trust_bundle_path / trust_bundle_url.
import * as fs from 'node:fs';
import { ZtwimError } from '@ztwim/core';
import { pemToDerList, SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import type { AgentConfig } from '../config/agent-config.ts';

/** The bootstrap roots (DER); empty when none is configured (insecure_bootstrap). */
export async function bootstrapRoots(c: AgentConfig): Promise<Uint8Array[]> {
  let text: string | undefined = c.trustBundle;
  if (text === undefined && c.trustBundlePath !== undefined) {
    try {
      text = fs.readFileSync(c.trustBundlePath, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      throw new ZtwimError(
        'ERR_CONFIG',
        `cannot read the bootstrap trust bundle ${c.trustBundlePath} (agent.trust_bundle_path or -trustBundle): ${why}; write the server's bundle there (ztwim server bundle show > FILE), or set trust_bundle_url or insecure_bootstrap`,
        { cause: e, fields: { trust_bundle_path: c.trustBundlePath } },
      );
    }
  }
  if (text === undefined && c.trustBundleUrl !== undefined) {
    const res = await fetch(c.trustBundleUrl);
    if (!res.ok) throw new ZtwimError('ERR_UNAVAILABLE', 'cannot download trust bundle', { fields: { status: res.status } });
    text = await res.text();
  }
  if (text === undefined) return [];
  if (c.trustBundleFormat === 'spiffe') {
    const b = SpiffeBundle.parse(TrustDomain.parse(c.trustDomain), text);
    return b.x509Authorities().map((x) => new Uint8Array(x));
  }
  return pemToDerList(text);
}
