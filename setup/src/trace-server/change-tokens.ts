/**
 * Change tokens for the trace store: a short string that differs whenever what the store holds
 * for one trace (its runs, rejections and their feedback), or for the whole store, may have
 * changed. The viewer's live-update polls compare tokens, so an unchanged trace costs one SQLite
 * call however big it is.
 *
 *   const changes = new ChangeTokens(() => totalChangesOfTheConnection);
 *   changes.noteUnattributed(); ...write...; changes.attribute(["<trace id>"]);
 *   changes.token("<trace id>");   // or changes.token() for the whole store
 *
 * Writes the store attributes to traces change only those traces' tokens. Any other write
 * (projects, SQL run on the database directly) changes every token: SQLite's total_changes()
 * counts it, and a count the store did not attribute means "anything may have changed".
 */
import { randomUUID } from "node:crypto";

export class ChangeTokens {
  /** Tokens of one store object never match another's, such as the one before a restart. */
  private readonly instance = randomUUID().slice(0, 8);
  private seq = 0;
  /** The last change not attributed to particular traces. */
  private everythingSeq = 0;
  private everythingPending = false;
  /** totalChanges() as of the last change attributed. */
  private accounted = 0;
  private readonly traceSeq = new Map<string, number>();

  constructor(private readonly totalChanges: () => number) {}

  token(traceId?: string): string {
    this.noteUnattributed();
    const seq = traceId === undefined ? this.seq : Math.max(this.everythingSeq, this.traceSeq.get(traceId.toLowerCase()) ?? 0);
    return `${this.instance}.${seq}`;
  }

  /** Call before a write the store will attribute, so changes made since are not taken for it. */
  noteUnattributed(): void {
    const total = this.totalChanges();
    if (total === this.accounted) return;
    this.seq += 1;
    this.everythingSeq = this.seq;
    this.accounted = total;
  }

  /** The write in progress changes what every trace shows (old rejections pruned, say). */
  changedEverything(): void {
    this.everythingPending = true;
  }

  /** Call after a write: its changes were to these traces. */
  attribute(traceIds: Iterable<string>): void {
    this.seq += 1;
    for (const id of traceIds) this.traceSeq.set(id, this.seq);
    if (this.everythingPending) this.everythingSeq = this.seq;
    this.everythingPending = false;
    this.accounted = this.totalChanges();
  }
}
