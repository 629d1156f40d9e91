/* dockerfile-lex.h - Dockerfile lines: directives, comments, continuations,
 * heredoc bodies, and the word splitters the instruction parsers use.
 *
 * e2b_df_lex() turns the text into logical lines (one per instruction) that
 * remember where each piece came from, so errors can name line and column.
 * Rules are listed in dockerfile.h.
 */
#ifndef E2B_DOCKERFILE_LEX_H
#define E2B_DOCKERFILE_LEX_H

#include "error.h"

/* A word of a logical line and its byte offset in it. */
struct e2b_df_word {
    char *text;
    size_t off;
};
void e2b_df_words_free(struct e2b_df_word *w, size_t n);

/* Where a piece of a logical line starts in the file. */
struct e2b_df_seg {
    size_t off;
    int line;
    int col;
};

struct e2b_df_raw_heredoc {
    char *name;
    char *content;
    bool quoted;
    bool strip_tabs;
    int fd;
    int line;    /* first body line */
    size_t off;  /* offset of the marker word in the logical line */
};

struct e2b_df_logical {
    char *text;  /* continuations joined, trailing blanks removed */
    int line, end_line;
    struct e2b_df_seg *segs;
    size_t n_segs;
    struct e2b_df_raw_heredoc *heredocs;
    size_t n_heredocs;
};

struct e2b_df_lexed {
    char escape;
    char *syntax;
    char *check;
    struct e2b_df_logical *lines;
    size_t n_lines;
};

int e2b_df_lex(const char *name, const char *text, size_t len, struct e2b_df_lexed *ret,
               struct e2b_error **err);
void e2b_df_lexed_release(struct e2b_df_lexed *lx);

/* Line and column of a byte offset of a logical line. */
void e2b_df_logical_pos(const struct e2b_df_logical *l, size_t off, int *line, int *col);

/* Split "INSTR --a=b --c rest": *cmd_len is the instruction word's length,
 * flags are the --words (dashes kept, quotes and \ escapes removed, with
 * offsets), *rest_off where the arguments start ("--" ends the flags). */
void e2b_df_split_command(const char *line, size_t *cmd_off, size_t *cmd_len,
                          struct e2b_df_word **flags, size_t *n_flags, size_t *rest_off);

/* Docker's word splitting for ENV/LABEL/ARG: whitespace outside quotes
 * separates words; quotes and escapes stay in the words (expansion removes
 * them later). Offsets are relative to `s`. */
void e2b_df_quoted_words(const char *s, char escape, struct e2b_df_word **ret, size_t *n);

/* Whitespace-separated fields (FROM, COPY, EXPOSE, VOLUME), no quoting. */
void e2b_df_fields(const char *s, struct e2b_df_word **ret, size_t *n);

/* A JSON array of strings (exec form): 0 and a strv, or -1 when `s` is not
 * one (then it is shell form). */
int e2b_df_json_array(const char *s, char ***ret);

/* Heredoc marker word ("<<EOF", "<<-'EOF'", "3<<EOF")? Fills the fields
 * other than content/line/off. Markers are recognised with \ as the escape
 * whatever the escape directive says (as Docker does). */
bool e2b_df_heredoc_marker(const char *word, struct e2b_df_raw_heredoc *ret);

#endif
