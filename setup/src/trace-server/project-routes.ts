/**
 * The project routes (LangSmith's "sessions"): `GET /sessions` (by id, name, name_contains or
 * metadata, optionally with stats), `GET /sessions/{id}`, `POST /sessions[?upsert=true]`,
 * `PATCH /sessions/{id}` and `DELETE /sessions/{id}`, as the SDK's listProjects, readProject,
 * createProject, updateProject and deleteProject call them.
 * Mount inside the API router: `api.use(createProjectRouter(store, { requireApiKey, maxBodyBytes, maxStoreBytes }))`.
 */
import express, { type RequestHandler, type Router } from "express";
import { HttpError, readJson } from "./body.js";
import { queryInt, queryList, queryString, requireUuidParam } from "./params.js";
import { refuseDeep, refuseLong, storeQuota } from "./request-checks.js";
import type { ProjectFilter, ProjectPatch, TraceStore } from "./store.js";
import { normalizeTime } from "./time.js";
import type { JsonObject } from "./types.js";
import { isJsonObject } from "./wire.js";

export function createProjectRouter(store: TraceStore, opts: { requireApiKey: RequestHandler; maxBodyBytes: number; maxStoreBytes: number | undefined }): Router {
  const { requireApiKey, maxBodyBytes } = opts;
  const api = express.Router();

  const projectWithStats = (id: string, includeStats: boolean): JsonObject | undefined => {
    const project = store.getProject(id);
    if (!project) return undefined;
    return includeStats ? { ...project, ...store.projectStats(id) } : (project as unknown as JsonObject);
  };

  api.get("/sessions", requireApiKey, (req, res) => {
    const includeStats = queryString(req.query, "include_stats") === "true";
    const ids = queryList(req.query, "id");
    for (const id of ids) requireUuidParam(id, "id");
    const filter: ProjectFilter = {
      limit: Math.min(queryInt(req.query, "limit", 100), 100),
      offset: queryInt(req.query, "offset", 0),
    };
    if (ids.length) filter.ids = ids.map((i) => i.toLowerCase());
    const name = queryString(req.query, "name");
    if (name !== undefined) filter.name = name;
    const nameContains = queryString(req.query, "name_contains");
    if (nameContains !== undefined) filter.nameContains = nameContains;
    const metadata = queryString(req.query, "metadata");
    if (metadata !== undefined) filter.metadata = parseMetadataParam(metadata);
    res.json(store.listProjects(filter).map((p) => (includeStats ? { ...p, ...store.projectStats(p.id) } : p)));
  });

  api.get("/sessions/:projectId", requireApiKey, (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    const project = projectWithStats(id, queryString(req.query, "include_stats") === "true");
    if (!project) throw new HttpError(404, `project ${id} not found`);
    res.json(project);
  });

  api.post("/sessions", requireApiKey, storeQuota(store, opts.maxStoreBytes), async (req, res) => {
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value) || typeof value.name !== "string" || value.name === "") throw new HttpError(422, "name is required");
    refuseLong(value.name, "name");
    refuseDeep(value, "project");
    const project = store.createProject({
      name: value.name,
      description: typeof value.description === "string" ? value.description : null,
      extra: isJsonObject(value.extra) ? value.extra : null,
      upsert: queryString(req.query, "upsert") === "true",
    });
    res.json(project);
  });

  api.patch("/sessions/:projectId", requireApiKey, async (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    const { value } = await readJson(req, maxBodyBytes);
    if (!isJsonObject(value)) throw new HttpError(422, "the update must be a JSON object");
    refuseDeep(value, "project update");
    const endTime = value.end_time === null || value.end_time === undefined ? value.end_time : normalizeTime(value.end_time);
    if (endTime === undefined && value.end_time !== undefined) throw new HttpError(422, "end_time must be an ISO time");
    const patch: ProjectPatch = {};
    if (typeof value.name === "string") patch.name = refuseLong(value.name, "name");
    if (typeof value.description === "string" || value.description === null) patch.description = value.description;
    if (isJsonObject(value.extra)) patch.extra = value.extra;
    if (endTime !== undefined) patch.end_time = endTime;
    const project = store.updateProject(id, patch);
    if (!project) throw new HttpError(404, `project ${id} not found`);
    res.json(project);
  });

  api.delete("/sessions/:projectId", requireApiKey, (req, res) => {
    const id = requireUuidParam(req.params.projectId, "project id");
    if (!store.deleteProject(id)) throw new HttpError(404, `project ${id} not found`);
    res.status(202).json({ message: "deleted" });
  });

  return api;
}

/** `listProjects({ metadata })` sends the wanted metadata as JSON text. */
function parseMetadataParam(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(422, `metadata must be a JSON object, got ${JSON.stringify(text)}`);
  }
  if (!isJsonObject(value)) throw new HttpError(422, `metadata must be a JSON object, got ${JSON.stringify(text)}`);
  return value;
}
