// @ztwim/operator: the ZTWIM operator (five operator.openshift.io CRs, one identity plane).
export * from './api/kinds.ts';
export * from './api/schema.ts';
export * from './api/crd.ts';
export * from './api/normalize.ts';
export * from './validate/schema-check.ts';
export * from './validate/validate.ts';
export * from './render/hcl.ts';
export * from './render/context.ts';
export * from './render/configs.ts';
export * from './render/objects-common.ts';
export * from './render/server-objects.ts';
export * from './render/agent-objects.ts';
export * from './render/csi-objects.ts';
export * from './render/oidc-objects.ts';
export * from './render/operands.ts';
export { createOperatorClient, startOperator, operandRenderer, renderContextFor, LEASE_NAME } from './controller/operator.ts';
export type { RunningOperator, StartOperatorOptions } from './controller/operator.ts';
