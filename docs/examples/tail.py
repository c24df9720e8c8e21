#!/usr/bin/env python3
"""Follows hookgate's event feed: prints each event as one JSON line, in commit order. The cursor
lives in a file, so a restart of this script resumes where it stopped; while hookgate is down or
restarting, it waits a second and asks again. Python standard library only."""
import http.client, json, os, sys, time, urllib.parse, urllib.request

url = os.environ.get("HOOKGATE_ADMIN_URL", "http://127.0.0.1:9090")
auth = {"Authorization": "Bearer " + os.environ.get("HOOKGATE_ADMIN_TOKEN", "")}
cursor_file = os.environ.get("HOOKGATE_CURSOR_FILE", "hookgate.cursor")
while True:
    after = open(cursor_file).read().strip() if os.path.exists(cursor_file) else ""
    query = urllib.parse.urlencode({"wait": "25s", "after": after})
    try:
        req = urllib.request.Request(f"{url}/admin/events?{query}", headers=auth)
        with urllib.request.urlopen(req, timeout=60) as res:
            page = json.load(res)
    except (OSError, ValueError, http.client.HTTPException) as e:
        print(f"hookgate: {e}; retrying in 1 s", file=sys.stderr)
        time.sleep(1)
        continue
    for event in page["events"]:
        print(json.dumps(event), flush=True)  # handle each event here
    with open(cursor_file + ".tmp", "w") as f:
        f.write(page["next"])
    os.replace(cursor_file + ".tmp", cursor_file)
