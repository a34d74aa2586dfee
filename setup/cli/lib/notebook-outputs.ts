// `npm run notebooks:outputs`: the committed notebooks carry the outputs of a real run, so a reader
// browsing the repository sees what each pattern produces. This copies the outputs of an executed
// notebook into its source notebook (sources, cell ids and notebook metadata stay as committed),
// cleaned for reading: no ANSI escapes, no execution timestamps, paths inside the repository made
// relative. It refuses to save outputs that still hold a secret or an absolute path of this machine.
import { readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";

interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  [key: string]: unknown;
}

interface Cell {
  cell_type: string;
  id?: string;
  source: string | string[];
  metadata?: Record<string, unknown>;
  outputs?: Output[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: Cell[];
  [key: string]: unknown;
}

export interface OutputContext {
  /** The repository root: `<root>/x` in an output becomes `x`. */
  root: string;
  /** Secret values that must not appear (API keys from the environment); empty ones are ignored. */
  secrets: string[];
  /** Absolute paths of this machine that must not appear (home, temp). */
  privatePaths: string[];
  /**
   * Origins to show as others: the run's own stack listens on free ports, shown as the default
   * ports a reader's `npm start` uses, so outputs do not change with the port a run happened to get.
   */
  origins?: Record<string, string>;
}

export interface SaveResult {
  saved: boolean;
  bytes: number;
  /** Why the outputs were not saved: `cell <n>: ...`. */
  findings: string[];
}

/** The context for this machine: the repository root, the API keys in the environment, home and temp. */
export function machineContext(root: string, env: NodeJS.ProcessEnv = process.env, origins: Record<string, string> = {}): OutputContext {
  const secrets = [env.LANGSMITH_API_KEY, env.LANGCHAIN_API_KEY, env.OPENAI_API_KEY].filter((v): v is string => !!v && v !== "local");
  const privatePaths = [homedir(), tmpdir()].filter((p) => p.length > 1).map((p) => p.replace(/\/+$/, "") + "/");
  return { root: root.replace(/\/+$/, ""), secrets, privatePaths, origins };
}

/** Writes the executed notebook's outputs into the source notebook, unless a check finds something. */
export function saveOutputs(sourcePath: string, executedPath: string, context: OutputContext): SaveResult {
  const source = JSON.parse(readFileSync(sourcePath, "utf8")) as Notebook;
  const executed = JSON.parse(readFileSync(executedPath, "utf8")) as Notebook;
  const { notebook, findings } = withOutputs(source, executed, context);
  if (findings.length > 0) return { saved: false, bytes: 0, findings };
  const text = JSON.stringify(notebook, null, 1) + "\n";
  writeFileSync(sourcePath, text);
  return { saved: true, bytes: Buffer.byteLength(text), findings };
}

/** The source notebook with the executed one's outputs, cleaned, and what the checks found in them. */
export function withOutputs(source: Notebook, executed: Notebook, context: OutputContext): { notebook: Notebook; findings: string[] } {
  const findings: string[] = [];
  if (executed.cells.length !== source.cells.length) {
    return { notebook: source, findings: [`the executed notebook has ${executed.cells.length} cells, the source ${source.cells.length}`] };
  }
  const cells = source.cells.map((cell, index) => {
    const ran = executed.cells[index];
    if (!ran || ran.id !== cell.id || text(ran.source) !== text(cell.source)) {
      findings.push(`cell ${index}: differs between the source and the executed notebook`);
      return cell;
    }
    if (cell.cell_type !== "code") return cell;
    const outputs = mergeStreams((ran.outputs ?? []).map((o) => cleanOutput(o, context)));
    for (const problem of scan(JSON.stringify(outputs), context)) findings.push(`cell ${index}: ${problem}`);
    const metadata = { ...(cell.metadata ?? {}) };
    delete metadata.execution;
    return { ...cell, metadata, execution_count: ran.execution_count ?? null, outputs };
  });
  return { notebook: { ...source, cells }, findings };
}

// CSI sequences (colours, cursor moves) and OSC sequences (titles, hyperlinks): matching them is
// matching control characters.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g;

function text(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join("") : (value ?? "");
}

/** Splits like nbformat does: every line keeps its newline. */
function lines(value: string): string[] {
  return value.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function cleanText(value: string, context: OutputContext): string {
  let text = value.replace(ANSI, "").split(`${context.root}/`).join("");
  for (const [from, to] of Object.entries(context.origins ?? {})) text = text.split(from).join(to);
  return text;
}

function cleanOutput(output: Output, context: OutputContext): Output {
  const out: Output = { ...output };
  if (output.text !== undefined) out.text = lines(cleanText(text(output.text), context));
  if (output.data) {
    out.data = Object.fromEntries(
      Object.entries(output.data).map(([mime, value]) =>
        typeof value === "string" || Array.isArray(value) ? [mime, lines(cleanText(text(value as string | string[]), context))] : [mime, value],
      ),
    );
  }
  if (Array.isArray(output.traceback)) out.traceback = (output.traceback as string[]).map((l) => cleanText(l, context));
  return out;
}

/** tslab sends one stream message per console.log; the notebook UI shows them as one block, and so does this. */
function mergeStreams(outputs: Output[]): Output[] {
  const merged: Output[] = [];
  for (const output of outputs) {
    const last = merged.at(-1);
    if (last && output.output_type === "stream" && last.output_type === "stream" && last.name === output.name) {
      last.text = lines(text(last.text) + text(output.text));
    } else merged.push({ ...output });
  }
  return merged;
}

/** Secrets and machine paths still present in a cell's serialised outputs. */
function scan(serialised: string, context: OutputContext): string[] {
  const problems: string[] = [];
  for (const secret of context.secrets) if (serialised.includes(secret)) problems.push("an API key from the environment");
  if (/lsv2_[a-z]{2}_[0-9a-f]{20,}/.test(serialised)) problems.push("a LangSmith API key (lsv2_...)");
  if (/\bsk-[A-Za-z0-9_-]{20,}/.test(serialised)) problems.push("an OpenAI-style API key (sk-...)");
  if (serialised.includes(context.root)) problems.push(`the repository's absolute path ${context.root}`);
  for (const path of context.privatePaths) if (serialised.includes(path)) problems.push(`an absolute path under ${path}`);
  return problems;
}
