export { Template, parseTemplate, renderSpiffeId } from './template.ts';
export type { TemplateData, RenderOptions } from './template.ts';
export { templateDataFor, objectMetaToGo, jsonToGo, goFieldName } from './template-data.ts';
export type { TemplateContext, KubeObjectJson } from './template-data.ts';
export { GoFloat, GoMap, GoStruct, NO_VALUE, goStruct, goStringMap, printGoValue } from './values.ts';
export type { GoValue, NoValue } from './values.ts';
export { goSprintf } from './printf.ts';
