"""Execute one notebook top to bottom in real Jupyter with the tslab kernel.

tslab's error reply is empty: a failing cell's real message (a TypeScript
diagnostic or a thrown error) is in the cell's stderr stream, so on failure this
prints the cell's source and every output it produced, not just the reply.

Exit status 0 = every cell ran. The last stdout line is a JSON summary that the
Node side parses: {"ok", "seconds", "cells", "failedCell", "verified", "doctored",
"doctorSeconds"}: the last two count the traces the notebook helpers had the trace
doctor examine, and the time it took (setup/src/notebook/healthy.ts logs each).
"""
import json
import os
import re
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

VERIFIED = re.compile(r"^trace [0-9a-f-]{36}: OK$", re.M)


def text_of(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "%s: %s\n%s" % (output.get("ename", ""), output.get("evalue", ""), "\n".join(output.get("traceback", [])))
    data = output.get("data", {})
    return data.get("text/plain", "")


def main():
    path, out_path, cell_timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
    nb = nbformat.read(path, as_version=4)
    # Committed notebooks carry the outputs of an earlier run. Cleared first, so that after a
    # failure no old output is counted as verified and the failing cell is found by its count.
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = NotebookClient(
        nb,
        kernel_name="tslab",
        timeout=cell_timeout,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": path.rsplit("/", 1)[0] if "/" in path else "."}},
    )
    # The kernel inherits this environment: the helpers append a line per doctor check to the file.
    doctor_log = tempfile.NamedTemporaryFile(prefix="doctor-", suffix=".jsonl", delete=False)
    doctor_log.close()
    os.environ["TRACING_PATTERNS_DOCTOR_LOG"] = doctor_log.name
    started = time.time()
    failed = None
    error = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = exc
        # tslab sends no error output, only an error status: the failing cell is
        # the last one that started executing.
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.get("execution_count") is not None:
                failed = index
    finally:
        nbformat.write(nb, out_path)

    verified = 0
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code_cells:
        for output in cell.get("outputs", []):
            verified += len(VERIFIED.findall(text_of(output)))

    doctored, doctor_ms = 0, 0
    with open(doctor_log.name, encoding="utf-8") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a kernel that died mid-write leaves half a line
            doctored += entry["traces"]
            doctor_ms += entry["ms"]
    os.unlink(doctor_log.name)

    if error is not None:
        cell = nb.cells[failed] if failed is not None else None
        print("=" * 78, file=sys.stderr)
        print("FAILED %s, cell %s" % (path, failed), file=sys.stderr)
        if cell is not None:
            print("--- source " + "-" * 67, file=sys.stderr)
            print(cell.source, file=sys.stderr)
            print("--- output " + "-" * 67, file=sys.stderr)
            for output in cell.get("outputs", []):
                print(text_of(output), file=sys.stderr, end="" if text_of(output).endswith("\n") else "\n")
        if not isinstance(error, CellExecutionError) or cell is None:
            print("%s: %s" % (type(error).__name__, error), file=sys.stderr)
        print("=" * 78, file=sys.stderr)

    print(json.dumps({
        "ok": error is None,
        "seconds": round(time.time() - started, 1),
        "cells": len(code_cells),
        "failedCell": failed,
        "verified": verified,
        "doctored": doctored,
        "doctorSeconds": round(doctor_ms / 1000, 1),
    }))
    sys.exit(0 if error is None else 1)


if __name__ == "__main__":
    main()
