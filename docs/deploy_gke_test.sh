#!/usr/bin/env bash
# Checks the commands of docs/deploy-gke.md (its indented code blocks) as a reader would run them:
#   - `umask 077` comes before any command that writes a file (some hold a token);
#   - no token or password is an argument of an external command, where any user of the
#     machine can read it: not `$(gcloud auth print-access-token)` outside a here-document, and
#     no variable named like a password, token or secret given to anything but the shell's own
#     printf/read/echo/unset/export;
#   - the maintenance exclusion for the contest's window is set (name, start, end, scope) and
#     then checked with a describe.
# Arg: the guide.
set -euo pipefail
exec python3 - "$1" <<'PY'
import re, sys

text = open(sys.argv[1], encoding="utf-8").read()
commands = []  # (line number, logical command line), here-documents left out
heredoc = None
pending, start = "", 0
for n, line in enumerate(text.split("\n"), 1):
    if heredoc:
        if line.strip() == heredoc:
            heredoc = None
        continue
    if not line.startswith("    ") or line.lstrip().startswith("|"):
        continue
    code = line[4:]
    if not pending:
        start = n
    m = re.search(r"<<-?\s*'?(\w+)'?", code)
    if m:
        heredoc = m.group(1)
    if code.endswith("\\"):
        pending += code[:-1] + " "
        continue
    commands.append((start, pending + code))
    pending = ""

errors = []
BUILTINS = {"printf", "read", "echo", "unset", "export"}
SECRET_VAR = re.compile(r"\$\{?(\w*(?:password|token|secret|passwd)\w*)\}?", re.I)
first_write = next((n for n, c in commands if re.search(r"(^|[^<>2&])>\s*[~$/\w]", c) and not c.lstrip().startswith("#")), None)
umask = next((n for n, c in commands if re.fullmatch(r"\s*umask 0?077\s*", c)), None)
if umask is None or (first_write is not None and umask > first_write):
    errors.append(f"`umask 077` (line {umask}) does not come before the first file written (line {first_write})")

for n, c in commands:
    if c.lstrip().startswith("#"):
        continue
    code = c.split(" # ")[0]
    if "$(gcloud auth print-access-token)" in code:
        errors.append(f"line {n}: a token as a command's argument: {c.strip()}")
    # Each simple command: the text after a separator up to the next one.
    for segment in re.split(r"\|\||&&|[|;{}()]|\$\(", code):
        words = segment.split()
        if not words:
            continue
        name = words[0]
        for var in SECRET_VAR.findall(segment):
            if name not in BUILTINS:
                errors.append(f"line {n}: ${var} is an argument of {name}: {c.strip()}")

def has(pattern):
    return [n for n, c in commands if re.search(pattern, c)]

update = [n for n, c in commands if "gcloud container clusters update" in c and all(
    f"--add-maintenance-exclusion-{flag}" in c for flag in ("name", "start", "end", "scope"))]
check = has(r"gcloud container clusters describe .*maintenanceExclusions")
if not update:
    errors.append("no `gcloud container clusters update` adding a maintenance exclusion (name, start, end, scope)")
elif not check or min(check) < min(update):
    errors.append("the maintenance exclusion is not checked afterwards (clusters describe ... maintenanceExclusions)")

if errors:
    print("docs/deploy-gke.md:\n  " + "\n  ".join(errors))
    sys.exit(1)
print(f"docs/deploy-gke.md: {len(commands)} commands checked")
PY
