// @ztwim/operator: the ZTWIM operator (five operator.openshift.io CRs, one identity plane).
export * from './api/kinds.ts';
export * from './api/schema.ts';
export * from './api/crd.ts';
export * from './api/normalize.ts';
