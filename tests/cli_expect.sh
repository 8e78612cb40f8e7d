# Shared by the command-line tests (sourced): expect CODE PATTERN -- command... runs the
# command and records a failure in $fail when its exit code or its output differ.
fail=0
expect() {
  code=$1; pattern=$2; shift 3
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -ne "$code" ]; then echo "FAIL: '$*' exited $rc, expected $code: $out"; fail=1; fi
  if ! printf '%s' "$out" | grep -q -- "$pattern"; then echo "FAIL: '$*' output lacks '$pattern': $out"; fail=1; fi
}
