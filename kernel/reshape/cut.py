#!/usr/bin/env python3
"""Cut a C file into top-level pieces (blank-line separated at brace depth 0, outside comments).

usage: cut.py FILE            -> prints "index<TAB>first_line<TAB>last_line<TAB>name" for every piece
       cut.py FILE --write DIR -> also writes DIR/NNN.txt, one file per piece (text incl. its trailing blank line)
The concatenation of the pieces is FILE, byte for byte (checked).
"""
import re, sys, os
STMT = '--stmt' in sys.argv
if STMT: sys.argv.remove('--stmt')

def pieces(text):
    lines = text.split('\n')
    out, cur, depth, in_comment = [], [], 0, False
    for i, l in enumerate(lines):
        cur.append(l)
        s = l
        # strip strings/char literals crudely, then track comments and braces
        s = re.sub(r'"(\\.|[^"\\])*"', '""', s)
        s = re.sub(r"'(\\.|[^'\\])'", "''", s)
        j = 0
        while j < len(s):
            if in_comment:
                k = s.find('*/', j)
                if k < 0: break
                in_comment, j = False, k + 2
                continue
            if s.startswith('/*', j): in_comment, j = True, j + 2; continue
            if s.startswith('//', j): break
            if s[j] == '{': depth += 1
            elif s[j] == '}': depth -= 1
            j += 1
        boundary = l.strip() == '' and depth == 0 and not in_comment
        # --stmt: also end a piece after a top-level declaration ';' or a preprocessor line
        if STMT and depth == 0 and not in_comment and l.strip() and not l.startswith((' ', '\t', '/*', ' *')) and \
                (l.rstrip().endswith(';') or l.startswith('#')) and not l.rstrip().endswith('\\'):
            boundary = True
        if STMT and depth == 0 and not in_comment and l.startswith('\t') and l.rstrip().endswith(';') and \
                cur and not any(x.rstrip().endswith(('{', '=')) for x in cur):
            boundary = True   # the last line of a multi-line prototype
        if boundary:
            out.append((i + 2 - len(cur), cur)); cur = []
    if cur: out.append((len(lines) - len(cur) + 1, cur))
    return out

def name_of(chunk):
    body = '\n'.join(chunk)
    code = re.sub(r'/\*.*?\*/', '', body, flags=re.S).strip()
    if not code:
        m = re.search(r'/\*\s*\n?\s*\*?\s*(.+?)\s*\n', body)
        return 'comment:' + (m.group(1)[:40] if m else '?')
    for pat in (r'^SYSCALL_DEFINE\d\((\w+)', r'^#\s*define\s+(\w+)', r'^#\s*include\s+(\S+)',
                r'^DEFINE_\w+\((\w+)\)', r'^(?:static\s+)?(?:const\s+)?struct\s+\w+\s+(\w+)\s*(?:\[\])?\s*=',
                r'^(?:typedef\s+)?(?:struct|enum)\s+(\w+)\s*[{;]',
                r'^[^(\n=]*?\b(\w+)\s*\(', r'^[^=\n;]*?\b(\w+)\s*(?:=|;)'):
        m = re.search(pat, code, flags=re.M)
        if m: return m.group(1)
    return '?'

if __name__ == '__main__':
    text = open(sys.argv[1]).read()
    ps = pieces(text)
    assert '\n'.join('\n'.join(c) for _, c in ps) == text, 'pieces do not reassemble'
    for k, (first, c) in enumerate(ps):
        print(f'{k:03d}\t{first}\t{first + len(c) - 1}\t{name_of(c)}')
        if len(sys.argv) > 3 and sys.argv[2] == '--write':
            os.makedirs(sys.argv[3], exist_ok=True)
            open(os.path.join(sys.argv[3], f'{k:03d}.txt'), 'w').write('\n'.join(c) + ('\n' if k < len(ps) - 1 else ''))
