// Names, default ports and the variables that move them. Shared by the services
// and the launcher (which the notebooks import, so this file imports nothing).
export const SERVICE_NAMES = ["gateway", "orchestrator", "retrieval", "llm"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];
export type DownstreamService = Exclude<ServiceName, "gateway">;

export const DEFAULT_PORTS: Readonly<Record<ServiceName, number>> = { gateway: 3000, orchestrator: 3001, retrieval: 3002, llm: 3003 };
/** Each service's port variable; 0 means any free port. */
export const PORT_ENV: Readonly<Record<ServiceName, string>> = {
  gateway: "GATEWAY_PORT",
  orchestrator: "ORCHESTRATOR_PORT",
  retrieval: "RETRIEVAL_PORT",
  llm: "LLM_PORT",
};
/** Where a caller finds a service. */
export const URL_ENV: Readonly<Record<DownstreamService, string>> = {
  orchestrator: "ORCHESTRATOR_URL",
  retrieval: "RETRIEVAL_URL",
  llm: "LLM_URL",
};
