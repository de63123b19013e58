"""The README and the pages in `docs/` stay true: every Python block runs as written, every relative link resolves,
and every example writes under `runs/`.

Each page's Python blocks run in order in one scratch folder (later blocks read what earlier ones wrote), each in a
fresh interpreter, as doctests do. The README's blocks run once per session (`readme_run`); a page that continues the
README's first run (it reads `runs/quickstart/scores`, and says so with a link to that section) runs in a copy of
that folder, every other page in an empty one, so the README's training is not repeated.

A block's fence info says how: ```` ```python ```` runs offline; ```` ```python hub ```` runs against the loopback Hub
of `tests/hub_server.py` (as user `alice`, member of `my-org`); ```` ```python skip="reason" ```` cannot run here
(ImageNet, a GPU) and is skipped with that reason, listed in `SKIPS`. Bash blocks are commands, not run here; the
paths they write (`--out`, `--output_dir`) are checked to be under `runs/`."""

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.hub_fixtures import make_hub_env
from tests.hub_server import LoopbackHub


README = "README.md"
PAGES = [README, *sorted(f"docs/{path.name}" for path in (REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)
ANY_FENCE = re.compile(r"^```[^\n]*\n.*?^```", re.S | re.M)
BASH_FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of a link or an image

# The blocks that cannot run here, page by page, with their reasons: a new skip is a decision, made here.
SKIPS = {
    README: ["downloads ImageNet-1K from the Hub"],
    "docs/hub.md": ["downloads ImageNet-1K from the Hub"],
    "docs/text.md": ["trains with trl's SFTTrainer; run by tests/test_sft.py and tests/test_sft_recipe.py"],
    "docs/published_subsets.md": [
        "needs an imported score list of ImageNet-1K on the Hub",
        "downloads ImageNet-1K from the Hub",
        "downloads ImageNet-1K from the Hub",
    ],
}
# Pages whose blocks read what the README's first run wrote (`runs/quickstart/...`).
CONTINUES_README = {"docs/record.md", "docs/strategies.md", "docs/hub.md"}
FIRST_RUN = "../README.md#first-run-in-python"
# What each page's blocks leave behind (besides `runs/` being the only thing they write).
WRITES = {
    README: ["runs/quickstart/scores/record.json", "runs/quickstart/dyn_unc_25/README.md"],
    "docs/strategies.md": ["runs/strategies/data_map.png"],
    "docs/dynamic.md": ["runs/dynamic/infobatch"],
    "docs/hub.md": ["runs/hub/pruned_model/README.md"],
}


def page_text(page: str) -> str:
    return (REPO_ROOT / page).read_text()


def python_blocks(page: str):
    """`(line, info, code)` of every Python block of `page`, in order."""
    text = page_text(page)
    out = []
    for match in FENCE.finditer(text):
        info = dict(item.split("=", 1) if "=" in item else (item, True) for item in shlex.split(match.group(1)))
        out.append((text[: match.start()].count("\n") + 1, info, match.group(2)))
    return out


def runnable(page: str) -> bool:
    return any("skip" not in info for _, info, _ in python_blocks(page))


def github_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (lower case, punctuation dropped, spaces to hyphens,
    `-1`, `-2`... for repeats)."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in ANY_FENCE.sub("", path.read_text()).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def prose(text: str) -> str:
    """`text` without fenced blocks, inline code and HTML comments: what GitHub renders links from."""
    text = ANY_FENCE.sub("", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def run_blocks(page: str, cwd: Path, tmp_path: Path, datasets_cache: Path):
    """Runs `page`'s Python blocks in order in `cwd`; returns the skip reasons met and, for a page with `hub` blocks,
    the loopback Hub (stopped) to inspect."""
    blocks = python_blocks(page)
    skipped = []
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1",
               "HF_DATASETS_CACHE": str(datasets_cache)}  # fmt: skip
    needs_hub = any("hub" in info and "skip" not in info for _, info, _ in blocks)
    with contextlib.ExitStack() as stack:
        hub = None
        if needs_hub:
            hub = stack.enter_context(LoopbackHub(tokens={"hf_readme": "alice"}, orgs={"my-org": ["alice"]},
                                                  root=tmp_path / "hub"))  # fmt: skip
            hub_env = {**make_hub_env(hub.url, "hf_readme", tmp_path), "OMP_NUM_THREADS": "1"}
        for line, info, code in blocks:
            if "skip" in info:
                skipped.append(info["skip"])
                continue
            proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=hub_env if "hub" in info else offline,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            if proc.returncode != 0:
                pytest.fail(f"{page}:{line}: the block failed\n{code}\n--- stderr ---\n{proc.stderr[-4000:]}")
        assert hub is None or not hub.errors, hub.errors
    return skipped, hub  # a stopped Hub still answers `repo_exists` and `files`


def assert_writes_only_under_runs(page: str, cwd: Path):
    assert sorted(os.listdir(cwd)) == ["runs"], f"{page}: its examples wrote outside runs/: {sorted(os.listdir(cwd))}"
    for path in WRITES.get(page, []):
        assert (cwd / path).exists(), f"{page}: expected its examples to write {path}"


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory):
    """The folder the README's blocks ran in, once per session: `runs/quickstart/` with the record and the list."""
    tmp_path = tmp_path_factory.mktemp("readme")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cache = tmp_path_factory.getbasetemp() / "hf_cache" / "datasets"  # as `tests/conftest.py` sets it
    skipped, _ = run_blocks(README, cwd, tmp_path, cache)
    return cwd, skipped


def test_every_page_has_blocks_of_known_kinds_and_the_skips_are_the_listed_ones():
    kinds = set()
    for page in PAGES:
        blocks = python_blocks(page)
        kinds |= {("skip" in info, "hub" in info) for _, info, _ in blocks}
        for line, info, _ in blocks:
            assert set(info) <= {"hub", "skip"}, f"{page}:{line}: unknown fence info {info}"
            if "skip" in info:
                assert isinstance(info["skip"], str) and info["skip"].strip(), f"{page}:{line}: skip needs a reason"
        assert [info["skip"] for _, info, _ in blocks if "skip" in info] == SKIPS.get(page, []), page
    assert {(False, False), (False, True), (True, False)} <= kinds  # offline, loopback-Hub and skipped blocks


def test_the_readme_is_a_front_door_that_links_every_page():
    text = page_text(README)
    assert len(text.splitlines()) <= 250, "the README grew past 250 lines: move the details to a docs/ page"
    first_benchmark = min(text.index(word) for word in ("## Does it work?", "## Documentation"))
    assert text.index("## Two commands") < text.index("## First run in Python") < first_benchmark
    for page in PAGES[1:]:
        assert f"]({page})" in text, f"the README does not link {page}"
        assert "](../README.md)" in page_text(page), f"{page} has no link back to the README"


def test_pages_that_continue_the_readme_say_so():
    for page in PAGES[1:]:
        reads_it = any("runs/quickstart" in code for _, info, code in python_blocks(page) if "skip" not in info)
        assert reads_it == (page in CONTINUES_README), f"{page}: keep CONTINUES_README in step with its blocks"
        if reads_it:
            assert FIRST_RUN in page_text(page), f"{page} reads the README's first run: say so, linking {FIRST_RUN}"


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        source = REPO_ROOT / page
        for target in LINK.findall(prose(page_text(page))):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (source.parent / path).resolve() if path else source
            if not resolved.exists():
                broken.append(f"{page}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in github_anchors(resolved):
                broken.append(f"{page}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_shell_examples_write_under_runs():
    for page in PAGES:
        for block in BASH_FENCE.findall(page_text(page)):
            words = shlex.split(block.replace("\\\n", " "), comments=True)
            for flag, value in zip(words, words[1:]):
                if flag in ("--out", "--output_dir") and not value.isupper():  # DIR, NAME: placeholders
                    assert value.startswith("runs/"), f"{page}: `{flag} {value}` writes outside runs/"


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs_as_written(readme_run):
    cwd, skipped = readme_run
    assert skipped == SKIPS[README]
    assert_writes_only_under_runs(README, cwd)


@pytest.mark.slow
@pytest.mark.parametrize("page", [page for page in PAGES[1:] if runnable(page)])
def test_every_python_block_of_the_docs_runs_as_written(page, readme_run, tmp_path, tmp_path_factory):
    cwd = tmp_path / "cwd"
    if page in CONTINUES_README:
        shutil.copytree(readme_run[0], cwd, symlinks=True)
    else:
        cwd.mkdir()
    skipped, hub = run_blocks(page, cwd, tmp_path, tmp_path_factory.getbasetemp() / "hf_cache" / "datasets")
    assert skipped == SKIPS.get(page, [])
    if page == "docs/hub.md":
        assert hub.repo_exists("my-org/fashion-mnist-dyn-unc-25", "dataset")
        card = hub.files("my-org/fmnist-cnn-dyn-unc-25", "model")["README.md"].decode()
        assert "## Trained on a pruned dataset" in card
    assert_writes_only_under_runs(page, cwd)
