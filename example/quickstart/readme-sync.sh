#!/usr/bin/env bash
# The first ```cpp block of the README must equal main.cpp minus its two
# leading comment lines.
set -euo pipefail
readme=$1
source=$2
diff <(awk '/^```cpp$/{f=1;next} /^```$/{if(f){exit}} f' "$readme") <(tail -n +3 "$source") \
  || { echo "FAIL: README example and $source differ"; exit 1; }
echo "README example in sync"
