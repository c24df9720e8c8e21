"""A model of what the SQLite store writes per commit (docs/performance.md, "Bytes written per event").

The store's migrations, Identus-shaped rows (1.5 KB bodies, a projection row each), 20 000 events
stored first, then 300 commits of `batch` events; the WAL's frames counted from its file size.

    python3 benches/sqlite_pages.py 'run("base", batch=8); run("page", page=1024, batch=8)'
"""
import sqlite3, os, sys, uuid, random, time, json
MIGDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'store', 'sqlite', 'migrations')
MIG = sorted(os.path.join(MIGDIR, f) for f in os.listdir(MIGDIR))
import tempfile
OUT = tempfile.mkdtemp(prefix='sqlite-pages-')

def run(label, page=4096, batch=8, extra_sql="", random_keys=False, autovac=True, pre=20000, commits=300, ckpt_every=None, edit=None):
    path = os.path.join(OUT, f'{label}.db')
    for s in ('', '-wal', '-shm'):
        try: os.remove(path + s)
        except FileNotFoundError: pass
    c = sqlite3.connect(path, isolation_level=None)
    c.execute(f'PRAGMA page_size={page}')
    if autovac: c.execute('PRAGMA auto_vacuum=INCREMENTAL')
    c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('PRAGMA synchronous=OFF')
    for m in MIG:
        sql = open(m).read()
        if edit: sql = edit(os.path.basename(m), sql)
        c.executescript(sql)
    if extra_sql: c.executescript(extra_sql)
    pad = 'x' * 916
    n = [0]
    def ev():
        n[0] += 1
        k = str(uuid.uuid4()) if random_keys else '%08x-0000-4000-8000-%012x' % (12345, n[0])
        body = json.dumps({"type":"ConnectionUpdated","id":k,"data":{"connectionId":k,"state":"ConnectionResponseSent","pad":pad},"walletId":"00000000-0000-0000-0000-000000000000"}).encode()
        eid = str(uuid.UUID(int=(int(time.time()*1000) << 80) | (0x7 << 76) | random.getrandbits(76)))
        return k, body, eid
    def insert(k, body, eid):
        c.execute("INSERT INTO events (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                  (eid, 'identus', 'identus', 'ConnectionUpdated', k, None, time.strftime('%Y-%m-%dT%H:%M:%S') + '.%06dZ' % n[0], '{"content-type":"application/json","user-agent":"bench"}', body))
        seq = c.execute('select last_insert_rowid()').fetchone()[0]
        c.execute("""INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len) VALUES (?,?,?,?,?,?,?,?,?)
             ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state""",
                  ('identus/connections', k, '00000000-0000-0000-0000-000000000000', 'ConnectionResponseSent', '{"ts":"2024-05-01T10:20:30.123456Z"}', 1714558830123456, seq, 10, 1400))
    c.execute('BEGIN')
    for i in range(pre): insert(*ev())
    c.execute('COMMIT')
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    walp = path + '-wal'
    frames = 0; ck = 0
    for i in range(commits):
        c.execute('BEGIN IMMEDIATE')
        for j in range(batch): insert(*ev())
        c.execute('COMMIT')
        if ckpt_every and (i+1) % ckpt_every == 0:
            r = c.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchone()
            ck += r[2]
    sz = os.path.getsize(walp)
    frames = (sz - 32) // (page + 24)
    # distinct pages (what one checkpoint writes at most)
    r = c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
    ev_n = batch * commits
    print(f"{label:28s} page {page:5d} batch {batch:3d}: WAL frames/commit {frames/commits:6.2f}  WAL B/event {frames*(page+24)/ev_n:8.0f}  dbsize/event {os.path.getsize(path)/(pre+ev_n):6.0f}")
    c.close()

if __name__ == '__main__':
    import shutil
    try:
        exec(sys.argv[1] if len(sys.argv) > 1 else 'run("base", batch=8)')
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
