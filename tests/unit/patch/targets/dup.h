#pragma once

int a_entry(int x);
int b_entry(int x);
int process(int x);
extern __thread int tls_counter;
