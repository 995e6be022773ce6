// `ztwim server entry create|show|update|delete|count`, compatible with spire-server's.
import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  BatchCreateEntryResponseSchema,
  BatchDeleteEntryResponseSchema,
  BatchUpdateEntryResponseSchema,
  CountEntriesResponseSchema,
  EntrySchema,
  EntryService,
  FederatesWithMatch_MatchBehavior,
  ListEntriesResponseSchema,
  SelectorMatch_MatchBehavior,
  type Entry,
} from '@ztwim/proto';
import { CommandError, type Command } from '../../command.ts';
import type { Env } from '../../env.ts';
import type { Flags, FlagSpecs } from '../../flags.ts';
import { formatEntry, formatEntryCount, formatEntryList, sortEntries } from '../../printer/entry.ts';
import { goQuote, grpcCodeName } from '../../printer/go-format.ts';
import { withServer, type ServerConnection } from './client.ts';
import { checkedInt32, outputFormat, parseIdToProto, parseSelector, callServer, printProto, readInput, serverFlags } from './common.ts';
import { parseEntryData } from './entry-data.ts';

const SERVER_ID_PATH = '/spire/server';

const ENTRY_FIELDS: FlagSpecs = {
  entryID: { kind: 'string', usage: 'A custom ID for this registration entry (optional). If not set, a new entry ID will be generated', arg: 'string' },
  parentID: { kind: 'string', usage: "The SPIFFE ID of this record's parent", arg: 'string' },
  spiffeID: { kind: 'string', usage: 'The SPIFFE ID that this record represents', arg: 'string' },
  x509SVIDTTL: { kind: 'int', usage: 'The lifetime, in seconds, for x509-SVIDs issued based on this registration entry.', default: 0 },
  jwtSVIDTTL: { kind: 'int', usage: 'The lifetime, in seconds, for JWT-SVIDs issued based on this registration entry.', default: 0 },
  data: { kind: 'string', usage: "Path to a file containing registration JSON (optional). If set to '-', read the JSON from stdin.", arg: 'string' },
  selector: { kind: 'list', usage: 'A colon-delimited type:value selector. Can be used more than once', arg: 'value' },
  federatesWith: { kind: 'list', usage: 'SPIFFE ID of a trust domain to federate with. Can be used more than once', arg: 'value' },
  admin: { kind: 'bool', usage: "If set, the SPIFFE ID in this entry will be granted access to the SPIRE Server's management APIs" },
  storeSVID: {
    kind: 'bool',
    usage: 'A boolean value that, when set, indicates that the resulting issued SVID from this entry must be stored through an SVIDStore plugin',
  },
  downstream: { kind: 'bool', usage: 'A boolean value that, when set, indicates that the entry describes a downstream SPIRE server' },
  entryExpiry: { kind: 'int', usage: 'An expiry, from epoch in seconds, for the resulting registration entry to be pruned', default: 0 },
  dns: {
    kind: 'list',
    usage: 'A DNS name that will be included in SVIDs issued based on this entry, where appropriate. Can be used more than once',
    arg: 'value',
  },
  hint: { kind: 'string', usage: 'The entry hint, used to disambiguate entries with the same SPIFFE ID', arg: 'string' },
};

function selectorsOf(flags: Flags): { type: string; value: string }[] {
  return flags.list('selector').map(parseSelector);
}

async function loadEntryData(env: Env, path: string): Promise<Entry[]> {
  const data = await readInput(env, path);
  return parseEntryData(data.toString('utf8'));
}

interface BatchResult {
  status?: { code: number; message: string } | undefined;
  entry?: Entry | undefined;
}

/** Replaces failed results' entries with the request entries, as spire-server does. */
function swapFailed(results: BatchResult[], request: readonly Entry[]): void {
  results.forEach((r, i) => {
    if ((r.status?.code ?? 0) !== 0) {
      const req = request[i];
      if (req !== undefined) r.entry = req;
    }
  });
}

function printBatch(env: Env, results: readonly BatchResult[], verb: 'create' | 'update'): void {
  const failed: BatchResult[] = [];
  for (const r of results) {
    if ((r.status?.code ?? 0) === 0) {
      if (r.entry !== undefined) env.stdout.write(formatEntry(r.entry));
    } else failed.push(r);
  }
  for (const r of failed) {
    const st = r.status ?? { code: 0, message: '' };
    env.stderr.write(`Failed to ${verb} the following entry (code: ${grpcCodeName(st.code)}, msg: ${goQuote(st.message)}):\n`);
    env.stderr.write(formatEntry(r.entry ?? create(EntrySchema)));
  }
  if (failed.length > 0) throw new CommandError(`failed to ${verb} one or more entries`);
}

/**
 * `entry create` / `entry update`: the entries of `-data`, else the one `fromFlags` describes,
 * sent in one batch; the results printed as spire-server does (failed ones with their request entry).
 */
async function sendEntries<Desc extends DescMessage>(
  flags: Flags,
  env: Env,
  verb: 'create' | 'update',
  fromFlags: () => Entry,
  schema: Desc,
  send: (conn: ServerConnection, entries: Entry[]) => Promise<MessageShape<Desc> & { results: BatchResult[] }>,
): Promise<void> {
  const format = outputFormat(flags);
  const path = flags.string('data');
  const entries = path !== '' ? await loadEntryData(env, path) : [fromFlags()];
  const resp = await callServer(flags, (conn) => send(conn, entries));
  swapFailed(resp.results, entries);
  await printProto(env, format, schema, resp, () => printBatch(env, resp.results, verb));
}

const createCommand: Command = {
  name: 'create',
  summary: 'Creates registration entries',
  flags: serverFlags({
    ...ENTRY_FIELDS,
    node: { kind: 'bool', usage: 'If set, this entry will be applied to matching nodes rather than workloads' },
  }),
  async run(flags, env) {
    await sendEntries(
      flags,
      env,
      'create',
      () => {
        const selectors = flags.list('selector');
        const node = flags.bool('node');
        if (selectors.length < 1) throw new CommandError('at least one selector is required');
        if (node && flags.list('federatesWith').length > 0) throw new CommandError('node entries can not federate');
        if (flags.string('parentID') === '' && !node) throw new CommandError('a parent ID is required if the node flag is not set');
        if (flags.string('spiffeID') === '') throw new CommandError('a SPIFFE ID is required');
        return entryFromFlags(flags, () => {
          const spiffeId = parseIdToProto(flags.string('spiffeID'));
          const parentId = node ? { trustDomain: spiffeId.trustDomain, path: SERVER_ID_PATH } : parseIdToProto(flags.string('parentID'));
          return { spiffeId, parentId };
        });
      },
      BatchCreateEntryResponseSchema,
      (conn, entries) => conn.client(EntryService).batchCreateEntry({ entries }),
    );
  },
};

type IdParts = ReturnType<typeof parseIdToProto>;

/**
 * The entry `entry create` / `entry update` describe with their flags. TTLs are checked before
 * the IDs are parsed (`ids`), in spire-server's order, so the first error matches its CLI.
 */
function entryFromFlags(flags: Flags, ids: () => { spiffeId: IdParts; parentId: IdParts }): Entry {
  if (flags.int('x509SVIDTTL') < 0) throw new CommandError('a positive x509-SVID TTL is required');
  if (flags.int('jwtSVIDTTL') < 0) throw new CommandError('a positive JWT-SVID TTL is required');
  const { spiffeId, parentId } = ids();
  return create(EntrySchema, {
    id: flags.string('entryID'),
    parentId,
    spiffeId,
    downstream: flags.bool('downstream'),
    expiresAt: BigInt(flags.int('entryExpiry')),
    dnsNames: flags.list('dns'),
    storeSvid: flags.bool('storeSVID'),
    x509SvidTtl: checkedInt32(flags.int('x509SVIDTTL'), 'X509 SVID TTL'),
    jwtSvidTtl: checkedInt32(flags.int('jwtSVIDTTL'), 'JWT SVID TTL'),
    hint: flags.string('hint'),
    selectors: selectorsOf(flags),
    federatesWith: flags.list('federatesWith'),
    admin: flags.bool('admin'),
  });
}

const updateCommand: Command = {
  name: 'update',
  summary: 'Updates registration entries',
  flags: serverFlags({ ...ENTRY_FIELDS, entryID: { kind: 'string', usage: 'The Registration Entry ID of the record to update', arg: 'string' } }),
  async run(flags, env) {
    await sendEntries(
      flags,
      env,
      'update',
      () => {
        if (flags.string('entryID') === '') throw new CommandError('entry ID is required');
        if (flags.list('selector').length < 1) throw new CommandError('at least one selector is required');
        if (flags.string('parentID') === '') throw new CommandError('a parent ID is required');
        if (flags.string('spiffeID') === '') throw new CommandError('a SPIFFE ID is required');
        return entryFromFlags(flags, () => {
          const parentId = parseIdToProto(flags.string('parentID'));
          const spiffeId = parseIdToProto(flags.string('spiffeID'));
          return { spiffeId, parentId };
        });
      },
      BatchUpdateEntryResponseSchema,
      (conn, entries) => conn.client(EntryService).batchUpdateEntry({ entries }),
    );
  },
};

const FILTER_FLAGS: FlagSpecs = {
  parentID: { kind: 'string', usage: 'The Parent ID of the records to show', arg: 'string' },
  spiffeID: { kind: 'string', usage: 'The SPIFFE ID of the records to show', arg: 'string' },
  downstream: { kind: 'bool', usage: 'A boolean value that, when set, indicates that the entry describes a downstream SPIRE server' },
  selector: { kind: 'list', usage: 'A colon-delimited type:value selector. Can be used more than once', arg: 'value' },
  federatesWith: { kind: 'list', usage: 'SPIFFE ID of a trust domain an entry is federate with. Can be used more than once', arg: 'value' },
  matchFederatesWithOn: {
    kind: 'string',
    usage: 'The match mode used when filtering by federates with. Options: exact, any, superset and subset',
    default: 'superset',
    arg: 'string',
  },
  matchSelectorsOn: {
    kind: 'string',
    usage: 'The match mode used when filtering by selectors. Options: exact, any, superset and subset',
    default: 'superset',
    arg: 'string',
  },
  hint: { kind: 'string', usage: 'The Hint of the records to show (optional)', arg: 'string' },
};

const MATCH: Record<string, number> = { exact: 0, subset: 1, superset: 2, any: 3 };

function matchBehavior(mode: string): number {
  const m = MATCH[mode];
  if (m === undefined) throw new CommandError(`match behavior ${goQuote(mode)} unknown`);
  return m;
}

interface FilterInit {
  byParentId?: { trustDomain: string; path: string };
  bySpiffeId?: { trustDomain: string; path: string };
  bySelectors?: { selectors: { type: string; value: string }[]; match: SelectorMatch_MatchBehavior };
  byFederatesWith?: { trustDomains: string[]; match: FederatesWithMatch_MatchBehavior };
  byHint?: string;
  byDownstream?: boolean;
}

/** The List/Count filter as spire-server's entry show/count build it (by_downstream always sent). */
function buildFilter(flags: Flags): FilterInit {
  const filter: FilterInit = {};
  if (flags.string('parentID') !== '') {
    try {
      filter.byParentId = parseIdToProto(flags.string('parentID'));
    } catch (e) {
      throw new CommandError(`error parsing parent ID ${goQuote(flags.string('parentID'))}: ${(e as Error).message}`);
    }
  }
  if (flags.string('spiffeID') !== '') {
    try {
      filter.bySpiffeId = parseIdToProto(flags.string('spiffeID'));
    } catch (e) {
      throw new CommandError(`error parsing SPIFFE ID ${goQuote(flags.string('spiffeID'))}: ${(e as Error).message}`);
    }
  }
  const sels = flags.list('selector');
  if (sels.length > 0) {
    const match = matchBehavior(flags.string('matchSelectorsOn')) as SelectorMatch_MatchBehavior;
    const selectors = sels.map((s) => {
      try {
        return parseSelector(s);
      } catch (e) {
        throw new CommandError(`error parsing selectors: ${(e as Error).message}`);
      }
    });
    filter.bySelectors = { selectors, match };
  }
  const tds = flags.list('federatesWith');
  if (tds.length > 0) {
    const match = matchBehavior(flags.string('matchFederatesWithOn')) as FederatesWithMatch_MatchBehavior;
    filter.byFederatesWith = { trustDomains: tds, match };
  }
  if (flags.string('hint') !== '') filter.byHint = flags.string('hint');
  filter.byDownstream = flags.bool('downstream');
  return filter;
}

const PAGE_SIZE = 500;

const showCommand: Command = {
  name: 'show',
  summary: 'Displays configured registration entries',
  flags: serverFlags({ entryID: { kind: 'string', usage: 'The Entry ID of the records to show', arg: 'string' }, ...FILTER_FLAGS }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const entryId = flags.string('entryID');
    if (entryId !== '' && (flags.string('parentID') !== '' || flags.string('spiffeID') !== '' || flags.list('selector').length > 0)) {
      throw new CommandError("the -entryID flag can't be combined with others");
    }
    await withServer(flags.string('socketPath'), async (conn) => {
      const entries: Entry[] = [];
      if (entryId !== '') {
        entries.push(await conn.rpc(() => conn.client(EntryService).getEntry({ id: entryId }), `error fetching entry ID ${entryId}: `));
      } else {
        const filter = buildFilter(flags);
        let pageToken = '';
        for (;;) {
          const resp = await conn.rpc(() => conn.client(EntryService).listEntries({ pageSize: PAGE_SIZE, pageToken, filter }), 'error fetching entries: ');
          entries.push(...resp.entries);
          pageToken = resp.nextPageToken;
          if (pageToken === '') break;
        }
      }
      sortEntries(entries);
      const out = create(ListEntriesResponseSchema, { entries });
      await printProto(env, format, ListEntriesResponseSchema, out, () => {
        env.stdout.write(formatEntryList(entries));
      });
    });
  },
};

const countCommand: Command = {
  name: 'count',
  summary: 'Count registration entries',
  flags: serverFlags({
    ...FILTER_FLAGS,
    parentID: { kind: 'string', usage: 'The Parent ID of the records to count', arg: 'string' },
    spiffeID: { kind: 'string', usage: 'The SPIFFE ID of the records to count', arg: 'string' },
    hint: { kind: 'string', usage: 'The Hint of the records to count (optional)', arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const filter = buildFilter(flags);
    const resp = await callServer(flags, (conn) => conn.client(EntryService).countEntries({ filter }));
    await printProto(env, format, CountEntriesResponseSchema, resp, () => {
      env.stdout.write(formatEntryCount(resp.count));
    });
  },
};

function parseDeleteFile(text: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CommandError(e instanceof Error ? e.message : String(e));
  }
  if (doc === null) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CommandError('json: cannot unmarshal into Go value of type entryv1.BatchDeleteEntryRequest');
  }
  let ids: unknown;
  for (const [k, v] of Object.entries(doc)) if (k.toLowerCase() === 'ids') ids = v;
  if (Object.hasOwn(doc, 'ids')) ids = (doc as Record<string, unknown>)['ids'];
  if (ids === undefined || ids === null) return [];
  if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) {
    throw new CommandError('json: cannot unmarshal into Go struct field BatchDeleteEntryRequest.ids of type string');
  }
  return ids as string[];
}

const deleteCommand: Command = {
  name: 'delete',
  summary: 'Deletes registration entries',
  flags: serverFlags({
    entryID: { kind: 'string', usage: 'The Registration Entry ID of the record to delete.', arg: 'string' },
    file: { kind: 'string', usage: "Path to a file containing a JSON structure for batch deletion (optional). If set to '-', read from stdin.", arg: 'string' },
  }),
  async run(flags, env) {
    const format = outputFormat(flags);
    const file = flags.string('file');
    let ids: string[];
    if (file !== '') {
      ids = parseDeleteFile((await readInput(env, file)).toString('utf8'));
    } else {
      if (flags.string('entryID') === '') throw new CommandError('an entry ID is required');
      ids = [flags.string('entryID')];
    }
    const resp = await callServer(flags, (conn) => conn.client(EntryService).batchDeleteEntry({ ids }));
    await printProto(env, format, BatchDeleteEntryResponseSchema, resp, () => {
      const ok = resp.results.filter((r) => (r.status?.code ?? 0) === 0);
      const failed = resp.results.filter((r) => (r.status?.code ?? 0) !== 0);
      for (const r of ok) env.stdout.write(`Deleted entry with ID: ${r.id}\n`);
      if (ok.length > 0) env.stdout.write('\n\n');
      for (const r of failed) {
        const st = r.status ?? { code: 0, message: '' };
        env.stderr.write(`Failed to delete entry with ID ${r.id} (code: ${grpcCodeName(st.code)}, msg: ${goQuote(st.message)})\n`);
      }
      if (failed.length > 0) {
        env.stdout.write('\n\n');
        throw new CommandError('failed to delete one or more entries');
      }
      env.stdout.write(`Deleted ${ok.length} entries successfully, but failed to delete ${failed.length} entries`);
    });
  },
};

export const entryCommand: Command = {
  name: 'entry',
  summary: 'Manage registration entries',
  subcommands: [countCommand, createCommand, deleteCommand, showCommand, updateCommand],
};
