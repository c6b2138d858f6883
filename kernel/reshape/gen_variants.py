#!/usr/bin/env python3
"""Write the variant (partial) texts of pieces, derived from the final pieces by edits.

usage: gen_variants.py FINAL_MMVIEW_C FINAL_MMVIEW_H OUTDIR
Every edit asserts that the text it replaces is there, so a changed final file fails loudly.
"""
import sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util
spec = importlib.util.spec_from_file_location('cut', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cut.py'))
cut = importlib.util.module_from_spec(spec); sys.argv_saved = sys.argv; spec.loader.exec_module(cut)

def load(path):
    cut.STMT = True
    text = open(path).read()
    ps = cut.pieces(text)
    return {f'{k:03d}': '\n'.join(c) + '\n' for k, (_, c) in enumerate(ps)}

def sub(text, old, new, count=1):
    assert text.count(old) == count, (old[:60], text.count(old))
    return text.replace(old, new)

def dropline(text, line):
    return sub(text, line + '\n', '')

C, H, out = sys.argv[1], sys.argv[2], sys.argv[3]
c, h = load(C), load(H)
V = {}

# --- file header comment -------------------------------------------------------------
hdr = c['000'].split('\n')
def keep(lines):  # 1-based line numbers of the final header comment to keep
    return '\n'.join(hdr[i - 1] for i in lines) + '\n'
tail = [44, 45]
ordering = [24, 25, 26, 27, 28]
ptl = [30, 31, 32]
V['c/000@7'] = keep(list(range(1, 9)) + tail)
V['c/000@9'] = keep(list(range(1, 12)) + tail)
V['c/000@10'] = keep(list(range(1, 20)) + ordering + ptl + tail)
V['c/000@19'] = keep(list(range(1, 20)) + ordering + ptl + [34, 35, 36] + tail)
V['c/000@22'] = keep(list(range(1, 20)) + ordering + ptl + list(range(34, 39)) + tail)
notifier_para = (' *\n * The MMU notifier on the base is called under whatever its caller holds (rmap locks, the\n'
                 " * base's PTE table lock for the young callbacks); it takes view PTE table locks only, inside\n"
                 ' * mmview_srcu. A view is never mmput() with the mmap lock held: its exit_mmap() takes it.\n')
V['c/000@25'] = keep(list(range(1, 20)) + ordering + ptl + list(range(33, 39)) + tail)
V['c/000@26'] = keep(list(range(1, 20)) + ordering + ptl + list(range(33, 39))).rstrip('\n') + '\n' + notifier_para + keep(tail)
V['c/000@27'] = keep(list(range(1, 24)) + ordering + ptl + list(range(33, 39))).rstrip('\n') + '\n' + notifier_para + keep(tail)
V['c/000@29'] = keep(list(range(1, 24)) + ordering + ptl + list(range(33, 45)) + [45])

# --- mmview_group::flags comment: BASE_GONE first (patch 11), DEAD with CREATE (26) ---------
V['c/025@10'] = '/* mmview_group::flags */\n'

# --- struct mmview_group grows ---------------------------------------------------------
doc = {
 'lock_mm': (' * @lock_mm: the first view; its mmap lock serves every view. Each other view holds an\n'
             ' *\tmm_count reference on it, so the lock outlives them all; the group is freed with it.\n'),
 'base': (' * @base: the view that owns shared private memory. The group holds an mm_users reference\n'
          ' *\ton it until the group ends.\n'),
 'signal': ' * @signal: the process; the group ends when its last thread exits or execs.\n',
 'views': (' * @views: id -> view, for every view not yet deleted (base included). Changed under the\n'
           ' *\twrite lock; looked up under xa_lock with mmget_not_zero().\n'),
 'members': (' * @members: every view not yet torn down, linked by mm->mmview_node; changed under the write\n'
             ' *\tlock, walked under the write lock or mmview_srcu.\n'),
 'next_id': ' * @next_id: the next view id; ids are never reused.\n',
 'nr_live': ' * @nr_live: views created and not yet torn down (deleted but occupied ones count).\n',
 'invalidating': (' * @invalidating: base invalidations in flight. A mirror is installed only while it is zero,\n'
                  " *\tunder the view's PTL (see mmview_mirror_pmd()); it stays raised once the base is gone.\n"),
 'invalidated': ' * @invalidated: where faults that found @invalidating raised sleep until it drops to zero.\n',
 'flags': ' * @flags: MMVIEW_GROUP_*.\n',
 'replaying': (' * @replaying: set, under the write lock, while mmview_replay() runs an operation in the other\n'
               ' *\tviews: the hooks it passes through must not replay it again.\n'),
 'notifier': ' * @notifier: the MMU notifier on @base that clears the mirrors.\n',
}
decl = {'lock_mm': '\tstruct mm_struct *lock_mm;\n', 'base': '\tstruct mm_struct *base;\n',
        'signal': '\tstruct signal_struct *signal;\n', 'views': '\tstruct xarray views;\n',
        'members': '\tstruct list_head members;\n', 'next_id': '\tunsigned long next_id;\n',
        'nr_live': '\tunsigned int nr_live;\n', 'invalidating': '\tatomic_t invalidating;\n',
        'invalidated': '\twait_queue_head_t invalidated;\n', 'flags': '\tunsigned long flags;\n',
        'replaying': '\tbool replaying;\n', 'notifier': '\tstruct mmview_notifier *notifier;\n'}
order = list(decl)
def group(fields):
    fs = [f for f in order if f in fields]
    return ('/**\n * struct mmview_group - the views of one process\n' + ''.join(doc[f] for f in fs) +
            ' */\nstruct mmview_group {\n' + ''.join(decl[f] for f in fs) + '};\n')
assert group(order) == c['032'], 'struct mmview_group changed'
f10 = {'lock_mm', 'members'}
f11 = f10 | {'base', 'invalidating', 'invalidated', 'flags'}
f12 = f11 | {'nr_live'}
f25 = f12 | {'signal', 'views', 'next_id'}
f26 = f25 | {'notifier'}
V['c/032@9'], V['c/032@10'], V['c/032@11'], V['c/032@25'], V['c/032@26'] = group(f10), group(f11), group(f12), group(f25), group(f26)

# --- mmview_refuses_notifier: no exemption of the group's own notifier until SWITCH_BASE ---
V['c/086@15'] = sub(c['086'], '\treturn mm_has_views(mm) &&\n\t       (!subscription || subscription->ops != &mmview_notifier_ops);\n',
                    '\treturn mm_has_views(mm);\n')

# --- UNSHARE/SHARE: the several-views refusal comes with the layout freeze (12) -----------
t = sub(c['117'], '\tret = -EPERM;\n\tif (mm_has_views(mm) && mm->mmview_group->nr_live > 1)\n\t\tgoto out;\n', '')
t = sub(t, ' * boundaries like mprotect(). The whole range is checked before any VMA changes. Only a\n'
           ' * process with a single live view may do it: views\' layouts must stay identical.\n',
        ' * boundaries like mprotect(). The whole range is checked before any VMA changes.\n')
V['c/117@8'] = t

# --- CREATE refuses an XOL area until uprobes gives every view one (28) -------------------
V['c/119@25'] = sub(c['119'], '#ifdef CONFIG_IO_URING\n',
                    '#ifdef CONFIG_UPROBES\n\t/* Its XOL area would be one view\'s (the next patches map one in each). */\n'
                    '\tif (READ_ONCE(mm->uprobes_state.xol_area))\n\t\treturn -EOPNOTSUPP;\n#endif\n#ifdef CONFIG_IO_URING\n')
V['c/127@26'] = sub(c['127'], '\tif (!ret)\n\t\tret = uprobe_copy_xol_area(view, mm);\n', '')
V['c/127@25'] = sub(V['c/127@26'], '\tmmview_link_view(group, view, mm);\n\n\tret = mmview_fill_mirrors(group, view);\n\tif (ret) {\n'
                    '\t\txa_erase(&group->views, view->mmview_id);\n\t\tgoto unlock;\n\t}\n\tret = view->mmview_id;\n',
                    '\tmmview_link_view(group, view, mm);\n\n\tret = view->mmview_id;\n')
t = sub(c['120'], '\tret = mmview_notifier_register(group, mm);\n\tif (ret)\n\t\tgoto free;\n', '')
V['c/120@25'] = sub(t, ' * Registers the notifier that keeps mirrors coherent, turns THP off (views mirror 4 KiB\n * entries),',
                    ' * Turns THP off (views mirror 4 KiB\n * entries),')
t = sub(c['135'], '\tif (mm == group->base) {\n\t\tstruct mmview_notifier *n = group->notifier;\n\n'
          '\t\tgroup->notifier = NULL;\n\t\tmmview_notifier_unregister(n, mm);\n\t}\n', '')
V['c/135@25'] = sub(t, ' * The base stops being mirrored: its notifier is unregistered, which clears every mirror.\n'
                    ' * The view leaves the group\'s member list, and waits until no notifier walks its page\n'
                    ' * tables, which exit_mmap() is about to free.',
                    ' * The view leaves the group\'s member list, and waits until no walker of the list\n'
                    ' * (mmview_srcu) still sees it.')

# --- stubs of the first ABI patch (8) --------------------------------------------------
V['c/127@7'] = ('/**\n * mmview_create - MMVIEW_CREATE\n *\n'
                ' * Return: -EOPNOTSUPP: views cannot be created yet.\n */\n'
                'static long mmview_create(void)\n{\n\treturn -EOPNOTSUPP;\n}\n\n')
V['c/128@7'] = ('/**\n * mmview_delete - MMVIEW_DELETE\n * @id: the view to delete\n *\n'
                ' * Return: -EPERM for the base, -EINVAL for an id that names no view.\n */\n'
                'static long mmview_delete(long id)\n{\n\treturn id == MMVIEW_BASE_ID ? -EPERM : -EINVAL;\n}\n\n')
V['c/129@7'] = ('/**\n * mmview_migrate - MMVIEW_MIGRATE\n * @id: the view to move the calling thread into\n *\n'
                ' * Migrating into the view one is in does nothing and returns its id.\n *\n'
                ' * Return: the id of the view the caller left, or -EINVAL for an id that names no view.\n */\n'
                'static long mmview_migrate(long id)\n{\n\treturn id == MMVIEW_BASE_ID ? id : -EINVAL;\n}\n\n')
V['c/143@7'] = ('/**\n * mmview_switch_base - MMVIEW_SWITCH_BASE\n *\n'
                ' * Return: the id of the caller\'s view, which is the base (a process has one view).\n */\n'
                'static long mmview_switch_base(void)\n{\n\treturn MMVIEW_BASE_ID;\n}\n\n')
t = sub(c['145'], '\t\treturn current->mm->mmview_id;\n', '\t\treturn MMVIEW_BASE_ID;\n')
V['c/145@8'] = t
V['c/145@7'] = sub(t, '\tcase MMVIEW_UNSHARE:\n\t\treturn mmview_set_unshared(arg1, arg2, true);\n'
                      '\tcase MMVIEW_SHARE:\n\t\treturn mmview_set_unshared(arg1, arg2, false);\n', '')

# --- fork from a view other than the base is refused from MIGRATE (29) to 36 -------------
t = sub(c['134'], '\t\treturn 0;\t/* dup_mmap() copies from the base too */\n',
        '\t\treturn mmview_is_base(oldmm) ? 0 : -EBUSY;\t/* fork of the base only, for now */\n')
t = sub(t, ' * A thread or a vfork child joins its creator\'s view. A fork from any view copies the shared\n'
           ' * private ranges from the base and the rest from the view (mmview_fork_prepare()). Another\n'
           ' * process sharing a view (CLONE_VM without CLONE_THREAD or CLONE_VFORK) is refused.\n',
        ' * A thread or a vfork child joins its creator\'s view. A fork of the base copies the base,\n'
        ' * which is right for every range. A fork of another view, or another process sharing a\n'
        ' * view (CLONE_VM without CLONE_THREAD or CLONE_VFORK), is refused.\n')
V['c/134@29'] = t
V['c/134@25'] = c['134']

# --- the temporary layout freeze (12..34): not in the final file --------------------------
V['c/047.5@11'] = ('/**\n * mmview_layout_frozen - refuse a layout change while several views exist\n'
                   ' * @mm: the caller\'s view, with its mmap lock held\n *\n'
                   ' * The VMA operations that are not replayed on every view yet are refused while the process\n'
                   ' * has more than one live view: the views\' layouts must never differ.\n *\n'
                   ' * Return: 0, or -EBUSY.\n */\n'
                   'int mmview_layout_frozen(struct mm_struct *mm)\n{\n\tif (!mm_has_views(mm))\n\t\treturn 0;\n'
                   '\treturn READ_ONCE(mm->mmview_group->nr_live) > 1 ? -EBUSY : 0;\n}\n\n')
V['h/031.5@11'] = 'int mmview_layout_frozen(struct mm_struct *mm);\n'
V['h/076.5@11'] = 'static inline int mmview_layout_frozen(struct mm_struct *mm)\n{\n\treturn 0;\n}\n\n'
V['h/008@9'] = '/* mm->mmview_flags */\n'

for k, v in V.items():
    d, name = k.split('/')
    os.makedirs(os.path.join(out, d), exist_ok=True)
    open(os.path.join(out, d, name + '.txt'), 'w').write(v)
print(len(V), 'variants written')
