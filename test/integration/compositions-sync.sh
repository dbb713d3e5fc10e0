#!/usr/bin/env bash
# doc/compositions.md shows the code of suite `compositions` (in
# redis_store_test.cpp) verbatim: in every ```cpp block that has a
# "// Use:" line, what comes before that line must appear, as it is, in the
# test's source. The test is then the proof of what the page shows.
set -euo pipefail
doc=$1
source=$2
python3 - "$doc" "$source" <<'PY'
import re, sys
doc, src = open(sys.argv[1]).read(), open(sys.argv[2]).read()
shown = [b.split("\n// Use:")[0] for b in re.findall(r"```cpp\n(.*?)```", doc, re.S) if "\n// Use:" in b]
assert len(shown) >= 2, f"expected the blocks of (b) and (d), found {len(shown)}"
for code in shown:
    if code.strip() not in src:
        print(f"FAIL: this code of {sys.argv[1]} is not in {sys.argv[2]}:\n{code}")
        sys.exit(1)
print(f"{len(shown)} blocks of {sys.argv[1]} in sync with {sys.argv[2]}")
PY
