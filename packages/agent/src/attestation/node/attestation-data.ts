// What the configured node attestor sends to the server (join_token, x509pop or k8s_psat).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { answerX509PopChallenge, marshalX509PopPayload, parseX509PopChallenge } from '@ztwim/core';
import { pemToDerList } from '@ztwim/spiffe';
import type { AgentConfig } from '../../config/agent-config.ts';
import type { NodeAttestationData } from '../../client/server-client.ts';
import { k8sPsatAttestationData } from './k8s-psat.ts';

/** The attestation data, or undefined when the agent has nothing to attest with (no join token). */
export function attestationData(c: AgentConfig): NodeAttestationData | undefined {
  if (c.nodeAttestor.type === 'x509pop') {
    const key = crypto.createPrivateKey(fs.readFileSync(c.nodeAttestor.privateKeyPath));
    const certs = pemToDerList(fs.readFileSync(c.nodeAttestor.certificatePath, 'utf8'));
    if (c.nodeAttestor.intermediatesPath !== undefined) certs.push(...pemToDerList(fs.readFileSync(c.nodeAttestor.intermediatesPath, 'utf8')));
    return {
      type: 'custom',
      pluginType: 'x509pop',
      payload: marshalX509PopPayload({ certificates: certs }),
      answer: (ch) => answerX509PopChallenge(parseX509PopChallenge(ch), key, crypto.randomBytes(32)),
    };
  }
  if (c.nodeAttestor.type === 'k8s_psat') return k8sPsatAttestationData(c.nodeAttestor);
  return c.joinToken === undefined ? undefined : { type: 'join_token', token: c.joinToken };
}
