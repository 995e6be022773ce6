import { readFileSync } from 'node:fs';
import { checkIssuer, checkPassed, formatFindings, CHECK_TARGETS } from '@ztwim/oidc';
import { CommandError, EXIT_USAGE, type Command } from '../command.ts';
import { print, println } from '../env.ts';

type Target = (typeof CHECK_TARGETS)[number];

const checkCommand: Command = {
  name: 'check',
  summary: "Lint a live OIDC issuer against a relying party's rules (exit 1 on any error)",
  description: 'Usage: ztwim oidc check ISSUER_URL -for vault|entra|aws|gcp [-caFile PEM]',
  flags: {
    for: { kind: 'string', usage: `Relying party: ${CHECK_TARGETS.join(', ')}`, arg: 'TARGET' },
    caFile: { kind: 'string', usage: 'Extra CA certificates (PEM) to trust for the issuer', arg: 'FILE' },
  },
  async run(f, env) {
    const [url, ...rest] = f.args;
    // Accept the flag after the URL too (`check URL --for entra`), as the issue writes it.
    let target = f.string('for');
    if (rest[0] === '-for' || rest[0] === '--for') target = rest[1] ?? '';
    if (url === undefined) throw new CommandError('missing ISSUER_URL', EXIT_USAGE);
    if (!(CHECK_TARGETS as readonly string[]).includes(target)) throw new CommandError(`-for must be one of ${CHECK_TARGETS.join(', ')}`, EXIT_USAGE);
    const ca = f.optString('caFile');
    const findings = await checkIssuer(url, target as Target, ca === undefined ? {} : { ca: readFileSync(ca, 'utf8') });
    print(env.stdout, formatFindings(findings, { url, target: target as Target }));
    if (!checkPassed(findings)) return 1;
    println(env.stdout);
    return 0;
  },
};

export const oidcCommand: Command = {
  name: 'oidc',
  summary: 'OIDC discovery provider tools',
  subcommands: [checkCommand],
};
