/* The program atlas build-patch's tests patch (tests/unit/build_patch). */
#ifndef PROG_H
#define PROG_H

extern int calc_limit;
int classify(int x);
int compute(int x);
int grade(int x);
int heavy(int x);
const char *label(int x);
int where(void);

#endif
