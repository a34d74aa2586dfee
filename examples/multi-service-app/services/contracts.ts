// What the services send each other, checked where it is received: a service
// that answers with the wrong shape is named in a clear error (and in the
// trace) instead of surfacing as a TypeError two services later. A request that
// breaks the contract is refused with an InvalidRequest (400).
import { z } from "zod";

// Loose objects: fields a receiver does not use pass through untouched rather than being dropped.
export const RetrievedDocumentSchema = z.looseObject({
  type: z.literal("Document").optional(),
  page_content: z.string(),
  metadata: z.looseObject({ id: z.string().min(1), title: z.string(), score: z.number().optional() }),
});
/** `{ page_content, metadata }`: the shape LangSmith renders as a document. */
export type RetrievedDocument = z.infer<typeof RetrievedDocumentSchema>;

/** retrieval: POST /search answers this. */
export const SearchResponseSchema = z.object({ documents: z.array(RetrievedDocumentSchema) });

/** llm: POST /generate takes this. */
export const GenerateRequestSchema = z.object({ message: z.string(), documents: z.array(RetrievedDocumentSchema).default([]) });

/** llm: POST /generate answers this. */
export const GenerateResponseSchema = z.object({ answer: z.string(), model: z.string() });

/** orchestrator: POST /answer answers this. */
export const AnswerResponseSchema = z.object({
  answer: z.string(),
  sources: z.array(z.object({ id: z.string(), title: z.string() })),
  model: z.string(),
});
export type Answer = z.infer<typeof AnswerResponseSchema>;

/** A request a service refuses because it breaks the contract (400); jsonErrors answers it. */
export class InvalidRequest extends Error {
  readonly status = 400;
  readonly expose = true;

  constructor(message: string) {
    super(message);
    this.name = "InvalidRequest";
  }
}

/** `documents[1].metadata.title: Invalid input: expected string, received undefined`, for the first few issues. */
export function describeIssues(error: z.ZodError, shown = 3): string {
  const lines = error.issues.slice(0, shown).map((issue) => `${z.core.toDotPath(issue.path) || "(body)"}: ${issue.message}`);
  const more = error.issues.length - lines.length;
  return more > 0 ? `${lines.join("; ")}; and ${more} more` : lines.join("; ");
}
