#!/usr/bin/env python3
"""The upstream files of the new series, hunk by hunk (what assemble.py does for the new files).

usage:
  upstream.py scan DEVTREE [REV]         write manifest_up.tsv: every hunk of `git diff -U0 atlas-base
                                         REV` (REV: HEAD) of the files that exist upstream, with the old
                                         patches its lines come from (git blame, and git blame --reverse
                                         for removed lines) and the new patch suggested for it
  upstream.py write DEVTREE P TREE [REV] write into TREE every upstream file as it is after new patch P:
                                         atlas-base's text plus the hunks whose patch is <= P (a variant
                                         text from variants/up/ where one exists for P)
  upstream.py final DEVTREE [REV]        check that P = 40 gives REV's upstream files byte for byte
  upstream.py todo                       list the hunks that have no new patch yet
  upstream.py show DEVTREE FILE IDX [REV] print the final text of one hunk (to start a variant from)

DEVTREE is a development tree made by kernel/dev-tree.sh: atlas-base, one commit adding the new files,
then one commit per old patch (0001 to 0034 of kernel/patches/series at the time of the scan).

Hunks are -U0 hunks: each replaces old lines [a, a+b) of the base file (or inserts after line a when b
is 0) by new lines, so any subset of them applies to the base file exactly, without context or fuzz.
manifest_up.tsv columns: file, hunk index, header, function (git's hunk context), old patches, new
patch (edit this one), the patch from which the final text applies (empty: new), last patch (a hunk
that exists only until then), note. A hunk that needs a different text in some prefix (code moved by
an NFC patch, a refusal placed into moved code) has up-variants/<file, '/' as '__'>/<idx>@<P>.txt:
its new lines from patch P on, until the next variant or the final text. A variant whose first line
is '@@ -a,b' replaces base lines [a, a+b) instead of the hunk's own range (when the final hunk's
edges fall inside a block the variant must close differently). Extra hunks (index N.5,
header '-a,0' = after base line a) exist only as variants: code of intermediate patches that the final
tree no longer has (e.g. the mmview_layout_frozen() checks of new 11 to 35).
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, 'manifest_up.tsv')
LAST = 40

# Old patch -> new patch(es), from PLAN.md sec. 3. One candidate: assigned by scan; several: the
# hunk must be placed by hand (PLAN.md sec. 4 says which part goes where).
OLD_TO_NEW = {
    1: [7], 2: [8], 3: [1, 9], 4: [9, 10, 25, 26, 29], 5: [10], 6: [11], 7: [30],
    8: [2, 27, 31, 32], 9: [3, 33], 10: [4, 34], 11: [36], 12: [32], 13: [18], 14: [21],
    15: [22], 16: [19], 17: [17], 18: [37], 19: [38], 20: [16], 21: [23], 22: [12], 23: [13],
    24: [14], 25: [18], 26: [15, 30], 27: [16], 28: [18], 29: [20], 30: [6, 28], 31: [5, 35],
    32: [24], 33: [39], 34: [40],
}


def git(dev, *args):
    return subprocess.run(['git', '-C', dev] + list(args), check=True, capture_output=True,
                          text=True, errors='surrogateescape').stdout


def old_commits(dev, rev):
    """Commits of atlas-base..rev in order; index 0 is the new-files commit, K is old patch K."""
    return git(dev, 'rev-list', '--reverse', '--first-parent', f'atlas-base..{rev}').split()


def upstream_files(dev, rev):
    return git(dev, 'diff', '--name-only', '--diff-filter=M', 'atlas-base', rev).split()


HUNK = re.compile(r'^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$')


def hunks(dev, rev, path):
    """[(a, b, c, d, func, new_lines)] of git diff -U0 atlas-base rev -- path."""
    out, cur = [], None
    for line in git(dev, 'diff', '-U0', '--no-color', 'atlas-base', rev, '--', path).split('\n'):
        m = HUNK.match(line)
        if m:
            a, c = int(m.group(1)), int(m.group(3))
            b = 1 if m.group(2) is None else int(m.group(2))
            d = 1 if m.group(4) is None else int(m.group(4))
            cur = [a, b, c, d, m.group(5).strip(), []]
            out.append(cur)
        elif cur is not None and line.startswith('+'):
            cur[5].append(line[1:] + '\n')
    return [tuple(h) for h in out]


def blame(dev, rev, path, reverse=False):
    """Line number (1-based) -> commit: of rev's lines, or with reverse of atlas-base's lines (the
    last commit in which each existed)."""
    args = ['blame', '--porcelain'] + (['--reverse'] if reverse else []) + [f'atlas-base..{rev}', '--', path]
    res = {}
    for line in git(dev, *args).split('\n'):
        m = re.match(r'^([0-9a-f]{40}) (\d+) (\d+)', line)
        if m:
            res[int(m.group(3))] = m.group(1)
    return res


def scan(dev, rev='HEAD'):
    commits = old_commits(dev, rev)
    index = {c: k for k, c in enumerate(commits)}
    rows = []
    for path in upstream_files(dev, rev):
        fwd = blame(dev, rev, path)
        back = blame(dev, rev, path, reverse=True)
        for i, (a, b, c, d, func, _) in enumerate(hunks(dev, rev, path)):
            olds = set()
            for ln in range(c, c + d):
                if fwd.get(ln) in index:
                    olds.add(index[fwd[ln]])
            for ln in range(a, a + b):
                last = back.get(ln)
                if last in index and index[last] + 1 < len(commits):
                    olds.add(index[last] + 1)  # removed by the commit after the last one that has it
                else:
                    olds.add(0)  # cannot say (0 maps to no new patch)
            cands = sorted({n for o in olds for n in OLD_TO_NEW.get(o, [])})
            new = str(cands[0]) if len(cands) == 1 else ''
            note = '' if new else 'place by hand: ' + ','.join(map(str, cands))
            hdr = f'-{a},{b} +{c},{d}'
            rows.append([path, str(i), hdr, func[:60], ','.join(map(str, sorted(olds))), new, '', '', note])
    with open(MANIFEST, 'w') as f:
        f.write('# upstream hunks of the views series (upstream.py scan); edit the "new" column\n')
        f.write('# file\tidx\theader\tfunction\told\tnew\tfinal_from\tlast\tnote\n')
        for r in rows:
            f.write('\t'.join(r) + '\n')
    todo = sum(1 for r in rows if not r[5])
    print(f'{len(rows)} hunks in {len(set(r[0] for r in rows))} files; {todo} to place by hand')


def manifest():
    rows = {}
    for line in open(MANIFEST):
        if line.startswith('#') or not line.strip():
            continue
        f = line.rstrip('\n').split('\t') + [''] * 9
        rows.setdefault(f[0], []).append(dict(idx=f[1], hdr=f[2], func=f[3], old=f[4], new=f[5],
                                              final_from=f[6], last=f[7], note=f[8]))
    return rows


def variant(path, idx, P):
    d = os.path.join(HERE, 'up-variants', path.replace('/', '__'))
    best = None
    if os.path.isdir(d):
        for name in os.listdir(d):
            m = re.match(rf'^{re.escape(idx)}@(\d+)\.txt$', name)
            if m and int(m.group(1)) <= P and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), os.path.join(d, name))
    return open(best[1]).read().splitlines(True) if best else None


def state(dev, rev, path, P, rows):
    """The text of upstream file path after new patch P."""
    base = git(dev, 'show', f'atlas-base:{path}').splitlines(True)
    final = {str(i): h for i, h in enumerate(hunks(dev, rev, path))}
    edits = []
    for r in rows:
        if not r['new']:
            raise SystemExit(f'{path} hunk {r["idx"]} ({r["func"]}) has no new patch (upstream.py todo)')
        if int(r['new']) > P or (r['last'] and P > int(r['last'])):
            continue
        m = re.match(r'^-(\d+),(\d+)', r['hdr'])
        a, b = int(m.group(1)), int(m.group(2))
        final_from = int(r['final_from'] or r['new'])
        extra = r['idx'] not in final
        text = variant(path, r['idx'], P) if P < final_from or extra else None
        if text is None and P < final_from and r['idx'] in final:
            raise SystemExit(f'{path} hunk {r["idx"]} has no variant for patch {P} (final text from {final_from})')
        if text is None:
            if r['idx'] not in final:
                raise SystemExit(f'{path} extra hunk {r["idx"]} has no variant for patch {P}')
            text = final[r['idx']][5]
        if text and text[0].startswith('@@ -'):
            # a variant that replaces a wider range of the base file than the final hunk
            m = re.match(r'^@@ -(\d+),(\d+)', text[0])
            a, b, text = int(m.group(1)), int(m.group(2)), text[1:]
        edits.append((a, b, text))
    for a, b, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if b == 0:
            base[a:a] = text
        else:
            base[a - 1:a - 1 + b] = text
    return ''.join(base)


def write(dev, P, tree, rev='HEAD'):
    man = manifest()
    for path in upstream_files(dev, rev):
        text = state(dev, rev, path, P, man.get(path, []))
        dst = os.path.join(tree, path)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, 'w', errors='surrogateescape') as f:
            f.write(text)


def final_check(dev, rev='HEAD'):
    man = manifest()
    bad = 0
    for path in upstream_files(dev, rev):
        want = git(dev, 'show', f'{rev}:{path}')
        if state(dev, rev, path, LAST, man.get(path, [])) != want:
            print(f'{path}: differs from {rev}')
            bad += 1
    print(f'upstream files: {bad} differ')
    return bad == 0


def todo():
    for path, rows in manifest().items():
        for r in rows:
            if not r['new']:
                print(f'{path}\t{r["idx"]}\t{r["hdr"]}\t{r["func"]}\told {r["old"]}\t{r["note"]}')


if __name__ == '__main__':
    a = sys.argv[1:]
    if a[:1] == ['scan'] and len(a) in (2, 3):
        scan(*a[1:])
    elif a[:1] == ['write'] and len(a) in (4, 5):
        write(a[1], int(a[2]), a[3], *a[4:])
    elif a[:1] == ['final'] and len(a) in (2, 3):
        sys.exit(0 if final_check(*a[1:]) else 1)
    elif a[:1] == ['show'] and len(a) in (4, 5):
        # the final text of one hunk: the starting point of a variant
        sys.stdout.write(''.join(dict((str(i), h) for i, h in enumerate(hunks(a[1], a[4] if len(a) > 4 else 'HEAD', a[2])))[a[3]][5]))
    elif a[:1] == ['todo']:
        todo()
    else:
        sys.exit(__doc__)
