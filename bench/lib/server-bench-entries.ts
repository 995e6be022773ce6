// The entry set of the server benches (bench/server.ts, bench/first-answer-probe.ts): bulk entries
// under 99 other agents, and an agent's own entries as direct children (60%) and grandchildren (40%).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { EntrySchema } from '@ztwim/proto';

export type EntryInit = MessageInitShape<typeof EntrySchema>;

const sid = (td: string, path: string): { trustDomain: string; path: string } => ({ trustDomain: td, path });

/** The i-th bulk entry, parented by one of 99 x509pop agents. */
export function bulkEntry(td: string, i: number): EntryInit {
  return {
    spiffeId: sid(td, `/ns/${i % 500}/sa/w${i}`),
    parentId: sid(td, `/spire/agent/x509pop/other-${i % 99}`),
    selectors: [
      { type: 'k8s', value: `ns:ns-${i % 500}` },
      { type: 'k8s', value: `sa:w${i}` },
    ],
    x509SvidTtl: 3600,
    dnsNames: [`w${i}.example.org`],
  };
}

/** `n` entries of the agent at `agentPath`, their SPIFFE IDs under `prefix` (e.g. `/agent`). */
export function agentEntries(td: string, agentPath: string, prefix: string, n: number): EntryInit[] {
  const direct = Math.round(n * 0.6);
  const out: EntryInit[] = [];
  for (let i = 0; i < direct; i++)
    out.push({ spiffeId: sid(td, `${prefix}/w${i}`), parentId: sid(td, agentPath), selectors: [{ type: 'unix', value: `uid:${i}` }] });
  for (let i = 0; i < n - direct; i++) {
    out.push({ spiffeId: sid(td, `${prefix}/w${i}/c`), parentId: sid(td, `${prefix}/w${i}`), selectors: [{ type: 'unix', value: `uid:c${i}` }] });
  }
  return out;
}
