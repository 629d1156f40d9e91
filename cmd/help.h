/* help.h - help text printed from the command table (help.c). */
#ifndef E2B_HELP_H
#define E2B_HELP_H

#include "cmd.h"

void e2b_print_command_help(FILE *f, const struct e2b_command *c);
void e2b_print_group_help(FILE *f, const char *group);
void e2b_print_main_help(FILE *f);

#endif
