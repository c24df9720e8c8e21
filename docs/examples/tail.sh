#!/bin/sh
# Follows hookgate's event feed: prints each event as one JSON line, in commit order. The cursor
# lives in a file, so a restart of this script resumes where it stopped; while hookgate is down
# or restarting, it waits a second and asks again. Needs curl and jq.
url=${HOOKGATE_ADMIN_URL:-http://127.0.0.1:9090}
cursor_file=${HOOKGATE_CURSOR_FILE:-hookgate.cursor}
while :; do
  after=$(cat "$cursor_file" 2>/dev/null)
  page=$(curl -sSf --max-time 60 -H "Authorization: Bearer $HOOKGATE_ADMIN_TOKEN" \
    "$url/admin/events?wait=25s&after=$after") || { sleep 1; continue; }
  printf '%s\n' "$page" | jq -c '.events[]'   # handle each event here
  printf '%s\n' "$page" | jq -r .next >"$cursor_file.tmp" && mv "$cursor_file.tmp" "$cursor_file"
done
