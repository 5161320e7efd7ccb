#!/usr/bin/env bash
# //k8s:cloudrun_deploy (k8s/cloudrun.sh) on the rendered services, //k8s:cloudrun.yaml:
# 1. without gcloud on the PATH: exit 1 and a message naming gcloud, before anything is touched;
# 2. with a stand-in gcloud that records its arguments and refuses malformed ones (a quote mark,
#    an empty word, a project or region other than the rendered settings') and a stand-in
#    kubectl answering for the cluster: the deploy completes, every call names the project,
#    every `run` call the region, and the secrets and services are written as documented.
# Args: cloudrun.sh, the rendered services, the ballot.
set -uo pipefail
script=$(realpath "$1") services=$(realpath "$2") ballot=$(realpath "$3")
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(PATH=/nonexistent /bin/bash "$script" services.yaml services.refs push ballot.json 2>&1)
status=$?
if ((status != 1)) || ! grep -q "gcloud is not on the PATH" <<<"$out"; then
  fail "cloudrun.sh without gcloud: exit $status, output:
$out"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/bin
mkdir -p "$bin"
# The project and region the render was given (k8s/settings.yaml), read independently of the
# script: the first namespace and location lines, without their quotes.
project=$(sed -n 's/^  namespace: "\(.*\)"$/\1/p' "$services" | head -1)
region=$(sed -n 's/^    cloud.googleapis.com\/location: "\(.*\)"$/\1/p' "$services" | head -1)
[[ -n $project && -n $region ]] || fail "no quoted project or region in $services: change this test's reading"

# gcloud: one line per call in calls.log (words joined by |); stdin of secret writes kept per
# secret; refuses what the real one would misread.
cat >"$bin/gcloud" <<EOF
#!/usr/bin/env bash
log=$work/calls.log
for word in "\$@"; do
  if [[ -z \$word || \$word == *[\\"\\']* ]]; then
    echo "gcloud (stand-in): malformed argument \${word@Q} in: \$*" >&2
    echo "REFUSED \$*" >>"\$log"
    exit 2
  fi
done
[[ \$1 == --project && \$2 == $project ]] || { echo "gcloud (stand-in): project \${2@Q}, want $project" >&2; echo "REFUSED \$*" >>"\$log"; exit 2; }
(IFS='|'; echo "\$*") >>"\$log"
args=" \$* "
if [[ \$args == *" run "* && \$args != *" --region $region "* ]]; then
  echo "gcloud (stand-in): run without --region $region" >&2; exit 2
fi
case \$args in
  *" secrets describe "*) exit 1 ;;  # none exists yet
  *" secrets versions add "*) cat >"$work/secret-\$7" ;;
  *" run services replace "*) cp "\$7" "$work/replaced-\$(basename "\$7")" ;;
  *" run services describe tally-api "*) echo https://tally-api-test.a.run.app ;;
  *" run services describe tally-web "*) echo https://tally-web-test.a.run.app ;;
esac
exit 0
EOF
cat >"$bin/kubectl" <<'EOF'
#!/usr/bin/env bash
# get service NAME -n tally-data -o ...: an address; get secret NAME ...: base64 of pw-NAME.
case "$1 $2" in
  "get service") echo 10.9.0.7 ;;
  "get secret") printf 'pw-%s/+' "$3" | base64 ;;
  *) echo "kubectl (stand-in): unexpected $*" >&2; exit 2 ;;
esac
EOF
chmod +x "$bin/gcloud" "$bin/kubectl"

out=$(RUNFILES_DIR=$work PATH=$bin:$PATH /bin/bash "$script" "$services" services.refs push "$ballot" --skip-push 2>&1)
status=$?
((status == 0)) || fail "cloudrun.sh with a stand-in gcloud: exit $status, output:
$out
calls:
$(cat "$work/calls.log" 2>/dev/null)"
grep -q REFUSED "$work/calls.log" && fail "gcloud refused a call:
$(grep REFUSED "$work/calls.log")"

calls=$(cat "$work/calls.log")
grep -q "^--project|$project|--quiet|run|services|replace|" <<<"$calls" || fail "no run services replace in:
$calls"
for secret in tally-redis-url tally-mongo-url tally-ballot tally-api-url; do
  [[ -s $work/secret-$secret ]] || fail "secret $secret was not written; calls:
$calls"
done
grep -qxF "redis://api:pw-redis-api%2F%2B@10.9.0.7:6379" "$work/secret-tally-redis-url" ||
  fail "tally-redis-url is $(cat "$work/secret-tally-redis-url")"
grep -q "^mongodb://api:pw-mongodb-api%2F%2B@10.9.0.7:27017/" "$work/secret-tally-mongo-url" ||
  fail "tally-mongo-url is $(cat "$work/secret-tally-mongo-url")"
cmp -s "$ballot" "$work/secret-tally-ballot" || fail "tally-ballot is not the ballot file"
[[ $(cat "$work/secret-tally-api-url") == https://tally-api-test.a.run.app ]] || fail "tally-api-url is $(cat "$work/secret-tally-api-url")"
sum=$(sha256sum "$ballot" | cut -d' ' -f1)
grep -q "tally/ballot-sha256: \"$sum\"" "$work/replaced-api-ballot.yaml" || fail "the API's revision is not marked with the ballot's sha256"
grep -q "tally-web-test.a.run.app" <<<"$out" || fail "the webapp's URL is not printed:
$out"
echo "PASS: $(wc -l <"$work/calls.log") gcloud calls, all with --project $project"
