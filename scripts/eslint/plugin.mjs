// ztwim's own lint rules (the conventions docs/DEVELOPING.md writes down that no stock rule
// holds). Loaded by eslint.config.js as the `ztwim` plugin.
import { readFileSync } from 'node:fs';

/** @type {import('eslint').Rule.RuleModule} */
const noBareError = {
  meta: {
    type: 'problem',
    docs: { description: 'package sources throw the typed errors of @ztwim/core, not a bare Error' },
    schema: [],
    messages: {
      bare: 'bare Error: use a typed error from @ztwim/core (ZtwimError, invalidArgument, internal, unavailable, ..., or asError(e) to normalise a caught value)',
    },
  },
  create(context) {
    const check = (node) => {
      if (node.callee.type === 'Identifier' && node.callee.name === 'Error') context.report({ node, messageId: 'bare' });
    };
    return { NewExpression: check, CallExpression: check };
  },
};

/** @type {import('eslint').Rule.RuleModule} */
const hashPrivate = {
  meta: {
    type: 'suggestion',
    docs: { description: 'private class members use #name (ECMAScript private), not the TypeScript `private` keyword' },
    schema: [],
    messages: { keyword: 'use a #private member instead of the `private` keyword' },
  },
  create(context) {
    const check = (node) => {
      // A private constructor has no #private form (a static factory's class keeps it).
      if (node.type === 'MethodDefinition' && node.kind === 'constructor') return;
      if (node.accessibility === 'private') context.report({ node: node.key ?? node, messageId: 'keyword' });
    };
    return {
      PropertyDefinition: check,
      MethodDefinition: check,
      AccessorProperty: check,
      TSParameterProperty: check,
      TSAbstractPropertyDefinition: check,
      TSAbstractMethodDefinition: check,
    };
  },
};

const NAMES_FILE = new URL('../../packages/core/src/telemetry/names.ts', import.meta.url);
let logFields;
/** The names of LOG_FIELDS in @ztwim/core's table (read from its source: eslint does not load TypeScript). */
function tableNames() {
  if (logFields === undefined) {
    const src = readFileSync(NAMES_FILE, 'utf8');
    const body = /LOG_FIELDS = \[([\s\S]*?)\] as const/.exec(src)?.[1];
    if (body === undefined) throw new Error(`ztwim/log-field-names: no LOG_FIELDS array in ${NAMES_FILE.pathname}`);
    logFields = new Set([...body.matchAll(/^\s*'([^']+)',/gm)].map((m) => m[1]));
  }
  return logFields;
}

const LOG_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'child']);

/** @type {import('eslint').Rule.RuleModule} */
const logFieldNames = {
  meta: {
    type: 'problem',
    docs: { description: "log fields are named from @ztwim/core's table (packages/core/src/telemetry/names.ts)" },
    schema: [],
    messages: {
      unknown: 'log field "{{name}}" is not in LOG_FIELDS (packages/core/src/telemetry/names.ts): use a name of the table or add it there (snake_case)',
    },
  },
  create(context) {
    return {
      CallExpression(node) {
        const callee = node.callee;
        if (callee.type !== 'MemberExpression' || callee.computed || callee.property.type !== 'Identifier' || !LOG_METHODS.has(callee.property.name)) return;
        const fields = node.arguments[0];
        if (fields?.type !== 'ObjectExpression') return;
        for (const p of fields.properties) {
          if (p.type !== 'Property' || p.computed) continue;
          const name = p.key.type === 'Identifier' ? p.key.name : p.key.type === 'Literal' ? String(p.key.value) : undefined;
          if (name !== undefined && !tableNames().has(name)) context.report({ node: p.key, messageId: 'unknown', data: { name } });
        }
      },
    };
  },
};

/** @ztwim/core's typed-error helpers: the message is their first argument. */
const ERROR_HELPERS = new Set([
  'invalidArgument',
  'notFound',
  'alreadyExists',
  'permissionDenied',
  'failedPrecondition',
  'internal',
  'unavailable',
  'configError',
]);
/** Typed-error classes taking (code, message): @ztwim/core's and the SDK's. */
const ERROR_CLASSES = new Set(['ZtwimError', 'SpiffeError']);

/** The message argument of a typed-error construction, or undefined when `node` is none. */
function errorMessageArg(node) {
  const c = node.callee;
  if (node.type === 'NewExpression' && c.type === 'Identifier' && ERROR_CLASSES.has(c.name)) return node.arguments[1];
  if (node.type === 'CallExpression' && c.type === 'Identifier' && ERROR_HELPERS.has(c.name)) return node.arguments[0];
  return undefined;
}

/** @type {import('eslint').Rule.RuleModule} */
const errorMessageStyle = {
  meta: {
    type: 'suggestion',
    docs: { description: 'typed error messages start lowercase and have no trailing period (docs/DEVELOPING.md)' },
    schema: [],
    messages: {
      capital: 'error message starts with the capitalised word "{{word}}": messages are lowercase (an acronym or identifier may lead)',
      period: 'error message ends with a period: messages have none',
    },
  },
  create(context) {
    const check = (node) => {
      const msg = errorMessageArg(node);
      if (msg === undefined) return;
      // Only the literal text is checked: the head (before any ${...}) and the tail (after the last).
      let head;
      let tail;
      if (msg.type === 'Literal' && typeof msg.value === 'string') head = tail = msg.value;
      else if (msg.type === 'TemplateLiteral') {
        head = msg.quasis[0]?.value.cooked ?? '';
        tail = msg.quasis[msg.quasis.length - 1]?.value.cooked ?? '';
      } else return;
      // A capitalised word ("Cannot", "Invalid"); acronyms (JWT, SVID) and identifiers (TokenReview, X509) may lead.
      const word = /^([A-Z][a-z]+)(?=[\s:,]|$)/.exec(head)?.[1];
      if (word !== undefined) context.report({ node: msg, messageId: 'capital', data: { word } });
      if (/[^.]\.$/.test(tail) || tail === '.') context.report({ node: msg, messageId: 'period' });
    };
    return { NewExpression: check, CallExpression: check };
  },
};

/** The literal text at the start and at the end of a string or template literal, or undefined for any other expression. */
function literalEnds(node) {
  if (node?.type === 'Literal' && typeof node.value === 'string') return { head: node.value, tail: node.value };
  if (node?.type === 'TemplateLiteral') return { head: node.quasis[0]?.value.cooked ?? '', tail: node.quasis[node.quasis.length - 1]?.value.cooked ?? '' };
  return undefined;
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** @type {import('eslint').Rule.RuleModule} */
const logMessageStyle = {
  meta: {
    type: 'suggestion',
    docs: { description: "log messages start with a capital letter and have no trailing period, as SPIRE's (docs/DEVELOPING.md)" },
    fixable: 'code',
    schema: [],
    messages: {
      lower: 'log message starts lowercase ("{{start}}"): log messages are capitalised, as SPIRE\'s ("Server started", "Failed to rotate the server SVID")',
      period: 'log message ends with a period: log messages have none',
    },
  },
  create(context) {
    return {
      CallExpression(node) {
        const callee = node.callee;
        if (callee.type !== 'MemberExpression' || callee.computed || callee.property.type !== 'Identifier' || !LOG_LEVELS.has(callee.property.name)) return;
        // A logger: `log`, `logger`, `this.#log`, `opts.log`, `this.#o.logger`... (console.* and other
        // objects with an error() or warn() method, such as a parser's or a config reader's, are not).
        const recv =
          callee.object.type === 'Identifier' ? callee.object.name : callee.object.type === 'MemberExpression' ? callee.object.property.name : undefined;
        if (recv === undefined || !/(^|[a-z])(log|logger|Log|Logger)$/.test(recv)) return;
        // pino's shapes: log.info('message') and log.info({ fields }, 'message').
        const [first, second] = node.arguments;
        const isText = (n) => literalEnds(n) !== undefined || n?.type === 'ConditionalExpression';
        const arg = isText(first) ? first : first?.type === 'ObjectExpression' ? second : undefined;
        // A message chosen by a condition: both branches are checked.
        for (const text of arg?.type === 'ConditionalExpression' ? [arg.consequent, arg.alternate] : [arg]) {
          const msg = literalEnds(text);
          if (msg === undefined) continue;
          // A subsystem prefix may lead ("k8s: ", "console: "); the message after it is capitalised.
          // A lowercase first word with a capital in it is an identifier (`onStartedLeading failed`).
          const prefix = /^[a-z][\w-]*: /.exec(msg.head)?.[0] ?? '';
          const m = /^[a-z][^\sA-Z]*(?=\s|$)/.exec(msg.head.slice(prefix.length));
          if (m !== null) {
            // The fix upper-cases that letter: the head starts one character (a quote or backtick) into the literal.
            const at = (text.type === 'TemplateLiteral' ? text.quasis[0].range[0] : text.range[0]) + 1 + prefix.length;
            context.report({
              node: text,
              messageId: 'lower',
              data: { start: m[0] },
              fix: (fixer) => fixer.replaceTextRange([at, at + 1], m[0][0].toUpperCase()),
            });
          }
          if (/[^.]\.$/.test(msg.tail) || msg.tail === '.') context.report({ node: text, messageId: 'period' });
        }
      },
    };
  },
};

export default {
  meta: { name: 'ztwim' },
  rules: {
    'no-bare-error': noBareError,
    'hash-private': hashPrivate,
    'log-field-names': logFieldNames,
    'error-message-style': errorMessageStyle,
    'log-message-style': logMessageStyle,
  },
};
