import type { Agent } from '@ztwim/proto';
import { goTimeLocal } from './go-format.ts';
import { idToString } from './entry.ts';

/** One agent block (labels padded to 18, trailing blank line). */
export function formatAgent(a: Agent, tz?: string): string {
  const l: string[] = [];
  const add = (label: string, value: string): void => {
    l.push(`${label.padEnd(18)}: ${value}`);
  };
  add('SPIFFE ID', idToString(a.id));
  add('Attestation type', a.attestationType);
  add('Expiration time', goTimeLocal(a.x509svidExpiresAt, tz));
  if (a.banned) add('Banned', 'true');
  else add('Serial number', a.x509svidSerialNumber);
  add('Can re-attest', String(a.canReattest));
  return l.map((x) => x + '\n').join('') + '\n';
}

/** `agent list` pretty output. */
export function formatAgentList(agents: readonly Agent[], tz?: string): string {
  if (agents.length === 0) return 'No attested agents found\n';
  return `Found ${agents.length} attested ${agents.length === 1 ? 'agent' : 'agents'}:\n\n` + agents.map((a) => formatAgent(a, tz)).join('');
}

/** `agent show` pretty output. */
export function formatAgentShow(a: Agent, tz?: string): string {
  return (
    'Found an attested agent given its SPIFFE ID\n\n' +
    formatAgent(a, tz) +
    a.selectors.map((s) => `${'Selectors'.padEnd(18)}: ${s.type}:${s.value}\n`).join('')
  );
}

/** `N attested agents` / `1 attested agent`. */
export function formatAgentCount(n: number): string {
  return `${n} attested ${n === 1 ? 'agent' : 'agents'}\n`;
}
