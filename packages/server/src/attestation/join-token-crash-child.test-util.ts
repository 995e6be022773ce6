/**
 * Child process for the join-token crash test: takes the token through the attestor (as the
 * server does at the start of AttestAgent), prints "taken", then hangs before anything else is
 * written (the node, its SVID), so the parent can kill -9 it between use and commit.
 * Usage: join-token-crash-child <db path> <token>
 */
import { cryptoRandom, systemClock } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import { JoinTokenAttestor } from './join-token.ts';

const [path, token] = process.argv.slice(2);
if (path === undefined || token === undefined) throw new Error('usage: join-token-crash-child <db path> <token>');
const ds = await SqliteDataStore.open({ path, clock: systemClock, random: cryptoRandom });
const attestor = new JoinTokenAttestor({ dataStore: ds, trustDomain: TrustDomain.parse('example.org'), clock: systemClock });
const r = await attestor.attest(new TextEncoder().encode(token));
process.stdout.write(`taken ${r.agentId.toString()}\n`);
setInterval(() => {}, 1 << 30);
