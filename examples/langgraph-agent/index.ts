// What notebook 04 (through tslab, which needs the built dist/) and other code import from this
// example: the launcher, the agents' graphs and the copyable tracing pieces.
export {
  AGENT_SERVER_DIR,
  DEFAULT_PORTS,
  PORT_ENV,
  SERVICE_NAMES,
  URL_ENV,
  agentServerCommand,
  spawnAgentServer,
  spawnService,
  startAgents,
  type AgentServerOptions,
  type RunningAgents,
  type ServiceName,
  type ServiceProcess,
  type SpawnOptions,
  type StartAgentsOptions,
} from "./launch.js";
export { NOTES, buildResearchAgent, researchResult, searchNotes, type Note, type ResearchResult } from "./services/research-agent.js";
export { buildSupervisor, parseRoute, writingRequest, type Route, type SupervisorAgents, type SupervisorState } from "./services/supervisor-graph.js";
export { inheritedConfig } from "./services/run-config.js";
export { WRITING_AGENT_ID, callWritingAgent, serverThreadId, writingAgentClient } from "./services/writing-client.js";
export { researchOverHttp, withTeamReplica, type ResearchOptions } from "./services/research-client.js";
export { BAGGAGE_KEY, TRACE_KEY, continueTrace, forwardTraceHeaders, parentFromConfig, tracingConfigFor, type AgentServerTrust, type ContinueTraceOptions } from "./agent-server/trace-context.js";
export { buildWritingAgent, formatCitations } from "./agent-server/writing-agent.js";
