// @ztwim/registrar: the workload registrar (spire-controller-manager's job). Modules land here.
export {};
