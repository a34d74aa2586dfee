/**
 * The one builder for the WHERE (or HAVING) clause of every store query filtered by optional
 * criteria. Each condition carries its own parameters, so the SQL text and the parameter order
 * cannot drift apart, and an unset criterion is left out by the same rule everywhere.
 *
 *   const where = new Where()
 *     .add("trace_id = ?", q.traceId)           // left out while q.traceId is undefined
 *     .inList("id", q.runIds)                   // left out while the list is empty
 *     .when(q.isRoot === true, "parent_run_id IS NULL");
 *   db.prepare(`SELECT * FROM runs ${where.sql()} ORDER BY start_time`).all(...where.params);
 */
import type { SQLInputValue } from "node:sqlite";

export class Where {
  private readonly clauses: string[] = [];
  private readonly values: SQLInputValue[] = [];

  /** `clause` with one parameter per `?`; left out when a parameter is undefined (a criterion not given). */
  add(clause: string, ...params: ReadonlyArray<SQLInputValue | undefined>): this {
    if (params.some((p) => p === undefined)) return this;
    this.clauses.push(clause);
    this.values.push(...(params as SQLInputValue[]));
    return this;
  }

  /** `clause`, with its parameters, only when `condition` holds. */
  when(condition: boolean, clause: string, ...params: SQLInputValue[]): this {
    return condition ? this.add(clause, ...params) : this;
  }

  /**
   * `column IN (values)` as one parameter however long the list, since SQLite refuses a statement
   * with more than 32,766. One value is `column = ?`, which lets an index on the column also give
   * the order (an IN list makes SQLite sort). Left out when the list is empty or not given.
   */
  inList(column: string, values: readonly string[] | undefined): this {
    if (values?.length === 1) return this.add(`${column} = ?`, values[0]);
    return values?.length ? this.add(`${column} IN (SELECT value FROM json_each(?))`, JSON.stringify(values)) : this;
  }

  /** `WHERE a AND b` (or `HAVING ...`), or "" without conditions. */
  sql(keyword: "WHERE" | "HAVING" = "WHERE"): string {
    return this.clauses.length ? `${keyword} ${this.clauses.join(" AND ")}` : "";
  }

  /** The parameters of every condition, in clause order. */
  get params(): readonly SQLInputValue[] {
    return this.values;
  }
}
