/**
 * The trace store's SQLite schema and how a database file is opened: the tables and indexes, the
 * schema version a file must carry, the pragmas, and the SQL functions queries call.
 *
 *   const db = openStoreDatabase(".data/traces.sqlite");   // or ":memory:"
 *
 * A file written by another schema version is refused with a message saying what to do, rather
 * than read wrongly: the store holds local, disposable traces. The only migrations are index
 * changes, which SCHEMA applies to any file as it opens.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { RUN_COLUMNS } from "./rows.js";

export function openStoreDatabase(dbPath: string): DatabaseSync {
  if (dbPath !== ":memory:") mkdirSync(dirname(dbPath), { recursive: true });
  const db = new DatabaseSync(dbPath);
  db.exec("PRAGMA busy_timeout = 5000");
  if (dbPath !== ":memory:") {
    db.exec("PRAGMA journal_mode = WAL");
    // WAL + NORMAL survives a crashed process; only a power cut can lose the last transactions.
    db.exec("PRAGMA synchronous = NORMAL");
  }
  const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  const hasTables = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get() !== undefined;
  if (hasTables && version !== SCHEMA_VERSION) {
    db.close();
    throw new Error(`${dbPath} was written by another version of the trace server (schema ${version}, expected ${SCHEMA_VERSION}); move it away or delete it`);
  }
  db.exec(SCHEMA);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  // listTraces' root-name filter folds case as JavaScript does; SQLite's lower() and LIKE fold ASCII only.
  db.function("js_lower_includes", { deterministic: true }, (text, lowerNeedle) =>
    typeof text === "string" && typeof lowerNeedle === "string" && text.toLowerCase().includes(lowerNeedle) ? 1 : 0,
  );
  return db;
}

/** Bump when the schema changes incompatibly; older files are refused with a clear message. */
export const SCHEMA_VERSION = 1;

/** Tables the store clears (TraceStore.clear), every one it creates. */
export const STORE_TABLES = ["runs", "projects", "rejections", "attachments", "feedback", "shares"] as const;

/** Insert a run row, or replace every column of the stored one but its id and first arrival. */
export const UPSERT_RUN_SQL = `INSERT INTO runs (${RUN_COLUMNS.join(", ")}) VALUES (${RUN_COLUMNS.map(() => "?").join(", ")})
      ON CONFLICT(id) DO UPDATE SET ${RUN_COLUMNS.filter((c) => c !== "id" && c !== "received_at")
        .map((c) => `${c} = excluded.${c}`)
        .join(", ")}`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  description TEXT,
  extra TEXT,
  start_time TEXT NOT NULL,
  end_time TEXT,
  reference_dataset_id TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL,
  dotted_order TEXT NOT NULL,
  parent_run_id TEXT,
  project_id TEXT NOT NULL,
  project_explicit INTEGER NOT NULL DEFAULT 1,
  name TEXT,
  run_type TEXT,
  start_time TEXT NOT NULL,
  end_time TEXT,
  error TEXT,
  inputs TEXT,
  outputs TEXT,
  extra TEXT,
  events TEXT,
  tags TEXT,
  serialized TEXT,
  reference_example_id TEXT,
  address TEXT,
  service TEXT,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  total_tokens INTEGER,
  first_token_time TEXT,
  has_post INTEGER NOT NULL DEFAULT 0,
  has_patch INTEGER NOT NULL DEFAULT 0,
  source TEXT,
  received_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_trace ON runs (trace_id, dotted_order);
-- With id, a project's runs come in the order queries page them (start_time, id), so no query
-- sorts a whole project for each page. Files from before it have the narrower index; it goes.
DROP INDEX IF EXISTS runs_project_start;
CREATE INDEX IF NOT EXISTS runs_project_start_id ON runs (project_id, start_time, id);
CREATE INDEX IF NOT EXISTS runs_start ON runs (start_time, id);
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id);
CREATE TABLE IF NOT EXISTS rejections (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT NOT NULL,
  route TEXT NOT NULL,
  op TEXT,
  run_id TEXT,
  trace_id TEXT,
  rule TEXT NOT NULL,
  message TEXT NOT NULL,
  payload TEXT
);
CREATE INDEX IF NOT EXISTS rejections_trace ON rejections (trace_id);
CREATE INDEX IF NOT EXISTS rejections_run ON rejections (run_id);
CREATE TABLE IF NOT EXISTS attachments (
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS feedback (
  id TEXT PRIMARY KEY,
  run_id TEXT,
  trace_id TEXT,
  key TEXT,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_run ON feedback (run_id);
CREATE TABLE IF NOT EXISTS shares (
  token TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`;
