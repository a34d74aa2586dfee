/**
 * The trace store's open database and what every part of the store shares through it: prepared
 * statements cached by their SQL, transactions that nest, the project-id cache, and the change
 * tokens. The store's modules (runs.ts, ingest.ts, projects.ts ...) are functions of one
 * StoreConnection; TraceStore (../store.ts) owns it.
 *
 *   const conn = new StoreConnection(":memory:");
 *   conn.transaction(() => conn.stmt("DELETE FROM runs WHERE id = ?").run(id));
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ChangeTokens } from "../change-tokens.js";
import { openStoreDatabase } from "./schema.js";

export class StoreConnection {
  readonly db: DatabaseSync;
  /** Project ids by name, so each run written does not look its project up. */
  readonly projectIdsByName = new Map<string, string>();
  readonly changes: ChangeTokens;
  private readonly stmtCache = new Map<string, StatementSync>();

  constructor(dbPath: string) {
    this.db = openStoreDatabase(dbPath);
    this.changes = new ChangeTokens(() => (this.stmt("SELECT total_changes() AS n").get() as { n: number }).n);
  }

  stmt(sql: string): StatementSync {
    let s = this.stmtCache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmtCache.set(sql, s);
    }
    return s;
  }

  /** Run `fn` in one transaction, or inside the one already open. */
  transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      this.db.exec("ROLLBACK");
      // Projects created in the rolled-back transaction are gone; drop their cached ids.
      this.projectIdsByName.clear();
      throw e;
    }
  }
}
