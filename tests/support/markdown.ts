// Just enough of CommonMark for the docs test: fenced code blocks (with the HTML comment right above
// each, which carries excerpt directives), HTML comments, ATX headings and GitHub's heading slugs,
// inline code spans, and links (inline, reference definitions, autolinks), each with its line number.
//
//   const md = parseMarkdown(text);
//   md.links        // [{ target: "../setup/src/flush.ts", line: 42 }, ...]
//   const slug = slugger(); slug("## Queue hop (BullMQ)")   // GitHub's id, "-1", "-2" on repeats
//
// Links and code spans are read per paragraph, so a code span may wrap a line, and a link written
// inside a code span is not a link.

export interface Located {
  text: string;
  line: number;
}

export interface Fence {
  /** Language from the info string, lower-case ("" when none). */
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The block's lines, without the fence's own indentation. */
  lines: string[];
  /** The HTML comment that ends on the last non-blank line before the fence, if any. */
  comment?: Located;
}

export interface ParsedMarkdown {
  headings: Located[];
  /** Ids from `<a id="...">` / `<a name="...">`. */
  htmlAnchors: string[];
  links: { target: string; line: number }[];
  codeSpans: Located[];
  proseLines: Located[];
  fences: Fence[];
}

export function parseMarkdown(source: string): ParsedMarkdown {
  const lines = source.split(/\r?\n/);
  const result: ParsedMarkdown = { headings: [], htmlAnchors: [], links: [], codeSpans: [], proseLines: [], fences: [] };
  let paragraph: Located[] = [];
  let lastComment: { located: Located; endLine: number } | undefined;
  let lastNonBlank = 0;
  const endParagraph = (): void => {
    if (paragraph.length > 0) readInline(paragraph, result);
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] ?? "";
    const line = i + 1;
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)/.exec(text);
    if (open) {
      endParagraph();
      const indent = open[1]?.length ?? 0;
      const marker = open[2] ?? "```";
      const fence: Fence = { lang: (open[3] ?? "").toLowerCase(), line, lines: [] };
      if (lastComment && lastComment.endLine === lastNonBlank) fence.comment = lastComment.located;
      const close = new RegExp(`^\\s*${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`);
      for (i++; i < lines.length && !close.test(lines[i] ?? ""); i++) {
        const body = lines[i] ?? "";
        fence.lines.push(body.slice(Math.min(indent, body.length - body.trimStart().length)));
      }
      result.fences.push(fence);
      lastNonBlank = i + 1;
      continue;
    }
    if (text.trimStart().startsWith("<!--")) {
      endParagraph();
      const body: string[] = [];
      let j = i;
      for (; j < lines.length; j++) {
        body.push(lines[j] ?? "");
        if ((lines[j] ?? "").includes("-->")) break;
      }
      const joined = body.join("\n");
      const inner = joined.slice(joined.indexOf("<!--") + 4, joined.lastIndexOf("-->") === -1 ? undefined : joined.lastIndexOf("-->"));
      lastComment = { located: { text: inner, line }, endLine: j + 1 };
      i = j;
      lastNonBlank = j + 1;
      continue;
    }
    if (text.trim() === "") {
      endParagraph();
      continue;
    }
    lastNonBlank = line;
    result.proseLines.push({ text, line });
    for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) if (m[1]) result.htmlAnchors.push(m[1]);
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text);
    if (heading) {
      endParagraph();
      result.headings.push({ text: heading[1] ?? "", line });
      readInline([{ text: heading[1] ?? "", line }], result);
      continue;
    }
    paragraph.push({ text, line });
  }
  endParagraph();
  return result;
}

/** GitHub's heading ids (github-slugger): lower-case, punctuation dropped, spaces to hyphens, repeats -1, -2. */
export function slugger(): (heading: string) => string {
  const seen = new Map<string, number>();
  return (heading) => {
    const base = heading.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
    let slug = base;
    while (seen.has(slug)) {
      const count = (seen.get(base) ?? 0) + 1;
      seen.set(base, count);
      slug = `${base}-${count}`;
    }
    seen.set(slug, 0);
    return slug;
  };
}

/** The text GitHub renders for heading markup: links and images become their text, HTML tags go. */
export function stripLinksAndTags(text: string): string {
  return text.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "");
}

function readInline(block: Located[], result: ParsedMarkdown): void {
  const text = block.map((l) => l.text).join("\n");
  const starts: number[] = [];
  let offset = 0;
  for (const l of block) {
    starts.push(offset);
    offset += l.text.length + 1;
  }
  const lineAt = (index: number): number => {
    let k = 0;
    while (k + 1 < starts.length && (starts[k + 1] ?? Infinity) <= index) k++;
    return (block[k]?.line ?? 0);
  };
  // Code spans: a run of n backticks up to the next run of exactly n; an unmatched run is literal.
  let masked = "";
  let pos = 0;
  const runs = [...text.matchAll(/`+/g)];
  for (let r = 0; r < runs.length; r++) {
    const opening = runs[r];
    if (!opening || (opening.index ?? 0) < pos) continue;
    const closing = runs.slice(r + 1).find((c) => c[0].length === opening[0].length);
    if (!closing) continue;
    const from = opening.index ?? 0;
    const to = (closing.index ?? 0) + closing[0].length;
    let content = text.slice(from + opening[0].length, closing.index).replace(/\n/g, " ");
    if (content.length > 1 && content.startsWith(" ") && content.endsWith(" ") && content.trim() !== "") content = content.slice(1, -1);
    result.codeSpans.push({ text: content, line: lineAt(from) });
    masked += text.slice(pos, from) + "\0".repeat(to - from);
    pos = to;
    r = runs.indexOf(closing);
  }
  masked += text.slice(pos);
  for (const m of masked.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g)) {
    result.links.push({ target: m[1] ?? "", line: lineAt(m.index ?? 0) });
  }
  for (const m of masked.matchAll(/<((?:https?|mailto):[^>\s]*)>/g)) result.links.push({ target: m[1] ?? "", line: lineAt(m.index ?? 0) });
  for (const m of masked.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) result.links.push({ target: m[1] ?? "", line: lineAt(m.index ?? 0) });
}
