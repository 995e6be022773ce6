// @ztwim/operator: the ZTWIM operator (five operator.openshift.io CRs, one identity plane). Modules land here.
export {};
