"""Run the reliability corpus of tests/test_corpus.py and print its table for
docs/troubleshooting.md.

Every case is made with ffmpeg, restored by the real ``filmcolor restore`` command in its own
process and checked as the test suite checks it (input unchanged, output complete or absent,
nothing left behind, one error line); a case that does not hold is marked FAILED. Run::

    python pipelines/corpus_table.py > corpus.md        # about two minutes on 2 cores

and paste the table into docs/troubleshooting.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from test_corpus import CORPUS, make_models, run_case  # noqa: E402


def _cell(text: str, width: int = 150) -> str:
    text = text.replace("|", "\\|").replace("\n", " ").strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()
    failed = 0
    print("| case | exit | message (last line of stderr) | output check |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="filmcolor-corpus-") as tmp:
        models = make_models(Path(tmp))
        for number, (name, case) in enumerate(CORPUS.items()):
            if args.only and args.only not in name:
                continue
            folder = Path(tmp) / f"case{number}"
            folder.mkdir()
            try:
                outcome = run_case(case, folder, models)
            except AssertionError as err:
                failed += 1
                print(f"| {_cell(name)} | ? | FAILED: {_cell(str(err))} | |", flush=True)
                continue
            text = (
                outcome.stderr.replace(f"{folder}/in/", "")
                .replace(f"{folder}/out/", "")
                .replace(f"{tmp}/", "")
            )
            lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
            message = lines[-1].removeprefix("filmcolor: ") if lines else ""
            if outcome.code == 0:
                warnings = [
                    line.removeprefix("filmcolor: ") for line in lines if "warning:" in line
                ]
                message = warnings[0] if warnings else "(nothing but the summary)"
            print(
                f"| {_cell(name)} | {outcome.code} | {_cell(message)} | {outcome.check} |",
                flush=True,
            )
    print(f"\n{len(CORPUS) - failed} of {len(CORPUS)} cases hold.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
