#!/usr/bin/env bash
# Stamping values for --config=release (images and binaries name the commit they came from).
echo "STABLE_GIT_COMMIT $(git rev-parse HEAD 2>/dev/null || echo unknown)"
echo "STABLE_GIT_DIRTY $(test -z "$(git status --porcelain 2>/dev/null)" && echo false || echo true)"
