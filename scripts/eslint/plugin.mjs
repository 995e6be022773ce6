// ztwim's own lint rules (the conventions docs/DEVELOPING.md writes down that no stock rule
// holds). Loaded by eslint.config.js as the `ztwim` plugin.

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

export default {
  meta: { name: 'ztwim' },
  rules: { 'no-bare-error': noBareError, 'hash-private': hashPrivate },
};
