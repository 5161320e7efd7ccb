#!/usr/bin/env bash
# Deploys the API and the webapp to Cloud Run, after //k8s:apply has made the cluster's Secrets
# and internal load balancers:
#
#   tools/bazel run //k8s:cloudrun_deploy [-- --context NAME] [--kubeconfig FILE] [--skip-push]
#
# 1. pushes the images (as //k8s:apply does);
# 2. writes the API's connection strings into Secret Manager (tally-redis-url, tally-mongo-url:
#    the read-only users api, at the addresses of redis-internal and mongodb-internal) and the
#    ballot (tally-ballot: proto/ballot.json, which the service mounts as a file), readable by
#    the API's service account only;
# 3. deploys tally-api with `gcloud run services replace` (its revision marked with the ballot's
#    sha256, so a changed ballot makes a new revision), lets only the webapp's service account
#    invoke it, and writes its URL into tally-api-url for the webapp;
# 4. deploys tally-web the same way and lets anyone invoke it; prints its URL.
# The project and region are those of the rendered services (k8s/settings.yaml). Needs gcloud,
# logged in to that project (docs/deploy-gke.md); it is not in the toolchain, so this runs
# gcloud from the PATH.
set -euo pipefail

services=$1 refs=$2 push=$3 ballot=$4
shift 4

kubectl_args=() skip_push=false
while (($#)); do
  case $1 in
    --context) kubectl_args+=(--context "$2"); shift 2 ;;
    --context=*) kubectl_args+=("$1"); shift ;;
    --kubeconfig) kubectl_args+=(--kubeconfig "$2"); shift 2 ;;
    --kubeconfig=*) kubectl_args+=("$1"); shift ;;
    --skip-push) skip_push=true; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "cloudrun: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1mcloudrun:\033[0m %s\n' "$*" >&2; }
die() { printf 'cloudrun: %s\n' "$*" >&2; exit 1; }

command -v gcloud >/dev/null ||
  die "gcloud is not on the PATH: install the Google Cloud CLI and log in (gcloud auth login) to deploy to Cloud Run (docs/deploy-gke.md)"

RUNFILES_DIR=$(cd "${RUNFILES_DIR:-$0.runfiles}" && pwd)
export RUNFILES_DIR
resolve() { [[ $1 == /* ]] && echo "$1" || echo "$RUNFILES_DIR/_main/$1"; }
services=$(resolve "$services") refs=$(resolve "$refs") push=$(resolve "$push") ballot=$(resolve "$ballot")
[[ -n ${BUILD_WORKING_DIRECTORY:-} ]] && cd "$BUILD_WORKING_DIRECTORY"

k() { kubectl "${kubectl_args[@]}" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One service's document of the rendered stream, by name.
service_doc() { awk -v name="$1" 'BEGIN { RS = "\n---\n" } $0 ~ "\n  name: " name "\n" { print }' "$services"; }
service_doc tally-api >"$work/api.yaml"
service_doc tally-web >"$work/web.yaml"
[[ -s $work/api.yaml && -s $work/web.yaml ]] || die "$services lacks tally-api or tally-web"
# A YAML scalar's value: the render quotes these ("tally-project"), and a quote mark kept in a
# gcloud argument names a project that does not exist.
yaml_value() { # key file
  awk -v key="$1" -v q="'" '$1 == key ":" {
      v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+#.*$/, "", v); sub(/[ \t]+$/, "", v)
      if (length(v) >= 2 && (v ~ /^".*"$/ || (substr(v, 1, 1) == q && substr(v, length(v)) == q))) v = substr(v, 2, length(v) - 2)
      print v; exit
    }' "$2"
}
project=$(yaml_value namespace "$work/api.yaml")
region=$(yaml_value cloud.googleapis.com/location "$work/api.yaml")
# Google Cloud's rules for project ids and region names.
[[ $project =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "the rendered tally-api names no valid project (namespace: ${project@Q})"
[[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "the rendered tally-api names no valid region (cloud.googleapis.com/location: ${region@Q})"
g() { gcloud --project "$project" --quiet "$@"; }
log "project $project, region $region"

if ! $skip_push; then
  read -r _ first_ref <"$refs"
  registry=${first_ref%%/*} repository=${first_ref#*/}
  repository=${repository%/*}
  log "pushing the images to $registry/$repository"
  "$push" --registry "$registry" --repository "$repository" >/dev/null
fi

# The cluster's side: the internal load balancers' addresses and the api users' passwords.
address() {
  local ip
  ip=$(k get service "$1" -n tally-data -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
  [[ -n $ip ]] || die "service tally-data/$1 has no load balancer address yet: run //k8s:apply first, or wait"
  echo "$ip"
}
password() { k get secret "$1" -n tally-data -o 'jsonpath={.data.password}' | base64 -d; }
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# put_secret NAME ACCOUNT: stdin becomes the secret's newest version, readable by ACCOUNT.
put_secret() {
  g secrets describe "$1" >/dev/null 2>&1 || g secrets create "$1" --replication-policy automatic >/dev/null
  g secrets versions add "$1" --data-file - >/dev/null
  g secrets add-iam-policy-binding "$1" --member "serviceAccount:$2" --role roles/secretmanager.secretAccessor >/dev/null
  log "secret $1 updated"
}
api_account=tally-api@$project.iam.gserviceaccount.com
web_account=tally-web@$project.iam.gserviceaccount.com

printf 'redis://api:%s@%s:6379' "$(urlencode "$(password redis-api)")" "$(address redis-internal)" |
  put_secret tally-redis-url "$api_account"
# Any member answers the API's reads; directConnection because Cloud Run cannot resolve the
# members' cluster names the replica set advertises.
printf 'mongodb://api:%s@%s:27017/?authSource=admin&directConnection=true&readPreference=secondaryPreferred' \
  "$(urlencode "$(password mongodb-api)")" "$(address mongodb-internal)" | put_secret tally-mongo-url "$api_account"

put_secret tally-ballot "$api_account" <"$ballot"
# The secret is read when an instance starts; a new annotation value makes a new revision, whose
# instances read the new ballot.
ballot_sum=$(sha256sum "$ballot" | cut -d' ' -f1)
awk -v sum="$ballot_sum" '
  { print }
  /^      annotations:$/ && !done { print "        tally/ballot-sha256: \"" sum "\""; done = 1 }
' "$work/api.yaml" >"$work/api-ballot.yaml"
grep -q "tally/ballot-sha256: \"$ballot_sum\"" "$work/api-ballot.yaml" || die "$services: tally-api has no revision annotations to mark the ballot in"

log "deploying tally-api"
g run services replace "$work/api-ballot.yaml" --region "$region" >/dev/null
g run services add-iam-policy-binding tally-api --region "$region" \
  --member "serviceAccount:$web_account" --role roles/run.invoker >/dev/null
api_url=$(g run services describe tally-api --region "$region" --format 'value(status.url)')
printf '%s' "$api_url" | put_secret tally-api-url "$web_account"

log "deploying tally-web"
g run services replace "$work/web.yaml" --region "$region" >/dev/null
g run services add-iam-policy-binding tally-web --region "$region" --member allUsers --role roles/run.invoker >/dev/null
log "the webapp: $(g run services describe tally-web --region "$region" --format 'value(status.url)')"
