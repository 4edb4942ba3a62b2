#!/bin/sh
# Container entrypoint: run `medseg` with the given arguments; `shell` opens a shell instead.
set -eu
if [ "${1:-}" = "shell" ]; then
    shift
    exec /bin/sh "$@"
fi
exec medseg "$@"
