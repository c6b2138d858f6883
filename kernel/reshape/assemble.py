#!/usr/bin/env python3
"""Assemble mm/mmview.c and include/linux/mmview.h as they must be after patch P of the new series.

usage:
  assemble.py FINAL_C FINAL_H P [--write TREE]   write TREE/mm/mmview.c, TREE/include/linux/mmview.h
                                                 (and include/uapi/linux/mmview.h from P >= 7 is copied
                                                 by the caller: it is whole in patch 7)
  assemble.py FINAL_C FINAL_H --final            check that P = LAST reproduces both files byte for byte
  assemble.py FINAL_C FINAL_H --check            for every P: unused statics, symbols used before they are
                                                 declared/defined, missing prototypes, struct fields used
                                                 before they exist, hooks without a !CONFIG_MMVIEW stub
Pieces: cut.py --stmt of the final files; manifest_c.tsv / manifest_h.tsv give each piece's first patch,
the patch from which its final text is used, and the patches that have a variant text
(variants/c/<idx>@<P>.txt); extra pieces (index NNN.5) exist only in variants.
"""
import os, re, sys, importlib.util
HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('cut', os.path.join(HERE, 'cut.py'))
cut = importlib.util.module_from_spec(spec); spec.loader.exec_module(cut)
LAST = 40

def manifest(path):
    rows = {}
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        f = line.rstrip('\n').split('\t') + [''] * 7
        idx, name, first, final_from, variants, last = f[0], f[1], int(f[2]), f[3], f[4], f[5]
        rows[idx] = dict(name=name, first=first, final_from=int(final_from) if final_from else int(f[2]),
                         variants=sorted(int(v) for v in variants.split(',') if v), last=int(last) if last else None)
    return rows

def load(path, kind):
    cut.STMT = True
    text = open(path).read()
    ps = cut.pieces(text)
    pieces = [(f'{k:03d}', '\n'.join(c) + ('\n' if k < len(ps) - 1 else '')) for k, (_, c) in enumerate(ps)]
    return text, pieces

def assemble(final_path, kind, P):
    text, pieces = load(final_path, kind)
    man = manifest(os.path.join(HERE, f'manifest_{kind}.tsv'))
    extras = sorted(k for k in man if '.' in k)
    seq = []
    for idx, t in pieces:
        seq.append((idx, t))
        for e in extras:
            if e.split('.')[0] == idx:
                seq.append((e, None))
    out, todo = [], []
    # decide inclusion of non-blank pieces first
    inc = {}
    for idx, t in seq:
        if t is not None and t.strip() == '':
            continue
        m = man.get(idx)
        if m is None:
            raise SystemExit(f'{kind}: piece {idx} missing from the manifest')
        inc[idx] = m['first'] <= P and (m['last'] is None or P <= m['last'])
    for i, (idx, t) in enumerate(seq):
        if t is not None and t.strip() == '':
            # a separator: kept when a piece of this patch follows, once (a piece the patch
            # leaves out may carry the separator after it, as its own last line)
            nxt = next((j for j, _ in seq[i + 1:] if j in inc), None)
            later = any(inc[j] for j, _ in seq[i + 1:] if j in inc)
            if nxt is None or inc[nxt] or (later and out and not ''.join(out[-1:]).endswith('\n\n')):
                out.append(t)
            continue
        if not inc[idx]:
            continue
        m = man[idx]
        if t is not None and P >= m['final_from']:
            out.append(t)
            continue
        vs = [v for v in m['variants'] if v <= P]
        vpath = os.path.join(HERE, 'variants', kind, f'{idx}@{vs[-1]}.txt') if vs else None
        if vpath and os.path.exists(vpath):
            out.append(open(vpath).read())
        else:
            todo.append(f'{idx} {m["name"]} (variant @{vs[-1] if vs else "?"} missing)')
            out.append(t or '')
    res = ''.join(out)
    if P < LAST:
        res = tidy(res)
    return text, res, todo

def tidy(s):
    """Blank lines of intermediate states: none doubled, one after a run of #include/#define lines."""
    lines = s.split('\n')
    out = []
    for l in lines:
        if l == '' and out and out[-1] == '':
            continue
        if out and out[-1].startswith(('#include', '#define')) and l and not l.startswith(('#include', '#define')) \
                and not out[-1].endswith('\\'):
            if not (out[-1].startswith('#define') and l.startswith('#')):
                out.append('')
        out.append(l)
    return '\n'.join(out)

def funcs(src):
    src = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), src, flags=re.S)
    defs = {}
    for m in re.finditer(r'^(static\s+)?(?:inline\s+)?(?:const\s+)?[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;{]*\)\s*\{', src, re.M):
        defs[m.group(2)] = bool(m.group(1))
    for m in re.finditer(r'^SYSCALL_DEFINE\d\((\w+)', src, re.M):
        defs['sys_' + m.group(1)] = False
    return src, defs

def check(final_c, final_h):
    problems = 0
    for P in range(1, LAST + 1):
        _, c, tc = assemble(final_c, 'c', P)
        _, h, th = assemble(final_h, 'h', P)
        msgs = [f'TODO {x}' for x in tc + th]
        if P < 7:
            if c.strip() or h.strip():
                msgs.append('new files exist before patch 7')
            if msgs:
                print(f'P{P}:', *msgs, sep='\n  ')
            continue
        csrc, cdefs = funcs(c)
        hsrc, hdefs = funcs(h)
        mmview_on = h.split('#ifdef CONFIG_MMVIEW')[1].split('#else')[0] if '#ifdef CONFIG_MMVIEW' in h else ''
        stubs = h.split('#else /* !CONFIG_MMVIEW */')[1] if '#else /* !CONFIG_MMVIEW */' in h else ''
        on = re.sub(r'/\*.*?\*/', '', mmview_on, flags=re.S)
        while re.search(r'\{[^{}]*\}', on):
            on = re.sub(r'\{[^{}]*\}', ';', on)          # drop inline bodies
        on = re.sub(r'\([^()]*\)', '()', re.sub(r'\([^()]*\)', '()', on))
        hdecl = set(re.findall(r'\b(\w+)\s*\(\)\s*;', on)) - {'mmview_replay_fn', 'mmview_advise_fn', 'mmview_reap_fn'}
        stubnames = set(re.findall(r'static inline [^(]*?\b(\w+)\s*\(', stubs))
        # mmap_lock.h provides these from patch 10 (and syscalls.h the syscall)
        external = {'mm_has_views', 'mmap_lock_rwsem'} | ({'mmview_lock_seqcount_begin', 'mmview_lock_seqcount_end'} if P >= 9 else set())
        # 1. unused statics
        for f, st in cdefs.items():
            if st and len(re.findall(r'\b' + f + r'\b', csrc)) < 2:
                msgs.append(f'unused static {f}()')
        for v in re.findall(r'^(?:static|DEFINE_STATIC_SRCU\()\s*[^(=;]*?\b(\w+)\s*(?:\)|=|\[)', csrc, re.M):
            if v not in cdefs and len(re.findall(r'\b' + v + r'\b', csrc)) < 2:
                msgs.append(f'unused static variable {v}')
        # 2. mmview symbols called but neither defined nor declared
        used = set(re.findall(r'\b((?:__)?mmview_\w+|mm_alloc_view)\s*\(', csrc))
        for u in sorted(used):
            if u not in cdefs and u not in hdecl and u not in hdefs and u not in external:
                msgs.append(f'{u}() used, not declared')
        for u in sorted(set(re.findall(r'\b((?:__)?mmview_\w+)\s*\(', re.sub(r'/\*.*?\*/', '', h, flags=re.S)))):
            if u not in hdecl and u not in hdefs and u not in external:
                msgs.append(f'mmview.h: {u}() used, not declared')
        # 3. missing prototypes / declared but not defined
        for f, st in cdefs.items():
            if not st and f not in hdecl and f not in external and not f.startswith('sys_'):
                msgs.append(f'{f}() defined without a prototype (-Wmissing-prototypes)')
        for d in sorted(hdecl):
            if d not in cdefs and d not in funcs(mmview_on)[1] and d != 'mm_alloc_view':
                msgs.append(f'{d}() declared, not defined in mmview.c')
        # 4. struct mmview_group fields
        m = re.search(r'struct mmview_group \{(.*?)\};', c, re.S)
        fields = set(re.findall(r'(\w+);', m.group(1))) if m else set()
        for fld in sorted(set(re.findall(r'(?:group|mmview_group)->(\w+)', csrc))):
            if fld not in fields:
                msgs.append(f'mmview_group->{fld} used, not in the struct')
        # 5. hooks declared without a stub
        for d in sorted(hdecl):
            if d in ('mm_alloc_view', '__mmview_replays', '__mmview_same_process', '__mmview_keeps_page_tables') \
                    or d.startswith(('atomic', 'test_bit', 'READ_ONCE', 'INIT_LIST', 'unlikely', 'set_mask', 'BIT')):
                continue
            if d.startswith('mmview_') and d not in stubnames:
                msgs.append(f'{d}() has no !CONFIG_MMVIEW stub')
        # 6. constants
        consts = set(re.findall(r'\b(MMVIEW_[A-Z_]+)\b', csrc))
        defined = set(re.findall(r'#define\s+(MMVIEW_[A-Z_]+)', c + h)) | \
            set(re.findall(r'^\t(MMVIEW_[A-Z_]+),', c, re.M)) | \
            {'MMVIEW_CREATE', 'MMVIEW_DELETE', 'MMVIEW_CURRENT', 'MMVIEW_MIGRATE', 'MMVIEW_UNSHARE', 'MMVIEW_SHARE', 'MMVIEW_SWITCH_BASE'}
        for k in sorted(consts - defined):
            msgs.append(f'{k} used, not defined')
        if msgs:
            problems += 1
            print(f'P{P}:', *msgs, sep='\n  ')
    print('patches with findings:', problems)

if __name__ == '__main__':
    final_c, final_h = sys.argv[1], sys.argv[2]
    if sys.argv[3] == '--final':
        for path, kind in ((final_c, 'c'), (final_h, 'h')):
            text, out, todo = assemble(path, kind, LAST)
            print(kind, 'identical' if out == text and not todo else f'DIFFERS {todo}')
    elif sys.argv[3] == '--check':
        check(final_c, final_h)
    else:
        P = int(sys.argv[3])
        _, c, tc = assemble(final_c, 'c', P)
        _, h, th = assemble(final_h, 'h', P)
        if tc or th:
            print('TODO:', *(tc + th), sep='\n  ', file=sys.stderr)
        if len(sys.argv) > 5 and sys.argv[4] == '--write':
            tree = sys.argv[5]
            for rel, t in (('mm/mmview.c', c), ('include/linux/mmview.h', h)):
                p = os.path.join(tree, rel)
                if t.strip():
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    open(p, 'w').write(t)
                elif os.path.exists(p):
                    os.remove(p)
        else:
            sys.stdout.write(c)
