# Sourced by the smoke tests: `require_service VAR NAME` ends the test when
# the service's variable is missing (its fixture skipped it: not installed).
# That is acceptable only on a developer machine: 77 is ctest's
# SKIP_RETURN_CODE; with $CI set it is a failure.
require_service() {
  local var=$1 name=$2
  [[ -z "${!var:-}" ]] || return 0
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: $var not set (service not started)"
    exit 1
  fi
  echo "SKIP: $var not set ($name not installed?)"
  exit 77
}
