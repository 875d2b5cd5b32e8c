"""Your own task from a JSONL file: one `{"prompt": ..., "answer": ...}` object per line.

`load_task("jsonl", path=..., prompt_field=..., answer_field=..., grader=...)` reads the two
fields of every row (other keys are ignored, except the optional `id`, `gold_completion` and
`wrong_completion`) and builds the task with `Task.from_pairs`.
"""

import os
from pathlib import Path

from roast_tl._io import read_jsonl, require
from roast_tl.tasks.base import Grader, Task
from roast_tl.tasks.graders import check_grader_name

_OPTIONAL = ("id", "gold_completion", "wrong_completion")


def load_jsonl(
    path: str | os.PathLike[str] | None = None,
    *,
    prompt_field: str = "prompt",
    answer_field: str = "answer",
    grader: str | Grader = "exact",
    name: str | None = None,
    n_dev: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    max_new_tokens: int = 32,
) -> Task:
    """Load a task from a JSONL file of prompt/answer rows; `name` defaults to the file's stem.

    `grader` is a grader name (`roast_tl.tasks.graders.GRADERS`, or `regex:PATTERN`) or a
    function `(completion, item) -> bool`; splits as in `Task.from_pairs`. A row without one of
    the two fields is a ValueError naming the file and line.
    """
    if path is None:
        raise ValueError(
            "task 'jsonl' needs path= a JSONL file of "
            f'{{"{prompt_field}": ..., "{answer_field}": ...}} rows'
        )
    if isinstance(grader, str):
        check_grader_name(grader)  # before reading the file
    source = Path(path)
    pairs = []
    for number, row in read_jsonl(source):
        where = f"{source}:{number}"
        pair = {
            "prompt": require(row, prompt_field, where),
            "answer": require(row, answer_field, where),
        }
        pair.update({key: row[key] for key in _OPTIONAL if row.get(key) is not None})
        pairs.append(pair)
    return Task.from_pairs(
        pairs,
        grader=grader,
        name=name or source.stem,
        n_dev=n_dev,
        n_test=n_test,
        seed=seed,
        max_new_tokens=max_new_tokens,
    )
