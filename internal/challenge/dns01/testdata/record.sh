#!/bin/sh
# Stand-in DNS hook for the exec provider tests: appends its arguments, as one
# line, to the file named by ZOKU_EXEC_RECORD.
set -eu
printf '%s\n' "$*" >> "$ZOKU_EXEC_RECORD"
