/* files.h - the file commands of the command-line client (put, get, ls, rm), shared by
 * the one-shot commands and the interactive shell. Each returns an exit code (cli.h) and
 * prints its own summary / error lines (errors to stderr, prefixed "roomdrop: ").
 * The connection is registered and in opts->room when these are called. */
#ifndef ROOMDROP_CLIENT_FILES_H
#define ROOMDROP_CLIENT_FILES_H

#include <stdio.h>

#include "cli.h"
#include "rd_client.h"

int cli_files_put(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv);
int cli_files_get(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv);
int cli_files_ls(struct rd_conn *c, const struct cli_opts *o);
int cli_files_rm(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv);
/* Print an unsolicited application frame (FILE_NOTICE...) as one line, e.g.
 * "* alice added report.pdf (1.2 MB)". Returns 1 if it was a file frame, 0 otherwise. */
int cli_files_print_frame(const struct rd_frame *f, FILE *out);

#endif
