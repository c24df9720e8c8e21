#!/usr/bin/env bash
# The admin API against its own OpenAPI description, with schemathesis (PyPI), on a live instance:
#   tests/scripts/schemathesis.sh [MAX_EXAMPLES]
# Builds hookgate, starts it on free ports with a temporary configuration (SQLite in a temporary
# folder, the kratos and identus sources, an HTTP destination that refuses connections so its
# deliveries fail and show attempts, a paused one), stores a few events and a registered hook so
# that every list has something in it, then runs schemathesis with every check (no 5xx,
# response schema, status codes, content types, headers, negative data rejected, positive data
# accepted, auth not ignored, ...) on every operation of /admin/openapi.json, MAX_EXAMPLES
# (default 100) test cases per operation and phase. schemathesis is installed, at a pinned
# version, in a virtualenv under the target folder. The summary goes to
# target/schemathesis/summary.md (docs/reliability.md quotes it); the exit status is
# schemathesis's.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
max_examples=${1:-100}
schemathesis_version=4.32.5
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/schemathesis
mkdir -p "$out"
rm -f "$out"/junit-*.xml "$out"/json-*.json "$out"/ndjson-*.ndjson

# schemathesis, pinned, in its own virtualenv.
venv=$target/schemathesis-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
fi

cargo build --locked --bin hookgate
bin=$target/debug/hookgate

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
public=$(free_port)
admin=$(free_port)
refused=$(free_port) # nothing listens there: attempts fail with `connect`

dir=$(mktemp -d)
hookgate_pid=
cleanup() {
    if [ -n "$hookgate_pid" ]; then
        kill -TERM "$hookgate_pid" 2>/dev/null || true
        wait "$hookgate_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

token=schemathesis-admin-token-0123456789
kratos_key=schemathesis-kratos-key-0123456789
identus_token=schemathesis-identus-token-0123456789
cat >"$dir/hookgate.yaml" <<EOF
server:
  listen: 127.0.0.1:$public
admin:
  listen: 127.0.0.1:$admin
  token: $token
store:
  url: sqlite://$dir/hookgate.db
log:
  format: json
  level: warn
sources:
  kratos:
    kind: kratos
    path: /kratos
    verify: { scheme: api_key, header: X-Api-Key, secrets: ["$kratos_key"] }
  identus:
    kind: identus
    path: /identus
    verify: { scheme: bearer, secrets: ["$identus_token"] }
destinations:
  app:
    kind: http
    url: http://127.0.0.1:$refused/webhooks
    retry: [1s]
  archive:
    kind: http
    url: http://127.0.0.1:$refused/archive
    sources: [identus]
EOF

"$bin" serve --config "$dir/hookgate.yaml" >"$out/hookgate.log" 2>&1 &
hookgate_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$public/readyz" >/dev/null && break
    sleep 0.1
done

# Events, so that every list has something in it: two Kratos identities, two Identus
# connection events, a registered hook and an event through it.
for fixture in kratos_guide_identity; do
    printf '{"identity": %s}' "$(cat "tests/fixtures/$fixture.json")" |
        curl -sf -o /dev/null -H "X-Api-Key: $kratos_key" -H 'Content-Type: application/json' \
            --data-binary @- "http://127.0.0.1:$public/kratos"
done
for fixture in identus_connection identus_docs_connection identus_credential identus_did; do
    curl -sf -o /dev/null -H "Authorization: Bearer $identus_token" \
        -H 'Content-Type: application/json' --data-binary "@tests/fixtures/$fixture.json" \
        "http://127.0.0.1:$public/identus"
done
hook=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data '{"kind": "json", "label": "schemathesis", "payload": {"shop": 42}}' \
    "http://127.0.0.1:$admin/admin/hooks" | python3 -c 'import json, sys; print(json.load(sys.stdin)["path"])')
curl -sf -o /dev/null -H 'Content-Type: application/json' --data '{"id": 1, "type": "order.created"}' \
    "http://127.0.0.1:$public$hook"
curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$admin/admin/destinations/archive/pause"
sleep 2 # the first delivery attempts fail, so that deliveries have attempts to show

# Real ids and cursors, so that the single GETs answer 200 (and their schemas are checked
# against real answers), not only 404.
admin_get() {
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$admin$1"
}
pick() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
event_id=$(admin_get /admin/events | pick 'd["events"][0]["id"]')
event_cursor=$(admin_get '/admin/events?limit=1' | pick 'd["next"]')
delivery_id=$(admin_get /admin/deliveries | pick 'd["deliveries"][0]["id"]')
identity_id=$(admin_get /admin/kratos/identities | pick 'd["identities"][0]["identity_id"]')
connection_id=$(admin_get /admin/identus/connections | pick 'd["connections"][0]["id"]')
# A projection list's cursor: any position is one (the first, here).
position=$(python3 -c 'import base64; print(base64.urlsafe_b64encode(b"[\"\",\"\"]").decode().rstrip("="))')

# What the description cannot say, pinned or allowed per operation (each with its reason).
cat >"$dir/schemathesis.toml" <<EOF
# Cursors are opaque (DESIGN.md): a made-up one is rightly refused with 400, so \`after\` is a
# real one. \`wait\` is pinned to 1s so that long polls on filters that match nothing keep the
# run short (tests/api/feed.rs covers \`wait\`).
[[operations]]
include-operation-id = "list_events"
parameters = { "query.after" = "$event_cursor", "query.wait" = "1s" }

[[operations]]
include-operation-id = ["list_kratos_identities", "list_identus_records"]
parameters = { "query.after" = "$position" }

# Real ids, so that the single GETs answer 200 and their answers are checked. (Not for hooks:
# the stateful phase creates, reads and deletes its own, and a pinned one could be deleted.)
[[operations]]
include-operation-id = ["get_event", "get_event_raw"]
parameters = { "path.id" = "$event_id" }

[[operations]]
include-operation-id = "get_delivery"
parameters = { "path.id" = $delivery_id }

[[operations]]
include-operation-id = "get_kratos_identity"
parameters = { "path.id" = "$identity_id" }

[[operations]]
include-operation-id = "get_identus_record"
parameters = { "path.id" = "$connection_id" }

# A registration is checked beyond its shape: \`expires_at\` must be in the future, and
# \`verify\` must pass a source's checks (a known scheme, its fields, long enough secrets),
# which the description gives only as an object. Such a body gets 422 naming each field.
[[operations]]
include-operation-id = "create_hook"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "422"]
EOF

# Every check, every phase.
cd "$out"
set +e
"$venv/bin/st" --config-file "$dir/schemathesis.toml" run "http://127.0.0.1:$admin/admin/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --max-examples "$max_examples" \
    --generation-database none \
    --seed 14 \
    --no-color \
    --report junit,json,ndjson --report-dir "$out" \
    2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}
set -e

{
    echo "# schemathesis $schemathesis_version, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$root" rev-parse --short HEAD)"
    echo
    echo "Command: \`tests/scripts/schemathesis.sh $max_examples\`"
    echo
    sed -n '/SUMMARY/,$p' "$out/run.log"
    echo
    # Each check's outcomes, and the answers by status, from the event log of the run.
    python3 - "$out"/ndjson-*.ndjson <<'PY'
import collections, json, sys
checks, statuses = collections.Counter(), collections.Counter()
for line in open(sys.argv[1]):
    event = json.loads(line).get("ScenarioFinished")
    if not event:
        continue
    for results in event["recorder"].get("checks", {}).values():
        for check in results:
            checks[(check["name"], check["status"])] += 1
    for interaction in event["recorder"].get("interactions", {}).values():
        if interaction.get("response"):
            statuses[interaction["response"]["status_code"]] += 1
print("Checks (name: outcome count):")
for (name, status), n in sorted(checks.items()):
    print(f"- {name}: {status} {n}")
print()
print("Answers by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
PY
} >"$out/summary.md"
exit "$status"
